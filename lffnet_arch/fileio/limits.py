"""The pixel budget: images larger than it are refused from their header, before anything is decoded.

A small file can claim a huge image (a 1 MB PNG of 20000 x 20000 pixels decodes to 1.2 GB, and the networks' input
to 6 times that per frame), so every reader asks :func:`check_pixels` with the size its header states. The default,
120 megapixels, admits 45-megapixel frames and 100-megapixel raw files; ``--max_pixels`` of the commands, or
:func:`set_max_pixels`, changes it for the process.
"""

import os
from typing import Optional, Union

__all__ = ['DEFAULT_MAX_PIXELS', 'check_pixels', 'max_pixels', 'set_max_pixels']

DEFAULT_MAX_PIXELS = 120_000_000
_max_pixels = DEFAULT_MAX_PIXELS


def max_pixels() -> int:
    """The budget in force."""
    return _max_pixels


def set_max_pixels(value: int) -> None:
    """Set the budget for this process (a positive integer)."""
    global _max_pixels
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'The pixel budget must be a positive integer, got {value!r}.')
    _max_pixels = value


def check_pixels(height: int, width: int, source: Union[str, os.PathLike], limit: Optional[int] = None) -> None:
    """Refuse an image of ``height`` x ``width`` pixels above the budget (``limit``, default :func:`max_pixels`),
    or of a degenerate size, naming ``source``."""
    limit = _max_pixels if limit is None else limit
    if height < 1 or width < 1:
        raise ValueError(f'{source}: the header states an empty image ({width} x {height} pixels).')
    if height * width > limit:
        raise ValueError(
            f'{source}: {width} x {height} pixels ({height * width / 1e6:.0f} megapixels) is above the pixel budget '
            f'of {limit / 1e6:g} megapixels; raise it with --max_pixels if the image is genuine.'
        )
