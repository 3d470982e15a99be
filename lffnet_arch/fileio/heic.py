"""HEIC/HEIF frames (phone photos) as float RGB in [0, 1], through the optional ``pillow-heif`` (libheif).

The pixels are decoded with ``pillow_heif.open_heif`` at their own bit depth (8, 10 or 12 bits; Pillow has no
high-bit-depth RGB mode, so its plugin would round 10/12-bit data to 8 bits), each code divided by the largest code
of that depth. libheif applies the file's rotation and mirroring, into which writers turn the EXIF orientation
(pillow-heif then resets the EXIF tag to 1), so frames come out upright as JPEGs do. Once :func:`register_heic`
has registered pillow-heif's Pillow plugin, Pillow reads a HEIC file's EXIF (exposure and capture times) as it reads
a JPEG's. Like JPEG frames, HEIC frames are display-referred: their response is calibrated as for any LDR frame.
"""

import os
from pathlib import Path
from types import ModuleType
from typing import Union

import numpy as np

from lffnet_arch.fileio.extras import existing_frame, import_extra
from lffnet_arch.fileio.limits import check_pixels

__all__ = ['HEIC_EXTENSIONS', 'is_heic', 'read_heic', 'register_heic']

HEIC_EXTENSIONS = ('.heic', '.heif')
PathLike = Union[str, os.PathLike]
_registered = False


def is_heic(path: PathLike) -> bool:
    """Whether ``path`` names a HEIC/HEIF file (by its extension, any case)."""
    return Path(path).suffix.lower() in HEIC_EXTENSIONS


def register_heic(path: PathLike) -> ModuleType:
    """Import pillow-heif for reading ``path`` and register its Pillow plugin (once per process).

    Raises:
        MissingExtraError: pillow-heif is not installed (the message says ``pip install "lffnet_arch[heic]"``).
    """
    global _registered
    pillow_heif = import_extra('pillow_heif', 'heic', path)
    if not _registered:
        pillow_heif.register_heif_opener()
        _registered = True
    return pillow_heif


def read_heic(path: PathLike) -> np.ndarray:
    """Read a HEIC/HEIF frame's primary image as float32 RGB (H, W, 3) in [0, 1], upright: 8-bit codes divided by
    255, 10-bit by 1023, 12-bit by 4095; gray expanded to 3 channels, alpha dropped.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        MissingExtraError: pillow-heif is not installed.
        ValueError: Empty, truncated or corrupt data, or more pixels than the budget; the message names ``path``.
    """
    path = existing_frame(path, 'HEIC')
    pillow_heif = register_heic(path)
    errors = (ValueError, EOFError, SyntaxError, RuntimeError, OSError)  # what libheif's bindings raise
    try:
        heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=False, hdr_to_16bit=False)
    except errors as error:
        raise ValueError(f'Cannot decode HEIC frame {path}: libheif cannot read it ({error}).') from error
    width, height = heif.size
    check_pixels(height, width, f'Cannot decode HEIC frame {path}')
    bit_depth = int(heif.info.get('bit_depth') or 8)
    try:
        data = np.asarray(heif)  # decodes
    except errors as error:
        raise ValueError(f'Cannot decode HEIC frame {path}: libheif cannot decode its image ({error}).') from error
    if data.ndim == 2:
        data = data[..., None]
    if data.dtype not in (np.uint8, np.uint16) or data.ndim != 3 or data.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f'HEIC frame {path} decoded as {data.dtype} {data.shape}; expected 8- to 16-bit gray or RGB.')
    color = data[..., :1] if data.shape[2] < 3 else data[..., :3]  # gray (+ alpha) or RGB (+ alpha)
    rgb = np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color
    top = float(2**bit_depth - 1) if data.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(rgb, dtype=np.float32) / np.float32(top)
