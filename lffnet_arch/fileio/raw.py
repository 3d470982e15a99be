"""Camera RAW frames (DNG and the makers' raw files) as linear float RGB, through LibRaw (the optional ``rawpy``).

A frame is demosaiced by LibRaw (bilinear) with the file's own black and white levels, the camera's as-shot white
balance and its camera-to-sRGB matrix, into linear sRGB (no gamma curve, no automatic brightening, the white level
never lowered to the frame's own maximum), 16 bits, divided by 65535: values proportional to the light and to the
exposure time, so the frames of one bracket differ only by their times. Highlights are clipped at the raw white
level; a pixel whose raw data is clipped in any channel (or which reaches the top of the scale in any output channel)
is set to full scale in all three, neutral white, rather than the false colour (often magenta) that white balancing
part-clipped data gives. Exposure and capture times come from the file's EXIF through the optional ``exifread`` (and
from LibRaw's own metadata parser for containers exifread does not read, such as CR3 and RAF).
"""

import datetime
import os
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from lffnet_arch.fileio.extras import existing_frame, import_extra
from lffnet_arch.fileio.limits import check_pixels

__all__ = ['RAW_EXTENSIONS', 'is_raw', 'raw_exif', 'read_raw']

RAW_EXTENSIONS = ('.dng', '.cr2', '.cr3', '.nef', '.arw', '.raf', '.orf', '.rw2', '.pef', '.srw')
PathLike = Union[str, os.PathLike]
FULL_SCALE = 65535


def is_raw(path: PathLike) -> bool:
    """Whether ``path`` names a camera RAW file (by its extension, any case)."""
    return Path(path).suffix.lower() in RAW_EXTENSIONS


def _postprocess_options(rawpy) -> dict:
    return {
        # Bilinear interpolation, a linear operator: the frames of a bracket stay proportional pixel by pixel. The
        # adaptive methods (AHD, the default) choose directions from the data itself and, at colour edges, break that
        # proportionality by several percent between two exposures of the same scene.
        'demosaic_algorithm': rawpy.DemosaicAlgorithm.LINEAR,
        'gamma': (1, 1),  # linear: no transfer curve
        'no_auto_bright': True,  # no histogram-driven brightening, which would differ from frame to frame
        'adjust_maximum_thr': 0.0,  # keep the file's white level (LibRaw lowers it to a bright frame's maximum)
        'output_bps': 16,
        'use_camera_wb': True,
        'output_color': rawpy.ColorSpace.sRGB,
        'highlight_mode': rawpy.HighlightMode.Clip,
        'user_flip': 0,  # oriented here, after the clipped pixels are marked in sensor geometry
    }


def _raw_clipped(raw, shape: tuple) -> np.ndarray:
    """Pixels (in sensor geometry, ``shape``) with a raw sample at or above its channel's white level among the
    samples demosaicing draws on (3 x 3 neighbourhood); all False when the raw data cannot be mapped onto them."""
    try:
        samples = raw.raw_image_visible
        colors = raw.raw_colors_visible
    except Exception:  # layouts rawpy cannot give as one mosaic (e.g. linear DNG): only the output rule applies
        return np.zeros(shape, dtype=bool)
    if samples.shape != tuple(shape):
        return np.zeros(shape, dtype=bool)
    white = np.full(4, float(raw.white_level))
    per_channel = getattr(raw, 'camera_white_level_per_channel', None)
    if per_channel is not None:
        white = np.minimum(white, [w if w > 0 else white[0] for w in per_channel])
    clipped = (samples >= white[np.clip(colors, 0, 3)]).astype(np.uint8)
    return cv2.dilate(clipped, np.ones((3, 3), np.uint8)).astype(bool)


def _orient(img: np.ndarray, flip: int) -> np.ndarray:
    """The image as LibRaw would turn it for its ``flip`` code (bit 2: transpose, bit 1: rows, bit 0: columns)."""
    if flip & 2:
        img = img[::-1]
    if flip & 1:
        img = img[:, ::-1]
    if flip & 4:
        img = img.swapaxes(0, 1)
    return np.ascontiguousarray(img)


def read_raw(path: PathLike) -> np.ndarray:
    """Read a camera RAW frame as linear float32 sRGB (H, W, 3) in [0, 1], upright (see the module docstring).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        MissingExtraError: rawpy is not installed (the message says ``pip install "lffnet_arch[raw]"``).
        ValueError: Empty, unsupported or corrupt data, or more pixels than the budget; the message names ``path``.
    """
    path = existing_frame(path, 'RAW')
    rawpy = import_extra('rawpy', 'raw', path)
    try:
        with rawpy.imread(str(path)) as raw:
            check_pixels(raw.sizes.height, raw.sizes.width, f'Cannot decode RAW frame {path}')
            flip = raw.sizes.flip  # the file's orientation, read before user_flip=0 replaces it
            rgb = raw.postprocess(**_postprocess_options(rawpy))
            clipped = _raw_clipped(raw, rgb.shape[:2])
    except rawpy.LibRawError as error:
        reason = error.args[0] if error.args else type(error).__name__
        reason = reason.decode('utf-8', 'replace') if isinstance(reason, bytes) else str(reason)
        raise ValueError(
            f'Cannot decode RAW frame {path}: LibRaw cannot read it ({reason}); expected a camera RAW or DNG file.'
        ) from error
    if rgb.dtype != np.uint16 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'RAW frame {path} decoded as {rgb.dtype} {rgb.shape}; expected 16-bit RGB.')
    rgb[clipped | (rgb.max(axis=2) >= FULL_SCALE)] = FULL_SCALE
    return _orient(rgb, flip).astype(np.float32) / np.float32(FULL_SCALE)


def _tag_value(tags: dict, name: str):
    """The first value of EXIF tag ``name`` from the Exif IFD, else the base IFD (DNGs may keep it there)."""
    for ifd in ('EXIF', 'Image'):
        tag = tags.get(f'{ifd} {name}')
        if tag is not None and getattr(tag, 'values', None):
            values = tag.values
            return values if isinstance(values, str) else values[0]
    return None


def _seconds(value) -> Optional[float]:
    try:
        value = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def raw_exif(path: PathLike) -> dict:
    """EXIF ``ExposureTime`` (seconds), ``DateTimeOriginal`` and ``SubsecTimeOriginal`` of a RAW file, None where
    the file has none. Read with exifread; LibRaw's metadata parser gives what exifread cannot reach.

    Raises:
        MissingExtraError: exifread or rawpy is not installed.
    """
    exifread = import_extra('exifread', 'raw', path)
    rawpy = import_extra('rawpy', 'raw', path)
    found = {'ExposureTime': None, 'DateTimeOriginal': None, 'SubsecTimeOriginal': None}
    try:
        with open(path, 'rb') as file:
            tags = exifread.process_file(file, details=False, extract_thumbnail=False)
    except Exception:  # exifread raises many types on files it cannot parse; LibRaw is asked next
        tags = {}
    found['ExposureTime'] = _seconds(_tag_value(tags, 'ExposureTime'))
    stamp, subsec = _tag_value(tags, 'DateTimeOriginal'), _tag_value(tags, 'SubSecTimeOriginal')
    found['DateTimeOriginal'] = str(stamp) if stamp is not None else None
    found['SubsecTimeOriginal'] = str(subsec) if subsec is not None else None
    if found['ExposureTime'] is None or found['DateTimeOriginal'] is None:
        try:
            with rawpy.imread(str(path)) as raw:
                other = getattr(raw, 'other', None)  # LibRaw's parsed metadata, where rawpy exposes it
        except (rawpy.LibRawError, OSError):
            return found
        if other is None:
            return found
        if found['ExposureTime'] is None and other.shutter_speed > 0:
            found['ExposureTime'] = float(f'{other.shutter_speed:.6g}')  # LibRaw keeps it as a 32-bit float
        when = other.timestamp
        if found['DateTimeOriginal'] is None and isinstance(when, datetime.datetime) and when.year > 1970:
            found['DateTimeOriginal'] = when.strftime('%Y:%m:%d %H:%M:%S')
    return found
