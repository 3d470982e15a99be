"""Measure how well each response calibration method recovers a camera's inverse response, on simulated brackets
through held-out response families.

The code is ``scripts.measure.calibration`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.calibration import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
