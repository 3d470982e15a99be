"""Measure how far tiled inference is from whole-image inference, on a test set or on your own brackets.

The command is ``lffnet_arch.deploy.tiling_error.main``; ``--help`` lists its flags.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lffnet_arch.deploy.tiling_error import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
