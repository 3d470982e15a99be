"""Fuse your own exposure brackets into linear HDR images: the ``lffnet-inference`` command
(:mod:`lffnet_arch.commands.inference`) for a checkout; ``--help`` lists the flags."""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401  (before basicsr and cv2: installs the compatibility shim, registers everything)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import lffnet_arch  # noqa: F401

from lffnet_arch.commands.inference import main

if __name__ == '__main__':
    sys.exit(main())
