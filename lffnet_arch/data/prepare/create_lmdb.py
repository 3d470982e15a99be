"""Pack a folder of Kalantari-layout scenes (or patches) into one LMDB for MultiExposureHDRDataset.

Schema (BasicSR's LMDB layout, documented in datasets/README.md): ``data.mdb``, ``lock.mdb`` and
``meta_info.txt``. Key ``<sample>/ldr_<i>`` (i from 0, frames in file-name order) holds frame i as PNG bytes of its
original integers (16-bit; an 8-bit source stays 8-bit), ``<sample>/gt`` the float32 GT as ``.npy`` bytes, and
``meta_info.txt`` one line per sample: ``<sample> (<h>,<w>,3) <EV_1>,<EV_2>,...``. Sample names are the scene
folder names with dots, spaces and other unsafe characters replaced by ``_``; two scenes giving the same name are
refused. Every scene is read and validated by ``lffnet_arch.data.layout.read_scene``, so an LMDB sample decodes
to exactly the floats the folder gives.

The LMDB is written in a hidden sibling folder and renamed into place only after ``meta_info.txt`` is written and
the environment is synced and closed, so an interrupted run never leaves an LMDB that looks complete. An existing
output is refused unless --overwrite is given.
"""

from functools import partial
from pathlib import Path

import lmdb
from tqdm import tqdm

from lffnet_arch.data import layout, lmdb_codec
from lffnet_arch.data.prepare.jobs import run_jobs
from lffnet_arch.fileio.atomic import staged_output_dir


def encode_scene(scene_dir: Path, num_exposure: int, exposure_file: str, compress_level: int) -> tuple:
    """Read and validate one scene; returns its meta_info line and its (key, value bytes) pairs."""
    scene = layout.read_scene(scene_dir, num_exposure, exposure_file, with_gt=True, keep_raw=True)
    name = scene.name
    items = [
        (lmdb_codec.ldr_key(name, i), lmdb_codec.encode_ldr(raw, compress_level))
        for i, raw in enumerate(scene.raw_ldrs)
    ]
    items.append((lmdb_codec.gt_key(name), lmdb_codec.encode_gt(scene.gt)))
    height, width = scene.gt.shape[:2]
    return lmdb_codec.format_meta_line(name, height, width, scene.evs), items


def put_items(env: lmdb.Environment, items: list) -> None:
    """Write one sample in one transaction, growing the map when it is full."""
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in items:
                    txn.put(key.encode('ascii'), value)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()['map_size'] * 2)


def create_lmdb(
    scenes: list,
    output: Path,
    overwrite: bool,
    num_exposure: int = 3,
    exposure_file: str = 'exposure.txt',
    workers: int = 1,
    compress_level: int = 1,
) -> int:
    """Write ``scenes`` into the LMDB ``output``; returns the number of samples."""
    names = layout.sample_names(scenes)
    input_bytes = sum(f.stat().st_size for scene in scenes for f in scene.iterdir() if f.is_file())
    job = partial(encode_scene, num_exposure=num_exposure, exposure_file=exposure_file, compress_level=compress_level)
    with staged_output_dir(output, overwrite) as tmp:
        # PNG of decoded frames and float32 GT (12 bytes a pixel) outgrow compressed TIFF and RGBE. No fsync per
        # sample: the one sync below comes before the rename that makes the LMDB visible.
        env = lmdb.open(str(tmp), map_size=4 * input_bytes + (64 << 20), sync=False)
        try:
            lines = []
            for line, items in tqdm(run_jobs(job, scenes, workers), total=len(scenes), unit='scene', desc='lmdb'):
                put_items(env, items)
                lines.append(line)
            (tmp / lmdb_codec.META_INFO).write_text('\n'.join(lines) + '\n', encoding='utf-8')
            env.sync(True)
        finally:
            env.close()
    return len(names)
