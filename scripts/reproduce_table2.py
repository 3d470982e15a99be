"""Reproduce the paper's Table 2 (AHDRNet baseline, + RFFT blocks, + DO-Conv) at one budget, with curves and a table.

The code is ``scripts.measure.table2`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.table2 import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
