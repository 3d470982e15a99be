"""Cut every Kalantari-layout scene into overlapping square patches, each written as a scene folder.

Each patch ``<scene>_<y>_<x>`` (top-left corner, sanitised: no dots or spaces) gets the scene's frames cropped and
written as TIFF with the source's integers unchanged (16-bit stays 16-bit, 8-bit stays 8-bit; nothing goes through
float), the exposure file copied byte for byte, and the GT crop in the source's format. A Radiance ``.hdr`` GT stays
``.hdr``: re-encoding the crop of a decoded RGBE image gives back the same RGBE values, so the patch decodes to
exactly the cropped floats; every GT patch is read back and compared, and the script stops if one differs.
The last row and column of windows are placed at the image border, so every pixel is covered.

The output is built in a hidden sibling folder and moved into place when complete; an existing output is
refused unless --overwrite is given.
"""

import shutil
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lffnet_arch.data import layout
from lffnet_arch.data.prepare.jobs import run_jobs
from lffnet_arch.fileio.atomic import staged_output_dir
from lffnet_arch.fileio.image import imwrite_atomic, read_hdr, write_hdr


def patch_positions(length: int, size: int, stride: int) -> list:
    """Window starts along one axis: every ``stride`` pixels, plus one flush with the far border."""
    if length < size:
        raise ValueError(f'Patch size {size} is larger than the image side {length}.')
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def frame_names(paths: list) -> list:
    """Patch frame names: the source stems with .tif, or ldr_<i>.tif where that would change the sort order."""
    names = [f'{p.stem}.tif' for p in paths]
    if sorted(set(names)) != names:
        names = [f'ldr_{i:03d}.tif' for i in range(len(paths))]
    return names


def extract_scene(scene_dir: Path, output: Path, size: int, stride: int, num_exposure: int, exposure_file: str) -> int:
    """Write the patches of one scene into ``output``; returns how many."""
    scene = layout.read_scene(scene_dir, num_exposure, exposure_file, with_gt=True, keep_raw=True)
    height, width = scene.gt.shape[:2]
    if height < size or width < size:
        raise ValueError(f'Scene {scene_dir} is {height} x {width}, smaller than the patch size {size}.')
    names = frame_names(scene.paths)
    gt_name = 'HDRImg' + scene.gt_path.suffix.lower()
    count = 0
    for y in patch_positions(height, size, stride):
        for x in patch_positions(width, size, stride):
            window = (slice(y, y + size), slice(x, x + size))
            patch_dir = output / layout.sanitize_name(f'{scene.name}_{y}_{x}')
            try:
                patch_dir.mkdir()
            except FileExistsError as err:
                raise ValueError(
                    f'Patch name {patch_dir.name} of scene {scene_dir} is already taken by another '
                    'scene; rename one of the scenes.'
                ) from err
            for raw, name in zip(scene.raw_ldrs, names):  # RGB integers; cv2 writes BGR
                imwrite_atomic(patch_dir / name, np.ascontiguousarray(raw[window][..., ::-1]))
            shutil.copyfile(scene_dir / exposure_file, patch_dir / exposure_file)
            _write_gt_exact(patch_dir / gt_name, np.ascontiguousarray(scene.gt[window]))
            count += 1
    return count


def _write_gt_exact(path: Path, gt: np.ndarray) -> None:
    write_hdr(path, gt)
    if not np.array_equal(read_hdr(path), gt):
        raise ValueError(
            f'GT patch {path} does not decode to the cropped source values (values below the RGBE range, '
            'about 1e-32, are the known case); this patch would not be lossless.'
        )


def extract_subimages(
    scenes: list,
    output: Path,
    overwrite: bool = False,
    size: int = 128,
    stride: int = 64,
    num_exposure: int = 3,
    exposure_file: str = 'exposure.txt',
    workers: int = 1,
) -> int:
    """Cut ``scenes`` (scene folders) into patches under ``output``, built in a staged folder; returns the number of
    patches."""
    total = 0
    with staged_output_dir(output, overwrite) as tmp:
        job = partial(
            extract_scene,
            output=tmp,
            size=size,
            stride=stride,
            num_exposure=num_exposure,
            exposure_file=exposure_file,
        )
        with tqdm(total=len(scenes), unit='scene', desc='extract') as bar:
            for count in run_jobs(job, scenes, workers, ordered=False):
                total += count
                bar.update(1)
                bar.set_postfix(patches=total)
    return total
