"""Tests for the synthetic demo set: layout, determinism, dynamic range, motion and the honest reference baseline."""

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import load_script

from lffnet_arch.data.demo import (
    EXPOSURE_NAME,
    FRAME_NAMES,
    GT_NAME,
    MARKER_NAME,
    REF_IDX,
    demo_set_complete,
    ensure_demo_set,
    generate_demo_set,
    synthesize_scene,
)
from lffnet_arch.utils.hdr_util import read_hdr, read_ldr

SIZE = (64, 96)
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
    assert json.loads((demo_root / MARKER_NAME).read_text())['size'] == list(SIZE)
    for folder in _scene_dirs(demo_root):
        assert sorted(p.name for p in folder.iterdir()) == sorted([*FRAME_NAMES, EXPOSURE_NAME, GT_NAME])
        for name in FRAME_NAMES:
            raw = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
            assert raw.dtype == np.uint16 and raw.shape == (*SIZE, 3)
        gt = cv2.imread(str(folder / GT_NAME), cv2.IMREAD_UNCHANGED)
        assert gt.dtype == np.float32 and gt.shape == (*SIZE, 3)
        evs = [float(line) for line in (folder / EXPOSURE_NAME).read_text().split()]
        assert len(evs) == len(FRAME_NAMES) and evs[0] == 0 and all(np.diff(evs) > 0)
    assert demo_set_complete(demo_root, num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED)
    assert not demo_set_complete(demo_root, num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED + 1)


def test_same_seed_same_bytes_other_seed_other_bytes(demo_root, tmp_path):
    again = generate_demo_set(tmp_path / 'again', num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED)
    other = generate_demo_set(tmp_path / 'other', num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=SEED + 1)
    reference = _hashes(demo_root)
    assert _hashes(again) == reference
    other_hashes = _hashes(other)
    assert other_hashes.keys() == reference.keys()
    changed = [k for k in reference if k.endswith(('.tif', '.hdr')) and other_hashes[k] != reference[k]]
    assert len(changed) == (NUM_TRAIN + NUM_VAL) * (len(FRAME_NAMES) + 1)


def test_files_are_the_synthesized_scenes(demo_root):
    for split_idx, split in enumerate(('Training', 'Test')):
        folder = demo_root / split / 'demo_001'
        scene = synthesize_scene(SIZE, seed=(SEED, split_idx, 1))
        ldrs, evs, gt = _read_scene(folder)
        np.testing.assert_array_equal(np.round(ldrs * 65535).astype(np.uint16), scene.ldrs)
        np.testing.assert_array_equal(evs, scene.exposures)
        # Radiance RGBE keeps 8 mantissa bits, relative to each pixel's largest channel.
        assert (np.abs(gt - scene.gt) <= scene.gt.max(axis=2, keepdims=True) / 128 + 1e-12).all()


def test_gt_range_and_dynamic_range(demo_root):
    for folder in _scene_dirs(demo_root):
        _, _, gt = _read_scene(folder)
        assert gt.min() >= 0 and gt.max() <= 1
        luminance = gt.mean(axis=2)
        stops = np.log2(luminance.max() / np.percentile(luminance[luminance > 0], 1))
        assert stops >= 12, f'{folder}: only {stops:.1f} stops'


def test_reference_baseline_is_honest(demo_root):
    """L_ref ** 2.2 / t_ref equals the GT on unsaturated static pixels and is clearly wrong where clipped."""
    for split_idx, split in enumerate(('Training', 'Test')):
        for index in range(2):
            ldrs, evs, gt = _read_scene(demo_root / split / f'demo_{index:03d}')
            motion = synthesize_scene(SIZE, seed=(SEED, split_idx, index)).motion_mask
            t_ref = 2.0 ** evs[REF_IDX]
            baseline = ldrs[REF_IDX] ** 2.2 / t_ref
            unsaturated = (ldrs[REF_IDX] < 0.95).all(axis=2) & ~motion
            relative = np.abs(baseline - gt) / np.maximum(gt, 1e-12)
            assert unsaturated.mean() > 0.5
            assert np.median(relative[unsaturated]) < 0.03
            # Where the GT is well above what the reference can record, the baseline sits at the clipping level.
            clipped = gt.max(axis=2) > 1.25 / t_ref
            assert clipped.mean() > 0.01
            channel = gt.argmax(axis=2)[..., None]
            peak_error = np.take_along_axis(relative, channel, axis=2)[..., 0]
            assert np.median(peak_error[clipped]) > 0.2


def _compensated_error(scene, i: int) -> float:
    """Mean relative error of frame i's L ** 2.2 / t against the GT, where frame i and the reference are valid."""
    ldrs = scene.ldrs / 65535.0
    hdr = ldrs[i] ** 2.2 / 2.0 ** scene.exposures[i]
    valid = ((ldrs[i] > 0.05) & (ldrs[i] < 0.95) & (ldrs[REF_IDX] < 0.95)).all(axis=2)
    return float(np.mean(np.abs(hdr - scene.gt)[valid] / scene.gt[valid]))


def test_non_reference_frames_show_motion():
    for seed in range(3):
        scene = synthesize_scene(SIZE, seed=seed)
        ref_error = _compensated_error(scene, REF_IDX)
        for i in (0, 2):
            # Beyond exposure: camera shift and the moving object.
            assert _compensated_error(scene, i) > 5 * ref_error
        masks = scene.object_masks
        assert all(m.any() for m in masks) and scene.motion_mask.mean() < 0.5
        for i in (0, 2):
            iou = (masks[i] & masks[REF_IDX]).sum() / (masks[i] | masks[REF_IDX]).sum()
            assert iou < 0.9


def test_refuses_overwrite_and_keeps_foreign_folders(tmp_path):
    root = generate_demo_set(tmp_path / 'demo', num_train=1, num_val=1, size=(32, 32))
    with pytest.raises(FileExistsError, match='overwrite'):
        generate_demo_set(root, num_train=1, num_val=1, size=(32, 32))
    (root / 'Test' / 'my_scene').mkdir()
    with pytest.raises(FileExistsError, match='my_scene'):
        generate_demo_set(root, num_train=1, num_val=1, size=(32, 32), overwrite=True)
    assert (root / 'Test' / 'my_scene').is_dir()
    with pytest.raises(ValueError, match='size'):
        generate_demo_set(tmp_path / 'bad', size=(16, 64))


def test_ensure_regenerates_only_when_incomplete(tmp_path):
    kwargs = {'num_train': 1, 'num_val': 1, 'size': (32, 48), 'seed': 2}
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
    script = load_script('scripts/data_preparation/generate_demo_set.py')
    out = tmp_path / 'demo'
    args = ['--output', str(out), '--num_train', '2', '--num_val', '1', '--size', '32', '48']
    assert script.main(args) == 0
    assert 'Wrote 2 training scenes' in capsys.readouterr().out
    assert demo_set_complete(out, num_train=2, num_val=1, size=(32, 48), seed=0)
    assert script.main(args) == 0
    assert 'nothing to do' in capsys.readouterr().out
    assert script.main([*args, '--seed', '1']) == 1
    assert '--overwrite' in capsys.readouterr().err
    assert script.main([*args, '--seed', '1', '--overwrite']) == 0
    assert demo_set_complete(out, num_train=2, num_val=1, size=(32, 48), seed=1)
