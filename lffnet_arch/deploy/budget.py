"""The memory bound of inference: ``lffnet-inference --max_memory`` and ``fuse(..., max_memory=...)``.

A bound is a number of bytes (parsed from text such as ``2.5GB``, ``2500MB`` or ``3GiB`` by
:func:`parse_memory_size`). :func:`plan_tile` turns what is left of it after the frames and the output image into the
largest tile whose working memory fits: the network's forward pass on the tile (``forward_bytes_per_pixel`` of the
network, :func:`lffnet_arch.archs.forward_bytes_per_pixel`), the tile's input and output, and the float32 rows of the
frames that the tile's row of tiles reads (the frames themselves stay in their compact integer form). The free memory
of the machine is never read: the same bound gives the same tile on any machine.

Torch-free: the command line parses ``--max_memory`` with it before torch is imported.
"""

import math
import os
import re
import sys
from typing import Optional

__all__ = [
    'DEFAULT_MAX_MEMORY',
    'MIN_TILE',
    'MemoryBoundError',
    'format_size',
    'output_bytes',
    'parse_memory_size',
    'plan_strip_rows',
    'plan_tile',
    'strip_fixed_bytes',
    'resident_memory',
    'tile_working_bytes',
]

DEFAULT_MAX_MEMORY = 2_500_000_000  # 2.5 GB: a laptop's share for one inference process
MIN_TILE = 64  # the smallest tile a bound may give; below it the overlap and the zero padding dominate
TILE_MULTIPLE = 32
# Bytes per tile pixel besides the forward pass, per frame: its float32 crop (12), the linearised copy (12), the
# network input (24) and the clipping/interpolation temporaries of the linearisation (24).
INPUT_BYTES_PER_PIXEL_PER_FRAME = 72
# The output tile (3 channels): the network's output, it times the blending weight, and its HWC copy.
OUTPUT_BYTES_PER_PIXEL = 36
# The frames' float32 rows a row of tiles reads: one band per frame, plus the rows of one frame being converted and
# warped (12 bytes a pixel each).
BAND_BYTES_PER_PIXEL = 12
SLACK = 1.05  # allocator rounding and small temporaries
# Strips: the reconstruction stage reads every block's output and the reference features with a halo and
# concatenates them, and thin full-width strips pay more per pixel in convolution workspace than square tiles:
# measured up to 1.2 times the forward-pass estimate on 21-row strips of an 8192-pixel-wide image in fp32.
STRIP_SLACK = 1.3
# What the process's memory grows by during the strips besides the strips themselves (oneDNN's scratchpads and
# primitive cache, allocator fragmentation), per image pixel: a 45 MP fp32 run peaked 56 MB above its 2.5 GB bound
# without it; 4 bytes a pixel reserve 180 MB there.
STRIP_RESERVE_BYTES_PER_PIXEL = 4
# Writing the outputs: the float32 image (12 bytes a pixel), the 8-bit preview (3) and Pillow's RGBX copy of it (4),
# and the strips that the fusion tone mapper (2 ** 21 pixels, about 150 bytes each) and the writers work on.
OUTPUT_PHASE_BYTES_PER_PIXEL = 19
OUTPUT_PHASE_STRIPS = 350_000_000

_UNITS = {
    '': 1,
    'b': 1,
    'k': 10**3,
    'kb': 10**3,
    'm': 10**6,
    'mb': 10**6,
    'g': 10**9,
    'gb': 10**9,
    't': 10**12,
    'tb': 10**12,
    'kib': 2**10,
    'mib': 2**20,
    'gib': 2**30,
    'tib': 2**40,
}
_SIZE = re.compile(r'^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$', re.IGNORECASE)


class MemoryBoundError(ValueError):
    """A memory bound too small for the smallest tile; ``minimum`` is the smallest bound that would do, in bytes,
    and ``detail`` says what takes it."""

    def __init__(self, message: str, minimum: int, detail: str = '') -> None:
        super().__init__(message)
        self.minimum = minimum
        self.detail = detail


def parse_memory_size(text: str) -> int:
    """Bytes of a memory size written as a number and an optional unit: ``2.5GB``, ``2500MB``, ``3GiB``, ``800M``,
    ``123456789``. KB, MB, GB and TB (and K, M, G, T) are powers of 1000, KiB, MiB, GiB and TiB powers of 1024.

    Raises:
        ValueError: Not a size, or not above zero; the message says what was expected.
    """
    match = _SIZE.match(str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f'expected a memory size such as 2.5GB, 2500MB or 3GiB, got {text!r}')
    value = float(match.group(1)) * _UNITS[unit]
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f'expected a memory size of at least one byte, such as 2.5GB, got {text!r}')
    return int(value)


def format_size(size: float) -> str:
    """A byte count as people read it: ``2.50 GB``, ``640 MB``, ``100 kB``."""
    if size >= 10**9:
        return f'{size / 10**9:.2f} GB'
    if size >= 10**6:
        return f'{size / 10**6:.0f} MB'
    return f'{size / 10**3:.0f} kB'


def resident_memory() -> Optional[int]:
    """This process's resident memory now, in bytes: ``/proc/self/statm`` on Linux, else its peak so far
    (``getrusage``), None where neither exists. The memory the process itself holds, not the machine's free
    memory."""
    try:
        with open('/proc/self/statm', encoding='ascii') as file:
            return int(file.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == 'darwin' else peak * 1024)  # bytes on macOS, kibibytes elsewhere


def output_bytes(height: int, width: int) -> int:
    """Estimated peak memory of writing a fused image's outputs (:func:`lffnet_arch.commands.inference.write_outputs`
    with the ``mulaw`` or ``fusion`` preview): the float32 image, the 8-bit preview and Pillow's copy of it, and the
    strips that the tone mapper and the writers work on."""
    return int(SLACK * (OUTPUT_PHASE_BYTES_PER_PIXEL * height * width + OUTPUT_PHASE_STRIPS))


def tile_working_bytes(
    tile: int, height: int, width: int, num_frames: int, forward_bytes_per_pixel: float, channels: int = 3
) -> int:
    """Estimated peak working memory of one tile of a ``height`` x ``width`` image: the forward pass, the tile's
    input and output, and the frames' float32 rows of its row of tiles (see the module docstring)."""
    tile_h, tile_w = min(tile, height), min(tile, width)
    per_pixel = forward_bytes_per_pixel + INPUT_BYTES_PER_PIXEL_PER_FRAME * num_frames
    per_pixel += OUTPUT_BYTES_PER_PIXEL * channels / 3
    bands = BAND_BYTES_PER_PIXEL * (num_frames + 1) * tile_h * width
    return int(SLACK * (per_pixel * tile_h * tile_w + bands))


def _too_small(
    max_memory: int, width: int, height: int, num_frames: int, parts: str, smallest: str, minimum: int
) -> MemoryBoundError:
    """The error of a bound below what the smallest tile or strip needs, naming ``max_memory`` and the minimum."""
    detail = f'{parts} and the {smallest} need at least {format_size(minimum)}'
    return MemoryBoundError(
        f'max_memory={format_size(max_memory)} is too small for a {width} x {height} bracket of {num_frames} frames: '
        f'{detail}.',
        minimum,
        detail,
    )


def plan_tile(
    max_memory: int,
    height: int,
    width: int,
    frame_bytes: int,
    num_frames: int,
    forward_bytes_per_pixel: float,
    tile_overlap: int = 32,
    channels: int = 3,
) -> int:
    """The largest tile (a multiple of 32, or the whole image) whose working memory fits in ``max_memory`` together
    with the frames (``frame_bytes``, as they are held) and the float32 output image.

    Returns:
        int: The tile side; at least ``max(height, width)`` when the whole image fits as one tile.

    Raises:
        MemoryBoundError: Not even the smallest tile (64 pixels, or the next multiple of 32 above the overlap) fits;
            the message names ``max_memory`` and the minimum, which the error also carries.
    """
    fixed = frame_bytes + 4 * channels * height * width
    smallest = max(MIN_TILE, (tile_overlap // TILE_MULTIPLE + 1) * TILE_MULTIPLE)
    largest = max(smallest, -(-max(height, width) // TILE_MULTIPLE) * TILE_MULTIPLE)

    def need(tile: int) -> int:
        return fixed + tile_working_bytes(tile, height, width, num_frames, forward_bytes_per_pixel, channels)

    if need(smallest) > max_memory:
        parts = f'its frames ({format_size(frame_bytes)}), the output image ({format_size(fixed - frame_bytes)})'
        raise _too_small(
            max_memory, width, height, num_frames, parts, f'smallest tile ({smallest} pixels)', need(smallest)
        )
    low, high = smallest, largest  # need() grows with the tile: bisect on multiples of 32
    while low < high:
        middle = (low + high + TILE_MULTIPLE) // (2 * TILE_MULTIPLE) * TILE_MULTIPLE
        if need(middle) <= max_memory:
            low = middle
        else:
            high = middle - TILE_MULTIPLE
    return low


def strip_working_bytes(
    rows: int, width: int, halo: int, num_frames: int, forward_bytes_per_pixel: float, channels: int = 3
) -> int:
    """Estimated peak working memory of one strip of ``rows`` full-width rows read with ``halo`` rows on each side
    (:mod:`lffnet_arch.strips`): the forward pass of its local stages (the alignment network dominates), its input and
    output, and the frames' float32 rows it reads."""
    read = rows + 2 * halo
    per_pixel = forward_bytes_per_pixel + INPUT_BYTES_PER_PIXEL_PER_FRAME * num_frames
    per_pixel += OUTPUT_BYTES_PER_PIXEL * channels / 3
    return int(STRIP_SLACK * (per_pixel * read * width + BAND_BYTES_PER_PIXEL * (num_frames + 1) * read * width))


def strip_fixed_bytes(height: int, width: int, channels: int = 3) -> int:
    """What the strip-wise pass holds besides the frames and its strips: the float32 output image and the runtime's
    growth (:data:`STRIP_RESERVE_BYTES_PER_PIXEL`)."""
    return (4 * channels + STRIP_RESERVE_BYTES_PER_PIXEL) * height * width


def plan_strip_rows(
    max_memory: int,
    height: int,
    width: int,
    frame_bytes: int,
    num_frames: int,
    forward_bytes_per_pixel: float,
    halo: int,
    channels: int = 3,
) -> int:
    """The most rows a strip of the exact strip-wise pass may have within ``max_memory`` (with the frames and the
    float32 output image); ``height`` or more when the whole image fits at once.

    Raises:
        MemoryBoundError: Not even a strip of 8 rows fits; the message names ``max_memory`` and the minimum.
    """
    fixed = frame_bytes + strip_fixed_bytes(height, width, channels)
    whole = fixed + strip_working_bytes(height, width, 0, num_frames, forward_bytes_per_pixel, channels)
    if whole <= max_memory:
        return height

    def need(rows: int) -> int:
        return fixed + strip_working_bytes(rows, width, halo, num_frames, forward_bytes_per_pixel, channels)

    smallest = 8
    if need(smallest) > max_memory:
        parts = (
            f'its frames ({format_size(frame_bytes)}), the output image with a reserve for the runtime '
            f'({format_size(fixed - frame_bytes)})'
        )
        smallest_strip = f'smallest strip ({smallest} rows of {width} pixels)'
        raise _too_small(max_memory, width, height, num_frames, parts, smallest_strip, need(smallest))
    per_row = need(smallest + 1) - need(smallest)
    rows = smallest + max(0, (max_memory - need(smallest)) // max(per_row, 1))
    while rows > smallest and need(rows) > max_memory:
        rows -= 1
    return int(min(rows, height))
