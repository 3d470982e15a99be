"""The brackets of a shoot: a folder holding the frames of many brackets (a card's folder after auto-exposure
bracketing), grouped into one bracket each.

Frames are grouped, in this order of evidence:

1. **Capture time** (EXIF ``DateTimeOriginal`` with its sub-seconds): in file order, a frame taken more than ``gap``
   seconds after the one before it starts a new bracket (a frame without a capture time stays with its neighbour);
2. **The exposure sequence** (EXIF ``ExposureTime``): a frame whose time repeats one already in the current bracket
   starts a new bracket (auto-exposure bracketing repeats its pattern: 0, -2, +2, 0, -2, +2);
3. **File order**, ``fallback`` frames a bracket, when the frames carry neither.

A bracket has at most ``MAX_FRAMES`` frames; a group that is still longer is cut in file order. A folder with an
``exposure.txt`` is always one bracket (the file describes all its frames).
"""

import datetime
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from PIL import Image

from lffnet_arch.deploy.bracket import EXIF_IFD, read_exif_exposure
from lffnet_arch.fileio.heic import is_heic, register_heic
from lffnet_arch.fileio.raw import is_raw, raw_exif

__all__ = ['MAX_FRAMES', 'capture_time', 'group_shoot']

PathLike = Union[str, os.PathLike]
MAX_FRAMES = 9
EXIF_DATETIME_ORIGINAL = 36867
EXIF_SUBSEC_ORIGINAL = 37521


def _exif_stamp(path: PathLike) -> tuple:
    """EXIF ``DateTimeOriginal`` and ``SubsecTimeOriginal`` (None where absent): camera RAW through exifread, other
    frames (HEIC/HEIF with pillow-heif's plugin) through Pillow."""
    if is_raw(path):
        found = raw_exif(path)
        return found['DateTimeOriginal'], found['SubsecTimeOriginal']
    if is_heic(path):
        register_heic(path)
    try:
        with Image.open(path) as img:
            exif = img.getexif().get_ifd(EXIF_IFD)
            return exif.get(EXIF_DATETIME_ORIGINAL), exif.get(EXIF_SUBSEC_ORIGINAL)
    except (OSError, ValueError, SyntaxError):
        return None, None


def capture_time(path: PathLike) -> Optional[float]:
    """Seconds since the epoch of EXIF ``DateTimeOriginal`` (plus ``SubsecTimeOriginal``), or None.

    Raises:
        MissingExtraError: A RAW or HEIC file whose optional package is not installed.
    """
    stamp, subsec = _exif_stamp(path)
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.datetime.strptime(stamp.strip('\x00 '), '%Y:%m:%d %H:%M:%S')
    except ValueError:
        return None
    fraction = float(f'0.{str(subsec).strip()}') if subsec and str(subsec).strip().isdigit() else 0.0
    return when.replace(tzinfo=datetime.timezone.utc).timestamp() + fraction


def _split_by_repeats(paths: list, times: dict) -> list:
    groups, current = [], []
    for path in paths:
        if current and times[path] is not None and times[path] in {times[p] for p in current}:
            groups.append(current)
            current = []
        current.append(path)
    return groups + ([current] if current else [])


def group_shoot(paths: Sequence[Path], gap: float = 2.0, fallback: int = 3) -> list[list[Path]]:
    """Group the frames of a shoot into brackets (see the module docstring); each bracket keeps file order.

    Args:
        paths: The frames, in file-name order.
        gap: Seconds between captures that separate two brackets. Default: 2.
        fallback: Frames a bracket in file order when the frames carry no EXIF. Default: 3.
    """
    paths = list(paths)
    taken = {p: capture_time(p) for p in paths}
    exposures = {p: read_exif_exposure(p) for p in paths}
    groups, current = [], []
    for previous, path in zip([None, *paths], paths):
        known = previous is not None and taken[previous] is not None and taken[path] is not None
        if current and known and taken[path] - taken[previous] > gap:
            groups.append(current)
            current = []
        current.append(path)
    groups.append(current)
    if any(t is not None for t in exposures.values()):
        groups = [g for group in groups for g in _split_by_repeats(group, exposures)]
    elif all(t is None for t in taken.values()) and len(paths) > MAX_FRAMES:
        groups = [paths[i : i + fallback] for i in range(0, len(paths), fallback)]
    cut = [group[i : i + MAX_FRAMES] for group in groups for i in range(0, len(group), MAX_FRAMES)]
    return [sorted(group, key=lambda p: p.name) for group in cut]
