"""Measure how far tiled inference is from whole-image inference, on a test set or on your own brackets.

The code is ``scripts.measure.tiling_error`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.tiling_error import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
