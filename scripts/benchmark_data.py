"""Samples per second of MultiExposureHDRDataset training patches read from a folder and from its LMDB.

The code is ``scripts.measure.data_loading`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.data_loading import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
