"""extract_subimages_hdr.py and create_lmdb_hdr.py end to end on tiny Kalantari-layout folders."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from test_dataset import make_dataset, make_scene, structured_frames, structured_gt, write_scene
from test_lmdb import ROOT, build_lmdb, lmdb_dataset

from lffnet_arch.commands import extract_subimages
from lffnet_arch.data import layout
from lffnet_arch.data.prepare.extract_subimages import patch_positions
from lffnet_arch.data.prepare.jobs import run_jobs
from lffnet_arch.fileio.image import read_hdr, write_hdr


def extract(src, out, *extra: str) -> None:
    argv = ['--input', str(src), '--output', str(out), '--size', '16', '--stride', '12', *extra]
    assert extract_subimages.main(argv) == 0


def test_patch_positions_cover_the_border():
    positions = patch_positions
    assert positions(40, 16, 12) == [0, 12, 24]
    assert positions(41, 16, 12) == [0, 12, 24, 25]
    assert positions(16, 16, 12) == [0]
    with pytest.raises(ValueError, match='larger'):
        positions(15, 16, 12)


@pytest.mark.parametrize('dtype,ext', [(np.uint16, '.tif'), (np.uint8, '.png')])
def test_extract_patches_are_exact_crops(tmp_path, dtype, ext):
    height, width = 30, 41
    frames = structured_frames(height, width, 3, dtype)
    scene = write_scene(tmp_path / 'in' / 'sc.1', frames, (0.0, 2.0, 4.0), structured_gt(height, width), ext=ext)
    (scene / 'exposure.txt').write_text('0\n2\n4 \n')  # copied byte for byte
    extract(tmp_path / 'in', tmp_path / 'out')
    gt = read_hdr(scene / 'HDRImg.hdr')
    patches = sorted(p.name for p in (tmp_path / 'out').iterdir())
    expected = sorted(f'sc_1_{y}_{x}' for y in (0, 12, 14) for x in (0, 12, 24, 25))
    assert patches == expected
    covered = np.zeros((height, width), bool)
    for name in patches:
        y, x = map(int, name.split('_')[-2:])
        patch = tmp_path / 'out' / name
        assert (patch / 'exposure.txt').read_bytes() == (scene / 'exposure.txt').read_bytes()
        for i, frame_path in enumerate(layout.list_frames(patch)):
            assert frame_path.suffix == '.tif'
            stored = cv2.imread(str(frame_path), cv2.IMREAD_UNCHANGED)
            assert stored.dtype == dtype  # source bit depth kept, integers unchanged
            np.testing.assert_array_equal(stored[..., ::-1], frames[i][y : y + 16, x : x + 16])
        np.testing.assert_array_equal(read_hdr(patch / 'HDRImg.hdr'), gt[y : y + 16, x : x + 16])
        covered[y : y + 16, x : x + 16] = True
    assert covered.all()
    assert not list(tmp_path.glob('.*'))


def test_rgbe_crop_reencodes_exactly(tmp_path):
    # Why the GT patches may stay .hdr: RGBE -> float -> crop -> RGBE -> float gives the same floats.
    rng = np.random.default_rng(0)
    hdr = (rng.random((20, 24, 3)) ** 6 * 1e4).astype(np.float32)
    write_hdr(tmp_path / 'a.hdr', hdr)
    decoded = read_hdr(tmp_path / 'a.hdr')
    write_hdr(tmp_path / 'b.hdr', np.ascontiguousarray(decoded[3:17, 5:21]))
    np.testing.assert_array_equal(read_hdr(tmp_path / 'b.hdr'), decoded[3:17, 5:21])


def test_patches_to_lmdb_equal_patch_folder(tmp_path):
    make_scene(tmp_path / 'in', 's1', 28, 28)
    make_scene(tmp_path / 'in', 's2', 16, 20)
    extract(tmp_path / 'in', tmp_path / 'sub16')
    disk = make_dataset(tmp_path / 'sub16')
    out = build_lmdb(tmp_path / 'sub16', tmp_path / 'sub16.lmdb', '--workers', '2')
    lmdb = lmdb_dataset(out)
    assert len(disk) == len(lmdb) == 4 + 2
    for i in range(len(disk)):
        a, b = disk[i], lmdb[i]
        assert a['key'] == b['key'] and torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])


def test_frame_count_and_exposure_file_options(tmp_path):
    """--num_exposure, --exposure_file and --compress_level, spelled with underscores as BasicSR's options."""
    for name in ('s1', 's2'):
        scene = make_scene(tmp_path / 'in', name, 16, 20, evs=(0.0, 3.0))
        (scene / 'exposure.txt').rename(scene / 'ev.txt')
    options = ['--num_exposure', '2', '--exposure_file', 'ev.txt']
    with pytest.raises(ValueError, match='expected 3 LDR frames'):
        extract(tmp_path / 'in', tmp_path / 'out')  # the default --num_exposure does not fit
    with pytest.raises(FileNotFoundError, match='exposure.txt'):
        extract(tmp_path / 'in', tmp_path / 'out', '--num_exposure', '2')  # nor the default --exposure_file
    with pytest.raises(SystemExit):
        extract(tmp_path / 'in', tmp_path / 'out', '--num-exposure', '2')  # no hyphenated spelling
    extract(tmp_path / 'in', tmp_path / 'out', *options)
    assert all((patch / 'ev.txt').is_file() for patch in (tmp_path / 'out').iterdir())
    disk = make_dataset(tmp_path / 'out', num_exposure=2, exposure_file='ev.txt')
    out = build_lmdb(tmp_path / 'out', tmp_path / 'out.lmdb', *options, '--compress_level', '9')
    lmdb = lmdb_dataset(out, num_exposure=2)
    assert len(disk) == len(lmdb) == 2 * 2
    for i in range(len(disk)):
        assert disk[i]['lq'].shape[0] == 2 and torch.equal(disk[i]['lq'], lmdb[i]['lq'])


def test_overwrite_refused_then_allowed(tmp_path):
    make_scene(tmp_path / 'in', 's1', 16, 16)
    extract(tmp_path / 'in', tmp_path / 'out')
    stale = tmp_path / 'out' / 'stale_patch'
    stale.mkdir()
    with pytest.raises(SystemExit) as refused:
        extract(tmp_path / 'in', tmp_path / 'out')
    assert refused.value.code == 2 and stale.exists()
    extract(tmp_path / 'in', tmp_path / 'out', '--overwrite')
    assert not stale.exists() and (tmp_path / 'out' / 's1_0_0').is_dir()

    lmdb_path = build_lmdb(tmp_path / 'in', tmp_path / 'x.lmdb')
    before = (lmdb_path / 'data.mdb').stat().st_ino
    assert lmdb_dataset(lmdb_path)[0]['key'] == 's1'  # this process now holds the old LMDB open
    with pytest.raises(SystemExit):
        build_lmdb(tmp_path / 'in', lmdb_path)
    assert (lmdb_path / 'data.mdb').stat().st_ino == before
    make_scene(tmp_path / 'in', 's2', 16, 16)
    build_lmdb(tmp_path / 'in', lmdb_path, '--overwrite')
    assert [line.split()[0] for line in (lmdb_path / 'meta_info.txt').read_text().splitlines()] == ['s1', 's2']
    assert lmdb_dataset(lmdb_path)[1]['key'] == 's2'  # read from the new LMDB, not the replaced one
    with pytest.raises(SystemExit):
        build_lmdb(tmp_path / 'in', tmp_path / 'no_suffix')


def test_failed_run_leaves_no_output(tmp_path):
    make_scene(tmp_path / 'in', 'a_good', 16, 16)
    bad = make_scene(tmp_path / 'in', 'b_bad', 16, 16)
    (bad / 'exposure.txt').write_text('0\n2\n')
    with pytest.raises(ValueError, match='b_bad'):
        build_lmdb(tmp_path / 'in', tmp_path / 'x.lmdb')
    with pytest.raises(ValueError, match='b_bad'):
        extract(tmp_path / 'in', tmp_path / 'out')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in']  # no output and no hidden partial folder


def test_sample_name_collision_refused(tmp_path):
    make_scene(tmp_path / 'in', 'a b', 16, 16)
    make_scene(tmp_path / 'in', 'a.b', 16, 16)
    with pytest.raises(ValueError, match="'a_b'"):
        build_lmdb(tmp_path / 'in', tmp_path / 'x.lmdb')


def test_scripts_run_from_command_line(tmp_path):
    make_scene(tmp_path / 'in', 's1', 20, 20)
    make_scene(tmp_path / 'in', 's2', 20, 20)
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    script = ROOT / 'scripts' / 'data_preparation' / 'extract_subimages_hdr.py'
    cmd = [
        sys.executable,
        str(script),
        '--input',
        str(tmp_path / 'in'),
        '--output',
        str(tmp_path / 'out'),
        '--size',
        '16',
        '--stride',
        '8',
        '--workers',
        '2',
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'Wrote 8 patches of 2 scenes' in result.stdout
    assert len(list((tmp_path / 'out').iterdir())) == 8


def _square_unless_three(x: int) -> int:
    if x == 3:
        raise ValueError('item 3 failed')
    return x * x


@pytest.mark.parametrize('workers', [1, 2])
def test_run_jobs_ordered_unordered_and_errors(workers):
    items = [0, 1, 2, 4, 5, 6]
    expected = [x * x for x in items]
    assert list(run_jobs(_square_unless_three, items, workers)) == expected  # in item order
    assert sorted(run_jobs(_square_unless_three, items, workers, ordered=False)) == expected
    with pytest.raises(ValueError, match='item 3 failed'):
        list(run_jobs(_square_unless_three, [1, 3, 5], workers))
    with pytest.raises(ValueError, match='workers'):
        list(run_jobs(_square_unless_three, items, 0))


def test_partial_folders_of_killed_runs_are_removed_and_live_ones_kept(tmp_path, caplog):
    make_scene(tmp_path / 'in', 's1', 16, 16)
    dead_pid = int(
        subprocess.run(
            [sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True, check=True
        ).stdout
    )
    dead = tmp_path / f'.x.lmdb.partial-{dead_pid}'
    live = tmp_path / f'.x.lmdb.partial-{os.getppid()}'  # a concurrent build: its process is running
    for folder in (dead, live):
        folder.mkdir()
        (folder / 'data.mdb').write_bytes(b'half written')
    with caplog.at_level('WARNING', logger='lffnet_arch'):
        build_lmdb(tmp_path / 'in', tmp_path / 'x.lmdb')
    assert not dead.exists() and live.exists()
    assert f'Removed {dead}, left by an interrupted run (process {dead_pid}' in caplog.text
    assert (tmp_path / 'x.lmdb' / 'meta_info.txt').is_file()


def test_corrupt_jpeg_is_refused_by_the_lmdb_script(tmp_path):
    scene = make_scene(tmp_path / 'in', 's1', 48, 64, dtype=np.uint8, ext='.jpg')
    data = (scene / 'frame_0.jpg').read_bytes()
    middle = len(data) // 2
    (scene / 'frame_0.jpg').write_bytes(data[:middle] + bytes(range(50, 250)) + data[middle + 200 :])
    with pytest.raises(ValueError, match=r'frame_0\.jpg: the image data is corrupt'):
        build_lmdb(tmp_path / 'in', tmp_path / 'x.lmdb')
    (scene / 'frame_0.jpg').write_bytes(b'')
    with pytest.raises(ValueError, match=r'frame_0\.jpg: the file is empty'):
        extract(tmp_path / 'in', tmp_path / 'out')
