"""Simulated brackets written to disk in the Kalantari layout, so every folder and LMDB tool reads them.

Each scene folder holds ``ldr_<i>.<ext>`` (16-bit TIFF, or the camera's JPEG files as simulated, or 8-bit PNG),
``exposure.txt`` (EV per line, 0 for the shortest frame) and ``HDRImg.exr`` (the float32 GT, lossless). A folder
written from a :class:`~lffnet_arch.data.simulator.simulated_dataset.SimulatedBracketDataset` holds exactly the
samples that the dataset gives for epoch 0 (the JPEG bytes are the simulated ones; the GT is stored without loss).
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
from tqdm import tqdm

from lffnet_arch.data.simulator.capture import Bracket
from lffnet_arch.fileio.atomic import atomic_path
from lffnet_arch.fileio.image import imwrite_atomic, write_hdr

__all__ = ['GT_EXR_NAME', 'SET_MARKER', 'write_bracket', 'write_simulated_set']

PathLike = Union[str, os.PathLike]
GT_EXR_NAME = 'HDRImg.exr'
EXPOSURE_NAME = 'exposure.txt'
SET_MARKER = 'simulated_set.json'


def write_bracket(folder: PathLike, bracket: Bracket) -> None:
    """Write one bracket as a Kalantari-layout scene folder (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, ldr in enumerate(bracket.ldrs):
        if bracket.jpeg is not None:
            with atomic_path(folder / f'ldr_{i}.jpg') as tmp:
                tmp.write_bytes(bracket.jpeg[i])
        else:
            suffix = '.tif' if ldr.dtype == np.uint16 else '.png'
            imwrite_atomic(folder / f'ldr_{i}{suffix}', np.ascontiguousarray(ldr[..., ::-1]))
    with atomic_path(folder / EXPOSURE_NAME) as tmp:
        tmp.write_text(''.join(f'{ev:.17g}\n' for ev in bracket.evs))
    write_hdr(folder / GT_EXR_NAME, bracket.gt)


def write_simulated_set(
    dataset, output: PathLike, indices: Sequence[int], prefix: str = 'sim', progress: bool = False
) -> Path:
    """Write samples ``indices`` (epoch 0) of a SimulatedBracketDataset to ``output/<prefix>_<index>/``.

    ``output/simulated_set.json`` (the dataset's options and what each scene drew) is written last: a folder
    without it is incomplete. The caller makes sure ``output`` is new or may be replaced.

    Returns:
        ``output`` as a Path.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    scenes = {}
    for index in tqdm(list(indices), desc=f'Simulating {output.name}', unit='scene', disable=not progress):
        bracket, style = dataset.bracket(0, int(index))
        name = f'{prefix}_{int(index):04d}'
        write_bracket(output / name, bracket)
        scenes[name] = {'style': style, **bracket.info}
    options = {k: v for k, v in dataset.opt.items() if k not in ('phase',)}
    record = {'options': options, 'photos': dataset.photos, 'scenes': scenes}
    with atomic_path(output / SET_MARKER) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=str) + '\n')
    return output
