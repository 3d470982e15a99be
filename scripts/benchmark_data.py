"""Samples per second of MultiExposureHDRDataset training patches read from a folder and from its LMDB.

The command is ``lffnet_arch.benchmark.data_loading.main``; ``--help`` lists its flags.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lffnet_arch.benchmark.data_loading import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
