"""LMDB backend of MultiExposureHDRDataset: bit-identical to the folder, schema, errors, DataLoader workers."""

import io
import shutil
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
import torch
from real_data import REAL_HDR_ROOT
from test_dataset import make_dataset, make_scene, structured_frames, structured_gt, write_scene

from lffnet_arch.commands import create_lmdb
from lffnet_arch.data import MultiExposureHDRDataset, lmdb_codec
from lffnet_arch.fileio.image import read_hdr, write_hdr

ROOT = Path(__file__).resolve().parents[2]
REAL_HDR = REAL_HDR_ROOT / 'debevec_memorial'


def build_lmdb(src: Path, out: Path, *extra: str) -> Path:
    assert create_lmdb.main(['--input', str(src), '--output', str(out), *extra]) == 0
    return out


def lmdb_dataset(path: Path, **opt) -> MultiExposureHDRDataset:
    return MultiExposureHDRDataset({'dataroot': str(path), 'io_backend': {'type': 'lmdb'}, 'phase': 'val', **opt})


def assert_items_equal(a: dict, b: dict) -> None:
    for name in ('lq', 'gt', 'exposures'):
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
    assert a['key'] == b['key']


def test_lmdb_equals_folder_bit_for_bit_after_source_removed(tmp_path):
    src = tmp_path / 'Training'
    make_scene(src, 'scene 16bit', 24, 32)
    make_scene(src, 'scene.8bit', 24, 32, evs=(0.0, 3.0, 6.0), dtype=np.uint8, ext='.png')
    disk_val = [make_dataset(src)[i] for i in range(2)]
    disk = make_dataset(src, phase='train', gt_size=16, use_hflip=True, use_rot=True)
    disk_train = [disk[(i // 2, i % 2)] for i in range(6)]  # (epoch, index): the sampler's way
    out = build_lmdb(src, tmp_path / 'Training.lmdb')
    shutil.rmtree(src)

    assert sorted(p.name for p in out.iterdir()) == ['data.mdb', 'lock.mdb', 'meta_info.txt']
    assert not list(tmp_path.glob('.*'))  # no partial folder left behind
    val = lmdb_dataset(out)
    assert len(val) == 2
    for i in range(2):
        item = val[i]
        assert_items_equal(item, disk_val[i])
        assert item['lq_path'] == item['key'] and item['gt_path'] == f'{item["key"]}/gt'
    train = lmdb_dataset(out, phase='train', gt_size=16, use_hflip=True, use_rot=True)
    for i in range(6):
        assert_items_equal(train[(i // 2, i % 2)], disk_train[i])


def test_schema_keys_and_meta_info(tmp_path):
    src = tmp_path / 'src'
    frames = structured_frames(8, 12)
    gt = structured_gt(8, 12)
    write_scene(src / 'a.b c', frames, (0.0, 2.5, 4.1), gt)
    out = build_lmdb(src, tmp_path / 'x.lmdb')
    assert (out / 'meta_info.txt').read_text() == 'a_b_c (8,12,3) 0.0,2.5,4.1\n'
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        keys = sorted(key.decode() for key, _ in txn.cursor())
        assert keys == ['a_b_c/gt', 'a_b_c/ldr_0', 'a_b_c/ldr_1', 'a_b_c/ldr_2']
        png = cv2.imdecode(np.frombuffer(txn.get(b'a_b_c/ldr_1'), np.uint8), cv2.IMREAD_UNCHANGED)
        stored_gt = np.load(io.BytesIO(txn.get(b'a_b_c/gt')))
    env.close()
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png[..., ::-1], frames[1])  # the original integers, 16-bit PNG
    assert stored_gt.dtype == np.float32
    np.testing.assert_array_equal(stored_gt, read_hdr(src / 'a.b c' / 'HDRImg.hdr'))


def test_missing_key_names_lmdb_sample_and_key(tmp_path):
    src = tmp_path / 'src'
    make_scene(src, 's1', 8, 8)
    out = build_lmdb(src, tmp_path / 'x.lmdb')
    env = lmdb.open(str(out))
    with env.begin(write=True) as txn:
        assert txn.delete(b's1/ldr_2')
    env.close()
    dataset = lmdb_dataset(out)
    with pytest.raises(KeyError) as err:
        dataset[0]
    message = str(err.value)
    assert str(out) in message and "'s1'" in message and 's1/ldr_2' in message


def test_non_finite_gt_in_lmdb_is_refused(tmp_path):
    src = tmp_path / 'src'
    make_scene(src, 's1', 8, 8)
    out = build_lmdb(src, tmp_path / 'x.lmdb')
    gt = structured_gt(8, 8)
    gt[2, 2, 0] = np.nan
    env = lmdb.open(str(out))
    with env.begin(write=True) as txn:
        txn.put(b's1/gt', lmdb_codec.encode_gt(gt))
    env.close()
    with pytest.raises(ValueError, match='NaN/Inf') as err:
        lmdb_dataset(out)[0]
    assert f'{out}:s1/gt' in str(err.value)


def test_bad_lmdb_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match='data.mdb'):
        lmdb_dataset(tmp_path / 'none.lmdb')
    src = tmp_path / 'src'
    make_scene(src, 's1', 8, 8)
    out = build_lmdb(src, tmp_path / 'x.lmdb')
    meta = out / 'meta_info.txt'
    meta.write_text('s1 (8,8,3) 0.0,2.0\n')
    with pytest.raises(ValueError, match='2 EV values; expected 3'):
        lmdb_dataset(out)
    meta.write_text('s1 (8,8) 0.0,2.0,4.0\n')
    with pytest.raises(ValueError, match='line 1'):
        lmdb_dataset(out)
    meta.write_text('s1 (8,9,3) 0.0,2.0,4.0\n')
    with pytest.raises(ValueError, match='shape'):
        lmdb_dataset(out)[0]
    meta.unlink()
    with pytest.raises(FileNotFoundError, match='meta_info.txt'):
        lmdb_dataset(out)


def test_lmdb_in_dataloader_with_a_worker(tmp_path):
    src = tmp_path / 'src'
    for name in ('s1', 's2', 's3'):
        make_scene(src, name, 16, 16)
    out = build_lmdb(src, tmp_path / 'x.lmdb')
    dataset = lmdb_dataset(out)
    direct = [dataset[i] for i in range(len(dataset))]  # opens the env in this process before the workers fork
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1)
    batches = list(loader)
    assert [key for batch in batches for key in batch['key']] == ['s1', 's2', 's3']
    assert batches[0]['lq'].shape == (2, 3, 6, 16, 16)
    assert torch.equal(torch.cat([b['lq'] for b in batches]), torch.stack([d['lq'] for d in direct]))
    assert torch.equal(torch.cat([b['gt'] for b in batches]), torch.stack([d['gt'] for d in direct]))


@pytest.mark.skipif(not REAL_HDR.is_dir(), reason='real HDR data folder not available')
def test_real_memorial_scene_disk_equals_lmdb(tmp_path):
    # Frames 3 stops apart (1/16 s, 1/2 s, 4 s -> EV 0, 3, 6), renamed so file-name order is short to long, and a
    # small crop of each so the test stays fast. Nothing is copied into the project.
    window = (slice(300, 348), slice(200, 264))
    stack = REAL_HDR / 'stack'
    frames = [
        cv2.imread(str(stack / f'memorial{n}.png'), cv2.IMREAD_UNCHANGED)[window] for n in ('0070', '0067', '0064')
    ]
    scene = tmp_path / 'Test' / 'memorial'
    scene.mkdir(parents=True)
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(scene / f'memorial_{i}.png'), np.ascontiguousarray(frame))
    (scene / 'exposure.txt').write_text('0\n3\n6\n')
    gt = read_hdr(REAL_HDR / 'memorial_o876.hdr')[window]
    write_hdr(scene / 'HDRImg.hdr', gt)
    disk = make_dataset(tmp_path / 'Test')[0]
    out = build_lmdb(tmp_path / 'Test', tmp_path / 'Test.lmdb')
    shutil.rmtree(tmp_path / 'Test')
    item = lmdb_dataset(out)[0]
    assert_items_equal(item, disk)
    assert item['lq'].shape == (3, 6, 48, 64)
    np.testing.assert_array_equal(item['gt'].numpy().transpose(1, 2, 0), gt)  # RGBE of an RGBE crop is exact
    np.testing.assert_array_equal(
        item['lq'][0, :3].numpy().transpose(1, 2, 0), (frames[0][..., ::-1] / 255.0).astype(np.float32)
    )
    assert torch.equal(item['exposures'], torch.tensor([1.0, 8.0, 64.0]))
