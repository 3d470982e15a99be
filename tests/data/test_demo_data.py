"""Tests for the demo set: layout, determinism, real radiance, held-out test crops, the honest reference baseline."""

import hashlib
import importlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lffnet_arch.data.simulator.demo import (
    DEMO_RADIANCE,
    EXPOSURE_NAME,
    FRAME_NAMES,
    GT_NAME,
    MARKER_NAME,
    REF_IDX,
    TEST_PHOTOS,
    TRAIN_PHOTOS,
    demo_bracket,
    demo_set_complete,
    ensure_demo_set,
    generate_demo_set,
)
from lffnet_arch.data.simulator.radiance import load_radiance_maps
from lffnet_arch.fileio.image import read_hdr, read_ldr

SIZE = 64
SEED = 5
NUM_TRAIN, NUM_VAL = 3, 2


def _hashes(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob('*'))
        if p.is_file()
    }


def _scene_dirs(root: Path) -> list:
    return sorted(d for split in ('Training', 'Test') for d in (root / split).iterdir())


def _read_scene(folder: Path) -> tuple:
    ldrs = np.stack([read_ldr(folder / name) for name in FRAME_NAMES]).astype(np.float64)
    evs = np.array([float(line) for line in (folder / EXPOSURE_NAME).read_text().split()])
    return ldrs, evs, read_hdr(folder / GT_NAME).astype(np.float64)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory) -> Path:
    return generate_demo_set(
        tmp_path_factory.mktemp('demo'), num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED
    )


def test_layout_and_file_types(demo_root):
    assert sorted(p.name for p in (demo_root / 'Training').iterdir()) == [f'demo_{i:03d}' for i in range(NUM_TRAIN)]
    assert sorted(p.name for p in (demo_root / 'Test').iterdir()) == [f'demo_{i:03d}' for i in range(NUM_VAL)]
    assert json.loads((demo_root / MARKER_NAME).read_text())['size'] == SIZE
    for folder in _scene_dirs(demo_root):
        assert sorted(p.name for p in folder.iterdir()) == sorted([*FRAME_NAMES, EXPOSURE_NAME, GT_NAME])
        for name in FRAME_NAMES:
            raw = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
            assert raw.dtype == np.uint16 and raw.shape == (SIZE, SIZE, 3)
        gt = read_hdr(folder / GT_NAME)
        assert gt.dtype == np.float32 and gt.shape == (SIZE, SIZE, 3)
        evs = [float(line) for line in (folder / EXPOSURE_NAME).read_text().split()]
        assert len(evs) == len(FRAME_NAMES) and evs[0] == 0 and np.diff(evs).tolist() in ([2, 2], [3, 3])
    assert demo_set_complete(demo_root, num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED)
    assert not demo_set_complete(demo_root, num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED + 1)


def test_same_seed_same_bytes_other_seed_other_bytes(demo_root, tmp_path):
    again = generate_demo_set(tmp_path / 'again', num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED)
    other = generate_demo_set(tmp_path / 'other', num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED + 1)
    reference = _hashes(demo_root)
    assert _hashes(again) == reference
    other_hashes = _hashes(other)
    assert other_hashes.keys() == reference.keys()
    changed = [k for k in reference if k.endswith(('.tif', '.exr')) and other_hashes[k] != reference[k]]
    assert len(changed) == (NUM_TRAIN + NUM_VAL) * (len(FRAME_NAMES) + 1)


def test_files_are_the_simulated_brackets(demo_root):
    for split_idx, split in enumerate(('Training', 'Test')):
        bracket = demo_bracket(SIZE, (SEED, split_idx, 1), split)
        ldrs, evs, gt = _read_scene(demo_root / split / 'demo_001')
        np.testing.assert_array_equal(np.round(ldrs * 65535).astype(np.uint16), bracket.ldrs)
        np.testing.assert_array_equal(evs, bracket.evs)
        np.testing.assert_array_equal(gt, bracket.gt)  # OpenEXR float32: lossless
        assert bracket.info['photo'] in (TRAIN_PHOTOS if split == 'Training' else TEST_PHOTOS)


def test_bundled_radiance_is_real_and_split_by_photograph():
    maps = load_radiance_maps(DEMO_RADIANCE)
    assert sorted(m.name for m in maps) == sorted(TRAIN_PHOTOS + TEST_PHOTOS)
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    assert (DEMO_RADIANCE / 'LICENSE.md').is_file() and 'CC0' in (DEMO_RADIANCE / 'LICENSE.md').read_text()
    for radiance in maps:
        lum = radiance.image.mean(axis=2)
        assert radiance.image.shape == (256, 256, 3)
        assert np.log2(np.percentile(lum, 99.5) / np.percentile(lum, 1)) > 8  # a real scene's range, per crop
    assert sum(p.stat().st_size for p in DEMO_RADIANCE.iterdir()) < 3e6


def test_gt_range(demo_root):
    for folder in _scene_dirs(demo_root):
        _, _, gt = _read_scene(folder)
        assert gt.min() >= 0 and gt.max() <= 1 and gt.max() > 0


def test_reference_baseline_is_honest():
    """L_ref ** 2.2 / t_ref equals the GT on unsaturated static pixels and is clearly wrong where clipped."""
    clipped_seen = 0
    for index in range(6):
        bracket = demo_bracket(96, (SEED, 0, index))
        ldrs = bracket.ldrs.astype(np.float64) / 65535
        t_ref = 2.0 ** bracket.evs[REF_IDX]
        baseline = ldrs[REF_IDX] ** 2.2 / t_ref
        gt = bracket.gt.astype(np.float64)
        unsaturated = (ldrs[REF_IDX] < 0.95) & (ldrs[REF_IDX] > 0.1)
        relative = np.abs(baseline - gt) / np.maximum(gt, 1e-12)
        assert unsaturated.mean() > 0.3
        assert np.median(relative[unsaturated]) < 0.03
        clipped = gt > 1.25 / t_ref
        if clipped.mean() > 0.01:
            clipped_seen += 1
            assert np.median(relative[clipped]) > 0.2
    assert clipped_seen >= 2


def test_refuses_overwrite_and_keeps_foreign_folders(tmp_path):
    root = generate_demo_set(tmp_path / 'demo', num_train=1, num_val=1, size=32)
    with pytest.raises(FileExistsError, match='overwrite'):
        generate_demo_set(root, num_train=1, num_val=1, size=32)
    (root / 'Test' / 'my_scene').mkdir()
    with pytest.raises(FileExistsError, match='my_scene'):
        generate_demo_set(root, num_train=1, num_val=1, size=32, overwrite=True)
    assert (root / 'Test' / 'my_scene').is_dir()
    with pytest.raises(ValueError, match='size'):
        generate_demo_set(tmp_path / 'bad', size=16)


def test_ensure_regenerates_only_when_incomplete(tmp_path):
    kwargs = {'num_train': 1, 'num_val': 1, 'size': 32, 'seed': 2}
    root = ensure_demo_set(tmp_path / 'demo', **kwargs)
    gt_file = root / 'Test' / 'demo_000' / GT_NAME
    first = gt_file.stat().st_mtime_ns
    ensure_demo_set(root, **kwargs)
    assert gt_file.stat().st_mtime_ns == first  # complete: left alone
    # An interrupted run leaves no marker: the set is redone, not trusted.
    (root / MARKER_NAME).unlink()
    (root / 'Training' / 'demo_000' / FRAME_NAMES[2]).unlink()
    assert not demo_set_complete(root, **kwargs)
    ensure_demo_set(root, **kwargs)
    assert demo_set_complete(root, **kwargs)
    assert (root / 'Training' / 'demo_000' / FRAME_NAMES[2]).is_file()


def test_script_generates_then_skips_then_refuses(tmp_path, capsys):
    script = importlib.import_module('lffnet_arch.commands.generate_demo_set')
    out = tmp_path / 'demo'
    args = ['--output', str(out), '--num_train', '2', '--num_val', '1', '--size', '32']
    assert script.main(args) == 0
    assert 'Wrote 2 training scenes' in capsys.readouterr().out
    assert demo_set_complete(out, num_train=2, num_val=1, size=32, seed=0)
    assert script.main(args) == 0
    assert 'nothing to do' in capsys.readouterr().out
    assert script.main([*args, '--seed', '1']) == 1
    assert '--overwrite' in capsys.readouterr().err
    assert script.main([*args, '--seed', '1', '--overwrite']) == 0
    assert demo_set_complete(out, num_train=2, num_val=1, size=32, seed=1)
