"""Write a synthetic 3-frame 8-bit JPEG exposure bracket of a given size, with EXIF exposure times, for memory and
speed benchmarks of ``lffnet-inference`` (``scripts/benchmark_memory.py``).

The scene is procedural and deterministic (the same ``--seed`` and size give the same files): a reflectance of smooth
colour fields, mid-scale detail and fine grain, lit by a bright sky above a wavy horizon, a few lamps (up to about 500
times the base light) and a deep shadow, about 14 stops in all. It is shot at 1/400, 1/100 and 1/25 s (EV -2, 0, +2)
through the sRGB curve, 8-bit, JPEG quality 95; the short and long frames are displaced by a few whole pixels (camera
shake) for the default ECC alignment to find. The frames carry their times as EXIF ExposureTime.

Usage::

    python scripts/make_synthetic_bracket.py --megapixels 12 --output bench/12MP    # 4000 x 3000
    python scripts/make_synthetic_bracket.py --megapixels 45 --output bench/45MP    # 8192 x 5504
    python scripts/make_synthetic_bracket.py --size 1920x1080 --output bench/small
"""

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from PIL import Image

SIZES = {12: (4000, 3000), 45: (8192, 5504)}  # megapixels -> (width, height)
TIMES = ((1, 400), (1, 100), (1, 25))  # EXIF rationals, seconds
SHAKE = ((2, -1), (0, 0), (-1, 2))  # (dx, dy) of each frame's crop of the scene, whole pixels
MARGIN = 4  # the scene is rendered this much larger on each side, for the shaken crops
EXIF_IFD, EXPOSURE_TIME = 0x8769, 33434


def size_of(megapixels: float) -> tuple[int, int]:
    """(width, height): the benchmark sizes for 12 and 45, else 4 : 3 with sides multiple of 16."""
    if megapixels in SIZES:
        return SIZES[megapixels]
    height = int(round(math.sqrt(megapixels * 1e6 * 3 / 4) / 16)) * 16
    return height * 4 // 3 // 16 * 16, height


def _smooth(rng: np.random.Generator, height: int, width: int, cell: int, channels: int) -> np.ndarray:
    """Random values on a grid of ``cell`` pixels, interpolated (bicubic) to the full size, float32 in about [0, 1]."""
    grid = rng.random((height // cell + 3, width // cell + 3, channels), dtype=np.float32)
    field = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return field.reshape(height, width, channels)


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Linear radiance (height, width, 3) float32, the base light 1."""
    rng = np.random.default_rng(seed)
    radiance = 0.05 + 0.85 * np.clip(_smooth(rng, height, width, 256, 3), 0, 1)
    radiance *= 0.6 + 0.4 * np.clip(_smooth(rng, height, width, 16, 1), 0, 1)
    radiance *= (0.9 + 0.2 * rng.random((height, width, 1), dtype=np.float32)).astype(np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    horizon = height * (0.3 + 0.04 * np.sin(cols / width * 9.0) + 0.02 * np.sin(cols / width * 31.0))
    with np.errstate(over='ignore'):  # far below the horizon exp overflows to inf: no sky there
        light = 1.0 + 24.0 / (1.0 + np.exp((rows - horizon) / (0.004 * height)))  # sky above the horizon
    for _ in range(5):  # lamps
        cy, cx = rng.uniform(0.35, 0.9) * height, rng.uniform(0.05, 0.95) * width
        sigma = rng.uniform(0.004, 0.015) * min(height, width)
        light = light + 500.0 * np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * sigma**2))
    shadow = (rows > 0.6 * height) & (cols < 0.35 * width)
    light = np.where(shadow, light * 0.03, light).astype(np.float32)
    radiance *= light[..., None]
    return radiance


def srgb_8bit(linear: np.ndarray) -> np.ndarray:
    """sRGB-encoded 8-bit codes of linear values (clipped at 1), a strip of rows at a time."""
    out = np.empty(linear.shape, np.uint8)
    for top in range(0, linear.shape[0], 256):
        x = np.clip(linear[top : top + 256], 0, 1)
        code = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)
        out[top : top + 256] = np.round(code * 255)
    return out


def make_bracket(folder: Path, width: int, height: int, seed: int = 0, quality: int = 95) -> list:
    """Write ``IMG_0.jpg`` .. ``IMG_2.jpg`` (short to long) into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    radiance = scene(width + 2 * MARGIN, height + 2 * MARGIN, seed)
    middle = TIMES[1][0] / TIMES[1][1]
    paths = []
    for index, ((numerator, denominator), (dx, dy)) in enumerate(zip(TIMES, SHAKE)):
        crop = radiance[MARGIN + dy : MARGIN + dy + height, MARGIN + dx : MARGIN + dx + width]
        codes = srgb_8bit(crop * np.float32(numerator / denominator / middle * 0.18))
        exif = Image.Exif()
        exif.get_ifd(EXIF_IFD)[EXPOSURE_TIME] = (numerator, denominator)
        path = folder / f'IMG_{index}.jpg'
        Image.fromarray(codes).save(path, quality=quality, exif=exif)
        paths.append(path)
        del codes
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument('--megapixels', type=float, help='12 (4000 x 3000), 45 (8192 x 5504) or another size (4 : 3)')
    size.add_argument('--size', help='WIDTHxHEIGHT, e.g. 1920x1080')
    parser.add_argument('--output', type=Path, required=True, help='folder to write IMG_0.jpg .. IMG_2.jpg into')
    parser.add_argument('--seed', type=int, default=0, help='scene seed (default: %(default)s)')
    parser.add_argument('--quality', type=int, default=95, help='JPEG quality (default: %(default)s)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.size is not None:
        try:
            width, height = (int(v) for v in args.size.lower().split('x'))
        except ValueError:
            parser.error(f'--size: expected WIDTHxHEIGHT such as 1920x1080, got {args.size!r}')
    else:
        if not args.megapixels > 0:
            parser.error(f'--megapixels must be > 0, got {args.megapixels}')
        width, height = size_of(args.megapixels)
    if min(width, height) < 16:
        parser.error(f'the bracket must be at least 16 x 16 pixels, got {width} x {height}')
    paths = make_bracket(args.output, width, height, args.seed, args.quality)
    print(f'{width} x {height} ({width * height / 1e6:.1f} MP): {", ".join(str(p) for p in paths)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
