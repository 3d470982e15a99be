"""Train one options file at several widths for the same wall time each, and report their validation scores.

The code is ``scripts.measure.width`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.width import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
