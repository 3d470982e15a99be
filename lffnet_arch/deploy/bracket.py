"""Reading one exposure bracket: its frames and their exposure times (explicit, ``exposure.txt`` or EXIF).

Frames are TIFF, PNG, JPEG, HEIC/HEIF or camera RAW files (:func:`lffnet_arch.fileio.image.read_frame`). A RAW
bracket is linear data (:func:`is_raw_bracket`): it needs no response calibration (:func:`raw_response`); RAW and
other frames do not mix in one bracket.
"""

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from PIL import Image

from lffnet_arch.data.layout import FRAME_EXTENSIONS, list_frames, read_exposure_file
from lffnet_arch.fileio.heic import is_heic, register_heic
from lffnet_arch.fileio.image import ldr_to_float, read_frame
from lffnet_arch.fileio.raw import is_raw, raw_exif

__all__ = [
    'choose_frames',
    'format_seconds',
    'is_raw_bracket',
    'raw_response',
    'read_bracket',
    'read_exif_exposure',
]

PathLike = Union[str, os.PathLike]
EXIF_IFD = 0x8769
EXIF_EXPOSURE_TIME = 33434


def _rational_to_float(value: Any) -> Optional[float]:
    if isinstance(value, tuple):
        if len(value) == 2:
            value = value[0] / value[1] if value[1] else math.nan
        elif len(value) == 1:
            value = value[0]
    try:
        value = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def read_exif_exposure(path: PathLike) -> Optional[float]:
    """EXIF ``ExposureTime`` (tag 33434, in the Exif IFD 0x8769 or the base IFD) of a frame, in seconds: JPEG, TIFF
    and HEIC/HEIF through Pillow, camera RAW through exifread (:func:`lffnet_arch.fileio.raw.raw_exif`).

    Returns:
        float | None: The exposure time, or None when the file has none (or its header cannot be parsed).

    Raises:
        MissingExtraError: A RAW or HEIC file whose optional package is not installed (a ValueError naming the file
            and the extra to install).
    """
    if is_raw(path):
        return raw_exif(path)['ExposureTime']
    if is_heic(path):
        register_heic(path)
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            value = exif.get_ifd(EXIF_IFD).get(EXIF_EXPOSURE_TIME, exif.get(EXIF_EXPOSURE_TIME))
    except (OSError, ValueError, SyntaxError):
        return None
    return None if value is None else _rational_to_float(value)


def _bracket_paths(paths_or_folder: Union[PathLike, Sequence[PathLike]]) -> tuple[list[Path], Optional[Path]]:
    """Frame files and the folder whose exposure file describes them (None when the files are a partial list)."""
    if isinstance(paths_or_folder, (str, os.PathLike)):
        paths_or_folder = [paths_or_folder]
    paths = [Path(p) for p in paths_or_folder]
    if len(paths) == 1 and paths[0].is_dir():
        frames = list_frames(paths[0])
        if not frames:
            raise ValueError(f'No frames ({" ".join(FRAME_EXTENSIONS)}) in {paths[0]}.')
        return frames, paths[0]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f'Frame file not found: {path}')
    parents = {p.resolve().parent for p in paths}
    if len(parents) == 1:
        folder = parents.pop()
        if {p.resolve() for p in list_frames(folder)} == {p.resolve() for p in paths}:
            return sorted(paths, key=lambda p: p.name), folder
    return paths, None


def read_bracket(
    paths_or_folder: Union[PathLike, Sequence[PathLike]],
    exposures: Optional[Sequence[float]] = None,
    exposure_file: str = 'exposure.txt',
    return_sources: bool = False,
    as_float: bool = True,
) -> tuple:
    """Read the frames of one bracket and their exposure times.

    Exposure times, in order of priority: ``exposures`` (seconds, or any unit, in the order of the frames
    returned); ``exposure_file`` in the frames' folder (one EV per line in file-name order, t = 2 ** EV; used when
    the frames are that folder's complete frame list); each frame's EXIF ``ExposureTime`` (JPEG, TIFF, HEIC, RAW).

    Args:
        paths_or_folder (str | PathLike | sequence): A folder holding the frames (TIFF, PNG, JPEG, HEIC/HEIF or
            camera RAW files, :data:`~lffnet_arch.data.layout.FRAME_EXTENSIONS`, sorted by file name) or the frame
            files (kept in the given order unless they are a folder's complete list).
        exposures (sequence of float, optional): Exposure times, one per frame.
        exposure_file (str): Name of the EV file looked for in the folder. Default: 'exposure.txt'.

        return_sources (bool): Also return the frame files and where the times came from (``'--exposures'``, the
            exposure file's name, or ``'EXIF'``). Default: False.
        as_float (bool): False keeps TIFF, PNG and JPEG frames as their uint8 / uint16 integers (a quarter or half
            the memory; :func:`fuse` and :func:`choose_frames` take them as they are). Default: True.

    Returns:
        tuple[list[np.ndarray], np.ndarray]: T float32 RGB frames (H, W, 3) in [0, 1] (their integers with
        ``as_float=False``) and float64 (T,) exposure times, in the same (file) order; :func:`fuse` sorts them by
        exposure. With ``return_sources``, also the frame paths and the source of the times. RAW frames are
        linear sRGB (:func:`is_raw_bracket` of the paths tells; :func:`raw_response` gives the response to fuse them
        with).

    Raises:
        FileNotFoundError: A frame file or the folder is missing.
        ValueError: Fewer than two frames, RAW and other frames mixed (named), an unreadable frame (named), a RAW
            or HEIC frame whose optional package is missing, a malformed exposure file, or no exposure times
            available (the message says how to give them).
    """
    paths, folder = _bracket_paths(paths_or_folder)
    if len(paths) < 2:
        raise ValueError(
            f'A bracket needs at least 2 frames of different exposure; found {len(paths)}: {[str(p) for p in paths]}.'
        )
    is_raw_bracket(paths)  # refuses a mix before decoding anything
    frames = [read_frame(p, as_float) for p in paths]
    if exposures is not None:
        times = np.asarray(exposures, dtype=np.float64).ravel()
        if times.size != len(paths):
            raise ValueError(
                f'Got {times.size} exposure times for {len(paths)} frames '
                f'({", ".join(p.name for p in paths)}); give one per frame.'
            )
        return (frames, times, paths, '--exposures') if return_sources else (frames, times)
    if folder is not None and (folder / exposure_file).is_file():
        times = np.power(2.0, read_exposure_file(folder / exposure_file, len(paths)))
        return (frames, times, paths, exposure_file) if return_sources else (frames, times)
    exif = [read_exif_exposure(p) for p in paths]
    lacking = [p.name for p, t in zip(paths, exif) if t is None]
    if lacking:
        where = f'{folder}' if folder is not None else "the frames' folder"
        raise ValueError(
            f'No exposure times for {", ".join(p.name for p in paths)}: no EXIF ExposureTime in '
            f'{", ".join(lacking)} and no {exposure_file} in {where}. Give them in seconds, one per '
            f'frame in file-name order (--exposures 0.01 0.04 0.16 on the command line, exposures= in '
            f'Python), or write an {exposure_file} with one EV value per line next to the frames.'
        )
    times = np.asarray(exif, dtype=np.float64)
    if np.unique(times).size < times.size:
        raise ValueError(
            f'The EXIF ExposureTime of {", ".join(f"{p.name} ({format_seconds(s)})" for p, s in zip(paths, times))} '
            'repeats a value; a bracket needs one time per exposure. If the camera recorded them wrongly, give them '
            'with --exposures (seconds, file-name order).'
        )
    _warn_if_contradicted(paths, frames, times)
    return (frames, times, paths, 'EXIF') if return_sources else (frames, times)


def is_raw_bracket(paths: Sequence[PathLike]) -> bool:
    """Whether a bracket's frames are camera RAW files (linear data, by their extensions): True when all are, False
    when none is.

    Raises:
        ValueError: RAW and other frames mixed; the message names both groups.
    """
    raw = [Path(p).name for p in paths if is_raw(p)]
    if raw and len(raw) < len(paths):
        other = [Path(p).name for p in paths if not is_raw(p)]
        raise ValueError(
            f'The bracket mixes camera RAW frames ({", ".join(raw)}) with other frames ({", ".join(other)}): RAW '
            'frames are linear, the others are not, so they cannot be fused together. Give the RAW files alone, or '
            'the others alone.'
        )
    return bool(raw)


def raw_response(response: Union[str, Any, None], gamma: Optional[float], name: str) -> tuple:
    """``(response, gamma)`` to fuse a RAW bracket with: ``('linear', None)`` where the response was left to
    ``'auto'`` (RAW frames are linear, there is nothing to calibrate); a response or gamma given explicitly is kept,
    with a warning naming ``name`` unless it is linear itself.
    """
    if gamma is None and isinstance(response, str) and response.strip() == 'auto':
        return 'linear', None
    spec = response if isinstance(response, str) else getattr(response, 'spec', None)
    spec = 'gamma:2.2' if response is None else spec  # what fuse() takes None for
    if gamma is not None or spec != 'linear':
        given = f'gamma {gamma:g}' if gamma is not None else f'response {spec or "table"}'
        warnings.warn(
            f'{name}: the frames are camera RAW files, decoded to linear values; the {given} given is applied to '
            'them anyway (leave --response at auto, or give --response linear, to use them as they are).',
            stacklevel=2,
        )
    return response, gamma


def choose_frames(frames: Sequence[np.ndarray], times: np.ndarray, count: int = 3) -> list[int]:
    """Indexes of ``count`` frames of a longer bracket for a network that fuses ``count`` (3: short, reference,
    long), in exposure order.

    The reference is the best-exposed frame (the fewest pixels clipped at the top or crushed at the bottom). The
    others are taken nearest to 2 to 3 stops from it on each side, the spacing the networks were trained with (a
    frame 2 or more stops away when there is one, else the farthest): the short frame holds the reference's
    highlights, the long one its shadows. For other counts, frames evenly spread over the exposure order.
    """
    order = [int(i) for i in np.argsort(times, kind='stable')]
    if len(order) <= count:
        return order
    if count != 3:
        picks = np.round(np.linspace(0, len(order) - 1, count)).astype(int)
        return [order[i] for i in picks]
    badness = [_badly_exposed(frame) for frame in frames]
    inner = order[1:-1]
    reference = min(inner, key=lambda i: (badness[i], abs(inner.index(i) - (len(inner) - 1) / 2)))
    stops = {i: float(np.log2(times[i] / times[reference])) for i in order}

    def nearest(candidates: list) -> int:
        wide = [i for i in candidates if abs(stops[i]) >= 2]
        pool = wide or candidates
        if wide:  # nearest to 2.5 stops; of two equally near, the closer to the reference
            return min(pool, key=lambda i: (abs(abs(stops[i]) - 2.5), abs(stops[i])))
        return max(pool, key=lambda i: abs(stops[i]))

    short = nearest([i for i in order if stops[i] < 0])
    long = nearest([i for i in order if stops[i] > 0])
    return [short, reference, long]


def _badly_exposed(frame: np.ndarray) -> float:
    """Share of a frame's pixels clipped at the top (brightest channel above 0.98) or crushed at the bottom (below
    0.02); integer frames compare their brightest channel as :func:`ldr_to_float` converts it (the same answer)."""
    brightest = frame.max(axis=2)
    if not np.issubdtype(brightest.dtype, np.floating):
        brightest = ldr_to_float(brightest)
    return float(np.mean((brightest > 0.98) | (brightest < 0.02)))


def _mean_code(frame: np.ndarray) -> float:
    """A frame's mean value in [0, 1] (integer frames scaled by their largest code)."""
    mean = float(np.mean(frame))
    return mean if np.issubdtype(frame.dtype, np.floating) else mean / np.iinfo(frame.dtype).max


def format_seconds(value: float) -> str:
    """An exposure time as photographers write it: 1/100 s, 2 s."""
    return f'1/{1 / value:.0f} s' if value < 1 else f'{value:g} s'


def _warn_if_contradicted(paths: Sequence[Path], frames: Sequence[np.ndarray], times: np.ndarray) -> None:
    """Warn when EXIF times and the frames' brightness disagree in order: a longer exposure never looks darker."""
    brightness = [_mean_code(frame) for frame in frames]
    by_time = np.argsort(times, kind='stable')
    for shorter, longer in zip(by_time[:-1], by_time[1:]):
        if brightness[shorter] > brightness[longer] * 1.05 + 1e-3:
            warnings.warn(
                f'EXIF ExposureTime says {paths[longer].name} ({format_seconds(times[longer])}) is the longer '
                f'exposure, but it is darker than {paths[shorter].name} ({format_seconds(times[shorter])}): the times '
                'look reversed or wrong; give the right ones with --exposures.',
                stacklevel=3,
            )
            return
