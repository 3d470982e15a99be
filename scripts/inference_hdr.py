"""Fuse your own exposure brackets into linear HDR images: the ``lffnet-inference`` command for a checkout
(:mod:`lffnet_arch.commands.inference`); ``--help`` lists the flags, which are checked before torch is imported."""

import sys
from pathlib import Path

try:
    import lffnet_cli
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import lffnet_cli

if __name__ == '__main__':
    sys.exit(lffnet_cli.inference())
