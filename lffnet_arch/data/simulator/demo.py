"""The quick start's demo set: brackets simulated from small real radiance crops bundled with the package.

The quick start trains a narrow network on CPU right after installation, with nothing to download: this module
writes a small data set in the Kalantari layout that the HDR dataset reads exactly like Kalantari's::

    root/Training/demo_000/ldr_0.tif, ldr_1.tif, ldr_2.tif, exposure.txt, HDRImg.exr
    root/Test/demo_000/...
    root/demo_set.json        (written last: the set is complete only when it is there)

Every bracket comes from the capture simulator (:mod:`lffnet_arch.data.simulator.capture`) in its ``kalantari`` style (a
tripod, frames 2 or 3 stops apart through a gamma-2.2 response, 16-bit, sensor noise, clipping at the raw level,
one or two moving objects), over six 256 x 256 crops of CC0 Poly Haven panoramas in ``demo_radiance/`` (real
radiance, 11 to 12 stops per crop; see its LICENSE.md). Training scenes come from the first four crops, test scenes
from the other two, so the demo validates on photographs it never trained on. The ground truth is the reference
frame's radiance in the shortest frame's units, in [0, 1].

Scene ``i`` of a split depends only on (seed, split, i) and the size, so the same arguments give the same bytes
with the same NumPy and OpenCV builds.
"""

import json
import os
import shutil
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Union

import numpy as np
from tqdm import tqdm

from lffnet_arch.data.simulator.capture import Bracket, settings_for_style, simulate_bracket
from lffnet_arch.data.simulator.radiance import RadianceMap, load_radiance_maps
from lffnet_arch.data.simulator.simulated_set import GT_EXR_NAME, write_bracket
from lffnet_arch.fileio.atomic import atomic_path

__all__ = ['DEMO_RADIANCE', 'demo_bracket', 'demo_set_complete', 'ensure_demo_set', 'generate_demo_set']

PathLike = Union[str, os.PathLike]

DEMO_RADIANCE = Path(__file__).with_name('demo_radiance')
TRAIN_PHOTOS = ('adams_place_bridge_1k', 'aerodynamics_workshop_1k', 'brown_photostudio_02_1k', 'empty_warehouse_01_1k')
TEST_PHOTOS = ('forest_slope_1k', 'peppermint_powerplant_1k')
REF_IDX = 1
FRAME_NAMES = ('ldr_0.tif', 'ldr_1.tif', 'ldr_2.tif')
EXPOSURE_NAME = 'exposure.txt'
GT_NAME = GT_EXR_NAME
MARKER_NAME = 'demo_set.json'
SCENE_PREFIX = 'demo_'
SPLITS = ('Training', 'Test')
# Bump whenever the generated pixels change, so ensure_demo_set regenerates an outdated set.
FORMAT_VERSION = 3
MIN_SIZE = 32
# The demo meters the reference frame brighter than the simulator's default (key 0.3-0.6 of full scale instead of
# 0.05-0.4), so its reference clips large bright regions that only the short frame holds: a tiny network trained for
# a few minutes has that much to recover (measured: +3.3 dB PSNR-mu over the reference frame at 0.3-0.6, -1.9 dB at
# the default, where the reference alone is already 34 dB).
DEMO_CAPTURE = {'key_level': (0.3, 0.6)}
MAX_SIZE = 256


@cache
def _maps(split: str) -> tuple:
    photos = TRAIN_PHOTOS if split == 'Training' else TEST_PHOTOS
    return tuple(load_radiance_maps(DEMO_RADIANCE, include=photos))


def demo_bracket(size: int = 128, seed: Union[int, Sequence[int]] = 0, split: str = 'Training') -> Bracket:
    """One demo bracket: the simulator's kalantari style over the bundled crops of ``split``.

    Args:
        size: Side of the frames, 32 to 256.
        seed: An int or a sequence of ints; equal seeds give equal brackets.
        split: 'Training' (four crops) or 'Test' (the other two).
    """
    size = _check_size(size)
    if split not in SPLITS:
        raise ValueError(f'Demo split must be one of {SPLITS}, got {split!r}.')
    seed = (seed,) if isinstance(seed, int) else tuple(seed)
    maps: Sequence[RadianceMap] = _maps(split)
    return simulate_bracket(maps, settings_for_style('kalantari', DEMO_CAPTURE), size, seed)


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f'Demo scene size must be an integer from {MIN_SIZE} to {MAX_SIZE}; got {size!r}.')
    return int(size)


def _parameters(num_train: int, num_val: int, size: int, seed: int) -> dict:
    for name, value, low in (('num_train', num_train, 1), ('num_val', num_val, 1), ('seed', seed, 0)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f'{name} must be an integer >= {low}; got {value!r}.')
    return {
        'format_version': FORMAT_VERSION,
        'num_train': int(num_train),
        'num_val': int(num_val),
        'size': _check_size(size),
        'seed': int(seed),
    }


def _scene_folders(root: Path, params: dict) -> list:
    counts = (params['num_train'], params['num_val'])
    return [root / split / f'{SCENE_PREFIX}{i:03d}' for split, count in zip(SPLITS, counts) for i in range(count)]


def demo_set_complete(root: PathLike, num_train: int = 16, num_val: int = 4, size: int = 128, seed: int = 0) -> bool:
    """Whether ``root`` holds a finished demo set made with exactly these arguments by this generator version."""
    root = Path(root)
    params = _parameters(num_train, num_val, size, seed)
    try:
        recorded = json.loads((root / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    if recorded != params:
        return False
    names = (*FRAME_NAMES, EXPOSURE_NAME, GT_NAME)
    return all((folder / name).is_file() for folder in _scene_folders(root, params) for name in names)


def _clear(root: Path, overwrite: bool) -> None:
    """Make room for a new set: refuse without ``overwrite``, and never delete what the generator did not write."""
    marker = root / MARKER_NAME
    occupied = [root / split for split in SPLITS if (root / split).is_dir() and any((root / split).iterdir())]
    if not occupied and not marker.exists():
        return
    if not overwrite:
        raise FileExistsError(
            f'{root} already holds a data set ({MARKER_NAME} or non-empty {"/".join(SPLITS)}); '
            'pass overwrite=True (--overwrite) to replace it.'
        )
    for split_dir in occupied:
        foreign = [p.name for p in split_dir.iterdir() if not (p.is_dir() and p.name.startswith(SCENE_PREFIX))]
        if foreign:
            raise FileExistsError(
                f'Refusing to overwrite {split_dir}: it holds {foreign[0]!r}, which is not a demo '
                f'scene (expected only {SCENE_PREFIX}* folders). Remove it yourself if intended.'
            )
    # The marker goes first, so an interrupted clean-up is never taken for a complete set.
    marker.unlink(missing_ok=True)
    for split_dir in occupied:
        shutil.rmtree(split_dir)


def generate_demo_set(
    root: PathLike,
    num_train: int = 16,
    num_val: int = 4,
    size: int = 128,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write a synthetic demo set in Kalantari's layout under ``root``.

    Scene ``i`` of a split depends only on (seed, split, i) and the size, so the same arguments give the same
    bytes. The marker ``demo_set.json`` is written last; a set without it is incomplete.

    Args:
        root: Output folder; ``root/Training`` and ``root/Test`` are created in it.
        num_train: Number of training scenes.
        num_val: Number of test scenes.
        size: Side of the square frames, 32 to 256.
        seed: Non-negative integer seed.
        overwrite: Replace an existing demo set under ``root`` (folders other than demo scenes are never deleted).
        progress: Show a tqdm progress bar.

    Returns:
        ``root`` as a Path.

    Raises:
        FileExistsError: ``root`` already holds a data set and ``overwrite`` is False, or it holds files that the
            generator did not write.
        ValueError: A count, the size or the seed is out of range.
    """
    root = Path(root)
    params = _parameters(num_train, num_val, size, seed)
    _clear(root, overwrite)
    folders = _scene_folders(root, params)
    for folder in tqdm(folders, desc='Demo scenes', unit='scene', disable=not progress):
        split_idx, index = SPLITS.index(folder.parent.name), int(folder.name[len(SCENE_PREFIX) :])
        write_bracket(folder, demo_bracket(params['size'], (params['seed'], split_idx, index), SPLITS[split_idx]))
    with atomic_path(root / MARKER_NAME) as tmp:
        tmp.write_text(json.dumps(params, indent=2) + '\n')
    return root


def ensure_demo_set(root: PathLike, **kwargs: Any) -> Path:
    """Generate the demo set under ``root`` unless a complete one with the same arguments is already there.

    A missing, interrupted or differently parameterised demo set is (re)generated; folders that are not demo scenes
    are never deleted (``FileExistsError``). Keyword arguments are those of :func:`generate_demo_set`, without
    ``overwrite``.
    """
    if 'overwrite' in kwargs:
        raise TypeError('ensure_demo_set() decides on overwriting itself; call generate_demo_set() to force it.')
    progress = kwargs.pop('progress', False)
    if demo_set_complete(root, **kwargs):
        return Path(root)
    return generate_demo_set(root, overwrite=True, progress=progress, **kwargs)
