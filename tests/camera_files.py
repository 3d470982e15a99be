"""Small camera files written by the tests themselves: DNG brackets (simulated RGGB Bayer data through tifffile) and
HEIC frames (through pillow-heif), with the EXIF tags the readers take their times from."""

from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

BLACK, WHITE = 256, 4095  # raw black and white levels, 12-bit data
NEUTRAL = (0.5, 1.0, 0.8)  # the camera's raw response to white (AsShotNeutral): white balance R x 2, B x 1.25
# XYZ (D65) -> linear sRGB, as the DNG's ColorMatrix1: a camera whose raw channels are sRGB's primaries, so its
# camera-to-sRGB matrix is the identity and a white-balanced raw value comes out unchanged.
XYZ_TO_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))
RGGB = ((0, 1), (1, 2))  # CFA colour (0 R, 1 G, 2 B) of each position of the 2 x 2 tile


def _rational(value: float, limit: int = 1_000_000) -> tuple:
    fraction = Fraction(value).limit_denominator(limit)
    return fraction.numerator, fraction.denominator


def mosaic(scene: np.ndarray, gain: float) -> np.ndarray:
    """The uint16 RGGB raw data of a white-balanced linear scene (H, W, 3): ``black + scene * gain * neutral * range``
    rounded and clipped at the white level (``gain``: the exposure, relative)."""
    height, width, _ = scene.shape
    channel = np.zeros((height, width), dtype=np.int64)
    for dy in range(2):
        for dx in range(2):
            channel[dy::2, dx::2] = RGGB[dy][dx]
    values = np.take_along_axis(scene, channel[..., None], axis=2)[..., 0] * np.take(NEUTRAL, channel)
    raw = BLACK + np.round(values * gain * (WHITE - BLACK))
    return np.clip(raw, 0, WHITE).astype(np.uint16)


def write_dng(
    path: Path, raw: np.ndarray, exposure: Optional[float] = None, taken: Optional[str] = None, orientation: int = 1
) -> Path:
    """A DNG of RGGB ``raw`` data (uint16 (H, W)) with the tags LibRaw needs, EXIF ``ExposureTime`` (seconds) and
    ``DateTimeOriginal`` ('YYYY:MM:DD HH:MM:SS') in its base IFD, and an ``Orientation``."""
    import tifffile

    matrix = [part for row in XYZ_TO_SRGB for value in row for part in (round(value * 10000), 10000)]
    neutral = [part for value in NEUTRAL for part in _rational(value)]
    tags = [
        (254, 4, 1, 0, True),  # NewSubfileType: the main image
        (33421, 3, 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, 1, 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50706, 1, 4, (1, 4, 0, 0), True),  # DNGVersion
        (50708, 2, 0, 'lffnet_arch test camera', True),  # UniqueCameraModel
        (50714, 3, 1, BLACK, True),  # BlackLevel
        (50717, 3, 1, WHITE, True),  # WhiteLevel
        (50721, 10, 9, matrix, True),  # ColorMatrix1 (SRATIONAL)
        (50728, 5, 3, neutral, True),  # AsShotNeutral (RATIONAL)
        (50778, 3, 1, 21, True),  # CalibrationIlluminant1: D65
        (274, 3, 1, orientation, True),
    ]
    if exposure is not None:
        tags.append((33434, 5, 1, _rational(exposure), True))  # ExposureTime
    if taken is not None:
        tags.append((36867, 2, 0, taken, True))  # DateTimeOriginal
    tifffile.imwrite(path, raw, photometric=32803, extratags=tags)  # 32803: CFA
    return path


def write_heic(
    path: Path, rgb: np.ndarray, exposure: Optional[float] = None, taken: Optional[str] = None, orientation: int = 1
) -> Path:
    """A lossless HEIC of uint8 RGB (8-bit file) or uint16 RGB (10-bit file, codes scaled from 16 bits) with EXIF
    ``ExposureTime``, ``DateTimeOriginal`` and ``Orientation`` (which pillow-heif stores as the image's rotation)."""
    import pillow_heif
    from PIL import Image

    exif = Image.Exif()
    exif[274] = orientation
    if exposure is not None:
        exif.get_ifd(0x8769)[33434] = exposure
    if taken is not None:
        exif.get_ifd(0x8769)[36867] = taken
    height, width, _ = rgb.shape
    mode = 'RGB;16' if rgb.dtype == np.uint16 else 'RGB'
    heif = pillow_heif.from_bytes(mode=mode, size=(width, height), data=np.ascontiguousarray(rgb).tobytes())
    heif.save(path, quality=-1, chroma=444, exif=exif.tobytes())
    return path
