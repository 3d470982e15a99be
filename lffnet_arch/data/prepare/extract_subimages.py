"""Cut every Kalantari-layout scene into overlapping square patches, each written as a scene folder.

Usage:
    python scripts/data_preparation/extract_subimages_hdr.py --input datasets/Kalantari/Training \\
        --output datasets/Kalantari/Training_sub128 --size 128 --stride 64 [--num_exposure 3] \\
        [--exposure_file exposure.txt] [--workers 4] [--overwrite]

Each patch ``<scene>_<y>_<x>`` (top-left corner, sanitised: no dots or spaces) gets the scene's frames cropped and
written as TIFF with the source's integers unchanged (16-bit stays 16-bit, 8-bit stays 8-bit; nothing goes through
float), the exposure file copied byte for byte, and the GT crop in the source's format. A Radiance ``.hdr`` GT stays
``.hdr``: re-encoding the crop of a decoded RGBE image gives back the same RGBE values, so the patch decodes to
exactly the cropped floats; every GT patch is read back and compared, and the script stops if one differs.
The last row and column of windows are placed at the image border, so every pixel is covered.

The output is built in a hidden sibling folder and moved into place when complete; an existing output is
refused unless --overwrite is given.
"""

import argparse
import shutil
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lffnet_arch.data import layout
from lffnet_arch.utils.file_util import staged_output_dir
from lffnet_arch.utils.hdr_util import imwrite_atomic, read_hdr, write_hdr
from lffnet_arch.utils.parallel import run_jobs


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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--input', required=True, help='folder of scene folders (Kalantari layout)')
    parser.add_argument('--output', required=True, help='folder to create, one sub-folder per patch')
    parser.add_argument('--size', type=int, default=128, help='patch side in pixels (default 128)')
    parser.add_argument('--stride', type=int, default=64, help='step between patches (default 64)')
    parser.add_argument('--num_exposure', type=int, default=3, help='frames per scene (default 3)')
    parser.add_argument('--exposure_file', default='exposure.txt', help='exposure file name (default exposure.txt)')
    parser.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output folder')
    args = parser.parse_args(argv)
    if args.size < 1 or args.stride < 1 or args.workers < 1:
        parser.error('--size, --stride and --workers must be positive integers.')
    if Path(args.output).exists() and not args.overwrite:
        parser.error(f'output {args.output} already exists; pass --overwrite to replace it.')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    scenes = layout.list_scenes(args.input)
    total = 0
    with staged_output_dir(args.output, args.overwrite) as tmp:
        job = partial(
            extract_scene,
            output=tmp,
            size=args.size,
            stride=args.stride,
            num_exposure=args.num_exposure,
            exposure_file=args.exposure_file,
        )
        with tqdm(total=len(scenes), unit='scene', desc='extract') as bar:
            for count in run_jobs(job, scenes, args.workers, ordered=False):
                total += count
                bar.update(1)
                bar.set_postfix(patches=total)
    print(f'Wrote {total} patches of {len(scenes)} scenes to {args.output}.')
    return 0
