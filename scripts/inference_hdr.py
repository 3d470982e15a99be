"""Fuse your own exposure brackets into linear HDR images with a trained LFFNet or AHDRNet.

Usage::

    python scripts/inference_hdr.py --input FOLDER_or_FILES --output FOLDER --checkpoint NET.pth
        [--opt OPTIONS.yml | --arch LFFNet] [--exposures 0.01 0.04 0.16] [--ref I] [--tile N|auto --tile_overlap N]
        [--precision fp32|fp16|bf16] [--align mtb|ecc] [--device cpu|cuda] [--overwrite]

``--input`` is a folder holding one bracket, the frame files of one bracket, or a folder of bracket folders. Each
scene gives ``<name>.hdr``, ``<name>.exr`` and a tonemapped ``<name>.png`` in
``--output``. Exposure times: ``--exposures`` (seconds, file-name order), else ``exposure.txt`` in the bracket folder
(EV per line), else EXIF ``ExposureTime``. The same command is installed as ``lffnet-inference``; this file only
calls :func:`lffnet_arch.deploy.cli.main`.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401  (before basicsr and cv2: installs the compatibility shim, registers everything)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import lffnet_arch  # noqa: F401

from lffnet_arch.deploy.cli import main

if __name__ == '__main__':
    sys.exit(main())
