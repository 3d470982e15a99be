"""MultiExposureHDRDataset and the scene layout on real files (16-bit TIFF, .hdr, exposure.txt) written into tmp_path.

``write_scene`` / ``make_scene`` are imported by test_lmdb.py and test_data_scripts.py.
"""

import logging
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.utils.registry import DATASET_REGISTRY

from lffnet_arch.data import MultiExposureHDRDataset, layout
from lffnet_arch.fileio.image import read_hdr, read_ldr, write_hdr

EVS = (0.0, 2.0, 4.0)


def write_scene(scene_dir: Path, frames: list, evs=EVS, gt=None, names=None, ext='.tif') -> Path:
    """Write integer RGB frames (uint8/uint16, cv2 encodes them as is), exposure.txt and HDRImg.hdr."""
    scene_dir.mkdir(parents=True, exist_ok=True)
    names = names or [f'frame_{i}{ext}' for i in range(len(frames))]
    for name, frame in zip(names, frames):
        img = frame[..., ::-1] if frame.ndim == 3 else frame
        assert cv2.imwrite(str(scene_dir / name), np.ascontiguousarray(img))
    if evs is not None:
        (scene_dir / 'exposure.txt').write_text(''.join(f'{ev}\n' for ev in evs))
    if gt is not None:
        write_hdr(scene_dir / 'HDRImg.hdr', gt)
    return scene_dir


def structured_frames(height: int, width: int, num: int = 3, dtype=np.uint16) -> list:
    """Frames whose red channel encodes the pixel position (16 * (y * W + x) + frame index) so crops and flips
    can be traced back; green and blue differ per frame."""
    idx = np.arange(height * width, dtype=np.int64).reshape(height, width)
    frames = []
    for i in range(num):
        red = idx * 16 + i
        green = (idx * 7 + 1000 * i) % 60000
        blue = 65535 - (idx * 3 + 500 * i) % 60000
        frame = np.stack([red, green, blue], axis=2)
        if dtype == np.uint8:
            frame = frame % 256
        frames.append(frame.astype(dtype))
    return frames


def structured_gt(height: int, width: int, peak: float = 1.0) -> np.ndarray:
    idx = np.arange(height * width, dtype=np.float32).reshape(height, width) + 1
    return np.stack([idx, idx * 0.5, idx * 0.25], axis=2) * (peak / (height * width))


def make_scene(root: Path, name: str, height: int = 32, width: int = 40, evs=EVS, dtype=np.uint16, ext='.tif') -> Path:
    return write_scene(
        root / name, structured_frames(height, width, len(evs), dtype), evs, structured_gt(height, width), ext=ext
    )


def make_dataset(root: Path, **opt) -> MultiExposureHDRDataset:
    return MultiExposureHDRDataset({'dataroot': str(root), 'io_backend': {'type': 'disk'}, 'phase': 'val', **opt})


def test_registered():
    assert DATASET_REGISTRY.get('MultiExposureHDRDataset') is MultiExposureHDRDataset


def test_item_shapes_dtypes_ranges(tmp_path):
    make_scene(tmp_path, 'b_scene')
    make_scene(tmp_path, 'a scene.1')
    dataset = make_dataset(tmp_path)
    assert len(dataset) == 2
    item = dataset[0]
    assert item['key'] == 'a_scene_1'  # sorted, sanitised
    assert item['lq_path'] == str(tmp_path / 'a scene.1')
    assert item['gt_path'] == str(tmp_path / 'a scene.1' / 'HDRImg.hdr')
    assert item['lq'].shape == (3, 6, 32, 40) and item['lq'].dtype == torch.float32
    assert item['gt'].shape == (3, 32, 40) and item['gt'].dtype == torch.float32
    assert item['exposures'].dtype == torch.float32
    assert torch.equal(item['exposures'], torch.tensor([1.0, 4.0, 16.0]))
    assert 0 <= item['lq'].min() and item['lq'].max() <= 1
    assert item['gt'].min() >= 0


@pytest.mark.parametrize('dtype,ext,scale', [(np.uint16, '.tif', 65535.0), (np.uint8, '.png', 255.0)])
def test_hdr_domain_matches_hand_computation(tmp_path, dtype, ext, scale):
    evs = (-1.0, 0.5, 3.0)
    frames = structured_frames(16, 24, 3, dtype)
    write_scene(tmp_path / 's', frames, evs, structured_gt(16, 24), ext=ext)
    item = make_dataset(tmp_path, gamma=2.0)[0]
    for i, (frame, ev) in enumerate(zip(frames, evs)):
        ldr = frame.astype(np.float64) / scale
        hdr = ldr**2.0 / 2.0**ev
        np.testing.assert_array_equal(item['lq'][i, :3].numpy(), (frame / scale).astype(np.float32).transpose(2, 0, 1))
        np.testing.assert_allclose(item['lq'][i, 3:].numpy(), hdr.transpose(2, 0, 1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(item['exposures'].numpy(), [2**-1.0, 2**0.5, 2**3.0], rtol=1e-7)


def test_frames_ordered_by_file_name(tmp_path):
    frames = structured_frames(8, 8)
    # Written out of order on purpose: the file names decide the frame order, extensions in any case.
    scene = write_scene(
        tmp_path / 's', [frames[2], frames[0], frames[1]], EVS, structured_gt(8, 8), names=['c.TIF', 'a.tiff', 'b.PNG']
    )
    (scene / '._a.tif').write_bytes(b'macOS resource fork')
    (scene / 'notes.txt').write_text('not a frame')
    assert [p.name for p in layout.list_frames(scene)] == ['a.tiff', 'b.PNG', 'c.TIF']
    item = make_dataset(tmp_path)[0]
    for i, frame in enumerate(frames):
        expected = (frame / 65535.0).astype(np.float32).transpose(2, 0, 1)
        np.testing.assert_array_equal(item['lq'][i, :3].numpy(), expected)


def test_ldr_to_float_matches_read_ldr(tmp_path):
    frames = structured_frames(8, 10)
    gray = np.arange(80, dtype=np.uint16).reshape(8, 10) * 811
    write_scene(
        tmp_path,
        [frames[0], frames[1].astype(np.uint8), gray, frames[0]],
        evs=None,
        names=['a.tif', 'b.png', 'c.png', 'd.png'],
    )
    bgra = np.concatenate([frames[2][..., ::-1], np.full((8, 10, 1), 7, np.uint16)], axis=2)
    assert cv2.imwrite(str(tmp_path / 'e.tif'), bgra)
    expected = {
        'a.tif': frames[0],
        'b.png': frames[1].astype(np.uint8),
        'c.png': np.repeat(gray[..., None], 3, 2),
        'd.png': frames[0],
        'e.tif': frames[2],
    }
    for name, rgb in expected.items():
        path = tmp_path / name
        raw = layout.read_ldr_raw(path)
        assert raw.dtype == rgb.dtype and raw.shape == (8, 10, 3)  # 16-bit kept; gray -> 3 channels; alpha dropped
        np.testing.assert_array_equal(raw, rgb)
        np.testing.assert_array_equal(layout.ldr_to_float(raw), read_ldr(path))
        np.testing.assert_array_equal(read_ldr(path), rgb.astype(np.float32) / np.float32(np.iinfo(rgb.dtype).max))
    with pytest.raises(ValueError, match='my_array.*int32'):
        layout.ldr_to_float(np.zeros((2, 2, 3), np.int32), 'my_array')


def decode_positions(lq_frame: torch.Tensor, frame_index: int) -> np.ndarray:
    """(H, W) flat source positions encoded in the red channel of an LDR frame of ``structured_frames``."""
    code = np.round(lq_frame[0].numpy().astype(np.float64) * 65535).astype(np.int64)
    assert np.all(code % 16 == frame_index)
    return code // 16


def dihedral(img: np.ndarray) -> list:
    """The 8 flips / rotations of an (H, W, ...) array."""
    out = []
    for base in (img, img.swapaxes(0, 1)):
        out += [base, base[::-1], base[:, ::-1], base[::-1, ::-1]]
    return out


def test_train_crop_and_augment_identical_for_all_frames_and_gt(tmp_path):
    height, width, size = 24, 32, 12
    make_scene(tmp_path, 's', height, width)
    gt_source = read_hdr(tmp_path / 's' / 'HDRImg.hdr')
    positions = np.arange(height * width).reshape(height, width)
    dataset = make_dataset(tmp_path, phase='train', gt_size=size, use_hflip=True, use_rot=True)
    windows, transforms = set(), set()
    np.random.seed(0)
    for _ in range(24):
        item = dataset[0]
        assert item['lq'].shape == (3, 6, size, size) and item['gt'].shape == (3, size, size)
        pos = decode_positions(item['lq'][0], 0)
        for i in range(1, 3):
            np.testing.assert_array_equal(decode_positions(item['lq'][i], i), pos)
        top, left = divmod(int(pos.min()), width)
        crop = positions[top : top + size, left : left + size]
        matches = [k for k, candidate in enumerate(dihedral(crop)) if np.array_equal(candidate, pos)]
        assert len(matches) == 1, 'frames are not a flipped/rotated window of the source'
        expected_gt = dihedral(gt_source[top : top + size, left : left + size])[matches[0]]
        np.testing.assert_array_equal(item['gt'].numpy().transpose(1, 2, 0), expected_gt)
        windows.add((top, left))
        transforms.add(matches[0])
    assert len(windows) > 1 and len(transforms) > 2


def test_val_phase_returns_whole_images(tmp_path):
    make_scene(tmp_path, 's', 24, 32)
    item = make_dataset(tmp_path, phase='val', gt_size=8, use_hflip=True, use_rot=True)[0]
    assert item['lq'].shape == (3, 6, 24, 32)
    np.testing.assert_array_equal(decode_positions(item['lq'][0], 0), np.arange(24 * 32).reshape(24, 32))


def test_crop_larger_than_image_names_scene(tmp_path):
    make_scene(tmp_path, 'small_scene', 16, 16)
    with pytest.raises(ValueError, match='small_scene'):
        make_dataset(tmp_path, phase='train', gt_size=32)[0]


def test_options_validated(tmp_path):
    make_scene(tmp_path, 's', 8, 8)
    with pytest.raises(ValueError, match='ref_idx'):
        make_dataset(tmp_path, ref_idx=3)
    with pytest.raises(ValueError, match='io_backend'):
        MultiExposureHDRDataset({'dataroot': str(tmp_path), 'io_backend': {'type': 'memcached'}})
    assert make_dataset(tmp_path).ref_idx == 1


def test_gt_above_one_warns_once_per_scene(tmp_path):
    write_scene(tmp_path / 'bright', structured_frames(8, 8), EVS, structured_gt(8, 8, peak=4.0))
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('basicsr')
    logger.addHandler(handler)
    try:
        dataset = make_dataset(tmp_path)
        first, second = dataset[0], dataset[0]
    finally:
        logger.removeHandler(handler)
    assert first['gt'].max() > 3.9 and torch.equal(first['gt'], second['gt'])  # read as it is, not clipped
    warnings = [r for r in records if 'bright' in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 1


# ---------------------------------------------------------------- bad input


def _break(tmp_path: Path, how: str) -> Path:
    scene = make_scene(tmp_path, 'bad_scene', 16, 16)
    if how == 'missing exposure file':
        (scene / 'exposure.txt').unlink()
    elif how == 'malformed exposure file':
        (scene / 'exposure.txt').write_text('0\ntwo\n4\n')
    elif how == 'exposure count':
        (scene / 'exposure.txt').write_text('0\n2\n')
    elif how == 'non-increasing exposures':
        (scene / 'exposure.txt').write_text('0\n4\n2\n')
    elif how == 'wrong number of frames':
        (scene / 'frame_2.tif').unlink()
    elif how == 'frames of different sizes':
        cv2.imwrite(str(scene / 'frame_1.tif'), structured_frames(16, 12)[1])
    elif how == 'gt of another size':
        write_hdr(scene / 'HDRImg.hdr', structured_gt(12, 16))
    elif how == 'unreadable image':
        (scene / 'frame_1.tif').write_bytes(b'not a tiff at all')
    elif how == 'missing gt':
        (scene / 'HDRImg.hdr').unlink()
    return scene


@pytest.mark.parametrize(
    'how,error,match',
    [
        ('missing exposure file', FileNotFoundError, 'exposure.txt'),
        ('malformed exposure file', ValueError, 'line 2'),
        ('exposure count', ValueError, 'expected 3'),
        ('non-increasing exposures', ValueError, 'increase'),
        ('wrong number of frames', ValueError, 'expected 3 LDR frames'),
        ('missing gt', FileNotFoundError, 'No ground truth in scene .*bad_scene'),
    ],
)
def test_bad_scene_fails_at_construction(tmp_path, how, error, match):
    _break(tmp_path, how)
    with pytest.raises(error, match=match):
        make_dataset(tmp_path)
    with pytest.raises(error, match=match):
        layout.read_scene(tmp_path / 'bad_scene', 3)


@pytest.mark.parametrize(
    'how,match',
    [
        ('frames of different sizes', 'same size'),
        ('gt of another size', 'HDRImg.hdr 12x16'),
        ('unreadable image', 'frame_1.tif'),
    ],
)
def test_bad_images_fail_when_read(tmp_path, how, match):
    _break(tmp_path, how)
    dataset = make_dataset(tmp_path)
    with pytest.raises(ValueError, match=match):
        dataset[0]


@pytest.mark.parametrize('bad', [np.nan, np.inf, -0.5])
def test_non_finite_or_negative_gt_is_refused(tmp_path, monkeypatch, bad):
    # Radiance RGBE cannot store NaN, Inf or negatives, so the reader is made to return them (an .exr GT could).
    scene = make_scene(tmp_path, 'bad_gt', 8, 8)
    real = layout.read_hdr

    def read_with_bad_pixel(path):
        gt = real(path)
        gt[3, 4, 1] = bad
        return gt

    monkeypatch.setattr(layout, 'read_hdr', read_with_bad_pixel)
    with pytest.raises(ValueError, match=r'bad_gt.*HDRImg\.hdr'):
        layout.read_scene(scene, 3)
    with pytest.raises(ValueError, match='NaN/Inf' if not bad < 0 else 'negative'):
        make_dataset(tmp_path)[0]


def test_empty_missing_and_nested_roots(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        make_dataset(tmp_path / 'missing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no scene'):
        make_dataset(tmp_path / 'empty')
    make_scene(tmp_path / 'Test' / 'EXTRA', 's1', 8, 8)
    with pytest.raises(ValueError, match='flattened'):
        make_dataset(tmp_path / 'Test')


def test_find_gt_rules(tmp_path):
    scene = make_scene(tmp_path, 's', 8, 8)
    write_hdr(scene / 'other.hdr', structured_gt(8, 8))
    assert layout.find_gt(scene).name == 'HDRImg.hdr'
    (scene / 'HDRImg.hdr').unlink()
    assert layout.find_gt(scene).name == 'other.hdr'
    write_hdr(scene / 'third.hdr', structured_gt(8, 8))
    with pytest.raises(ValueError, match='exactly one'):
        layout.find_gt(scene)


def test_read_exposure_file(tmp_path):
    path = tmp_path / 'exposure.txt'
    path.write_text('0\r\n 3.0 \n\n6\n')
    np.testing.assert_array_equal(layout.read_exposure_file(path, 3), [0.0, 3.0, 6.0])
    path.write_text('0 1\n2\n3\n')
    with pytest.raises(ValueError, match=r'exposure\.txt, line 1'):
        layout.read_exposure_file(path)
    path.write_text('0\nnan\n2\n')
    with pytest.raises(ValueError, match='line 2'):
        layout.read_exposure_file(path)


def test_scene_names_that_collide_are_refused_and_files_found_once(tmp_path, monkeypatch):
    make_scene(tmp_path / 'collide', 'a b')
    make_scene(tmp_path / 'collide', 'a_b')
    with pytest.raises(ValueError, match=r"both give the sample name 'a_b'"):
        make_dataset(tmp_path / 'collide')
    make_scene(tmp_path / 'ok', 'scene')
    dataset = make_dataset(tmp_path / 'ok')
    # __getitem__ decodes the files found at construction: no folder listing or exposure file parsing per sample.
    monkeypatch.setattr(layout, 'list_frames', lambda *a: pytest.fail('frames listed again'))
    monkeypatch.setattr(layout, 'read_exposure_file', lambda *a: pytest.fail('exposure file read again'))
    assert dataset[0]['lq'].shape == (3, 6, 32, 40)


def test_huge_gt_is_refused_naming_file_and_value(tmp_path):
    scene = make_scene(tmp_path, 'huge_gt', 8, 8)
    write_hdr(scene / 'HDRImg.hdr', structured_gt(8, 8, peak=1e36))
    with pytest.raises(ValueError, match=r'HDRImg\.hdr of scene .*huge_gt reaches 9\.9\d*e\+35, above gt_max = 1e\+06'):
        make_dataset(tmp_path)[0]
    assert make_dataset(tmp_path, gt_max=1e37)[0]['gt'].max() > 1e35  # the option is the documented bound
    write_hdr(scene / 'HDRImg.hdr', structured_gt(8, 8, peak=500.0))  # relative units (Memorial): accepted
    assert make_dataset(tmp_path)[0]['gt'].max() == pytest.approx(500, rel=1e-2)
    with pytest.raises(ValueError, match='MultiExposureHDRDataset:gt_max: expected a number > 0, got 0'):
        make_dataset(tmp_path, gt_max=0)


def test_corrupt_jpeg_frame_is_refused_by_the_dataset(tmp_path):
    scene = make_scene(tmp_path, 'jpeg_scene', 48, 64, dtype=np.uint8, ext='.jpg')
    data = (scene / 'frame_1.jpg').read_bytes()
    middle = len(data) // 2
    (scene / 'frame_1.jpg').write_bytes(data[:middle] + bytes(range(100, 200)) * 2 + data[middle + 200 :])
    with pytest.raises(ValueError, match=r'frame_1\.jpg: the image data is corrupt'):
        make_dataset(tmp_path)[0]


def test_random_draws_derive_from_seed_epoch_and_index(tmp_path):
    """Crops and flips depend only on (seed, epoch, index): equal in any process or worker, new each epoch."""
    from torch.utils.data import DataLoader

    for name in ('a', 'b'):
        make_scene(tmp_path, name, 24, 32)
    opts = {'phase': 'train', 'gt_size': 12, 'use_hflip': True, 'use_rot': True, 'seed': 5}
    dataset, again = make_dataset(tmp_path, **opts), make_dataset(tmp_path, **opts)
    assert MultiExposureHDRDataset.takes_epoch is True
    np.random.seed(1)
    first = dataset[(0, 1)]['lq']
    np.random.seed(2)  # the global generators play no part
    random.seed(3)
    assert torch.equal(again[(0, 1)]['lq'], first)
    assert not torch.equal(dataset[(1, 1)]['lq'], first)
    assert not torch.equal(make_dataset(tmp_path, **{**opts, 'seed': 6})[(0, 1)]['lq'], first)
    crops = {tuple(dataset[(epoch, 0)]['lq'][0, 0, 0, :3].tolist()) for epoch in range(12)}
    assert len(crops) > 6  # each epoch draws anew
    indices = [(epoch, i) for epoch in (0, 1) for i in (0, 1)]
    in_workers = list(DataLoader(dataset, sampler=indices, batch_size=None, num_workers=2))
    for (epoch, i), item in zip(indices, in_workers):
        assert torch.equal(item['lq'], dataset[(epoch, i)]['lq'])
