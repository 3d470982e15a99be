"""Capture simulator, radiance corpus, simulated and real-stack datasets, scale-fitted metrics."""

import importlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lffnet_arch.data import ExposureStackDataset, SimulatedBracketDataset
from lffnet_arch.data.simulator.capture import camera_response, settings_for_style, simulate_bracket
from lffnet_arch.data.simulator.radiance import load_radiance_maps
from lffnet_arch.fileio.image import imwrite_atomic, write_hdr
from lffnet_arch.metrics import calculate_psnr_mu, calculate_psnr_mu_scaled, match_scale
from tests.real_data import REAL_HDR_ROOT

QUIET = {'shot_noise': (1e-12, 1e-12), 'read_noise': (1e-12, 1e-12), 'num_objects': (0, 0)}


def _radiance(rng, height, width):
    """Log-normal texture over 12 stops with a bright lamp."""
    log2 = rng.normal(0, 2.0, (height // 8 + 1, width // 8 + 1)).astype(np.float32)
    import cv2

    log2 = cv2.resize(log2, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.exp2(log2)[..., None] * rng.uniform(0.5, 1.0, 3).astype(np.float32)
    img[height // 3 : height // 3 + 6, width // 2 : width // 2 + 6] = 4000.0
    return img.astype(np.float32)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp('radiance')
    rng = np.random.default_rng(0)
    (root / 'a').mkdir()
    write_hdr(root / 'a' / 'room.hdr', _radiance(rng, 120, 150))
    write_hdr(root / 'a' / 'pano.hdr', _radiance(rng, 200, 400))  # equirectangular: 2:1
    write_hdr(root / 'street.exr', _radiance(rng, 110, 130))
    return root


@pytest.fixture(scope='module')
def maps(corpus):
    return load_radiance_maps(corpus)


def test_corpus_listing_split_and_panorama_band(corpus, maps):
    assert [m.name for m in maps] == ['pano', 'room', 'street']
    pano = maps[0]
    assert pano.panorama and pano.image.shape[:2] == (100, 400)  # +-45 degrees of latitude out of 180
    assert [m.name for m in load_radiance_maps(corpus, exclude=['pano'])] == ['room', 'street']
    assert [m.name for m in load_radiance_maps(corpus, include=['street'])] == ['street']
    with pytest.raises(ValueError, match=r"not in the corpus: \['nope'\]"):
        load_radiance_maps(corpus, include=['nope'])
    with pytest.raises(FileNotFoundError, match='missing'):
        load_radiance_maps(corpus / 'missing')


def test_duplicate_photo_names_are_refused(tmp_path):
    for sub in ('x', 'y'):
        (tmp_path / sub).mkdir()
        write_hdr(tmp_path / sub / 'same.hdr', np.ones((80, 90, 3), np.float32))
    with pytest.raises(ValueError, match="share the name 'same'"):
        load_radiance_maps(tmp_path)


@pytest.mark.parametrize('style', ['kalantari', 'handheld'])
def test_brackets_are_deterministic_per_seed_and_vary_with_epoch(maps, style):
    settings = settings_for_style(style)
    a = simulate_bracket(maps, settings, 48, (3, 0, 5))
    b = simulate_bracket(maps, settings, 48, (3, 0, 5))
    c = simulate_bracket(maps, settings, 48, (3, 1, 5))
    np.testing.assert_array_equal(a.ldrs, b.ldrs)
    np.testing.assert_array_equal(a.gt, b.gt)
    assert not np.array_equal(a.ldrs, c.ldrs)
    assert a.ldrs.shape == (3, 48, 48, 3) and a.gt.shape == (48, 48, 3)
    assert a.ldrs.dtype == (np.uint16 if style == 'kalantari' else np.uint8)
    assert a.gt.dtype == np.float32 and 0 <= a.gt.min() and a.gt.max() <= 1
    assert a.evs[0] == 0 and np.all(np.diff(a.evs) >= 1)


def test_reference_frame_matches_the_gt_where_unclipped(maps):
    """Kalantari style without noise: L_ref ** 2.2 / t_ref is the GT up to 16-bit quantisation."""
    settings = settings_for_style('kalantari', QUIET)
    for index in range(4):
        bracket = simulate_bracket(maps, settings, 64, (0, 0, index))
        ref = bracket.ldrs[1].astype(np.float64) / 65535
        hdr = ref**2.2 / 2.0 ** bracket.evs[1]
        ok = (ref > 0.05) & (ref < 0.95)
        assert ok.mean() > 0.3
        np.testing.assert_allclose(hdr[ok], bracket.gt[ok], rtol=2e-3)


def test_sensor_clips_at_the_raw_level(maps):
    settings = settings_for_style('kalantari', QUIET)
    bracket = simulate_bracket(maps, settings, 64, (1, 0, 0))
    for ldr, ev in zip(bracket.ldrs, bracket.evs):
        saturated = bracket.gt * 2.0**ev >= 1.0 + 1e-4
        assert (ldr[saturated] == 65535).all()
        below = bracket.gt * 2.0**ev < 0.98
        assert (ldr[below] < 65535).all()
    assert (bracket.ldrs[2] == 65535).any()  # the long frame clips somewhere (the lamp at least)


def test_noise_is_added_in_the_linear_domain_before_the_response(tmp_path):
    write_hdr(tmp_path / 'flat.hdr', np.ones((96, 96, 3), np.float32))
    flat = load_radiance_maps(tmp_path)
    shot, read = 1e-4, 1e-3
    settings = settings_for_style(
        'kalantari',
        {'gamma': (1.0, 1.0), 'shot_noise': (shot, shot), 'read_noise': (read, read), 'num_objects': (0, 0)},
    )
    bracket = simulate_bracket(flat, settings, 64, (0, 0, 0))
    for ldr, ev in zip(bracket.ldrs, bracket.evs):
        linear = ldr.astype(np.float64) / 65535  # gamma 1: the stored value is the clipped linear signal
        signal = float(bracket.gt.mean()) * 2.0**ev
        if signal < 0.9:
            assert linear.var() == pytest.approx(shot * signal + read**2, rel=0.15)


def test_camera_responses():
    x = np.linspace(0, 1, 101)
    for kind in ('gamma', 'srgb', 'filmic'):
        y = camera_response(x, kind, gamma=2.4, contrast=1.5)
        assert y[0] == 0 and y[-1] == pytest.approx(1) and np.all(np.diff(y) > 0)
    srgb, filmic = camera_response(x, 'srgb'), camera_response(x, 'filmic', contrast=1.5)
    dark, bright = x < 0.1, (x > 0.3) & (x < 1)
    assert np.all(filmic[dark][1:] < srgb[dark][1:]) and np.all(filmic[bright] > srgb[bright])  # toe, shoulder
    np.testing.assert_allclose(camera_response(x, 'gamma', gamma=2.2), x ** (1 / 2.2))


def test_handheld_frames_are_the_decoded_jpegs_and_the_reference_does_not_move(maps):
    import cv2

    settings = settings_for_style('handheld', QUIET)
    bracket = simulate_bracket(maps, settings, 64, (2, 0, 1))
    assert len(bracket.jpeg) == 3
    for ldr, jpeg in zip(bracket.ldrs, bracket.jpeg):
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        np.testing.assert_array_equal(ldr, decoded)
    poses = bracket.info['camera_poses']
    assert poses[1] == (0.0, 0.0, 0.0) and any(p != (0.0, 0.0, 0.0) for p in (poses[0], poses[2]))


def test_settings_are_validated():
    with pytest.raises(ValueError, match='Unknown capture style'):
        settings_for_style('phone')
    with pytest.raises(ValueError, match="Unknown capture option 'iso'"):
        settings_for_style('handheld', {'iso': 100})
    with pytest.raises(ValueError, match=r"Unknown capture option 'num_objectz' .*\(did you mean num_objects\?\)"):
        settings_for_style('handheld', {'num_objectz': 1})
    with pytest.raises(ValueError, match='jpeg_quality needs bit_depth 8'):
        settings_for_style('kalantari', {'jpeg_quality': [80, 90]})
    with pytest.raises(ValueError, match='ref_idx must be in'):
        settings_for_style('kalantari', {'ref_idx': 3})


@pytest.mark.parametrize(
    'option,value,match',
    [
        ('num_objects', [2, 1], r'num_objects must be \(low, high\), integers with 0 <= low <= high <= 16'),
        ('num_objects', [0.5, 1], 'num_objects must be .*integers'),
        ('object_speed', [-0.1, 0.1], 'object_speed must be'),
        ('object_stops', [3, -3], 'object_stops must be'),
        ('flare', [0, 2], r'flare must be .*<= 0\.5, got \(0, 2\)'),
        ('black_level', [0.1], 'black_level must be'),
        ('jpeg_quality', [0, 90], 'jpeg_quality must be'),
        ('stop_choices', [0, 2], 'stop_choices must be a list of positive stops'),
        ('max_translation', -1, 'max_translation must be a number >= 0'),
        # an exposure ladder beyond 2 ** 20, which inference would refuse, is refused when the options are read
        ('stop_choices', [1000000], 'a ladder of 3 frames up to 1e\\+06 stops apart spans 2e\\+06 stops; at most 20'),
        ('stops', [1e6, 1e6], 'stops must be .*<= 10'),
        ('num_exposure', 20, r'num_exposure must be in \[2, 16\]'),
        ('num_exposure', 2.5, 'num_exposure must be an integer, got 2.5'),
        ('ref_idx', 1.7, 'ref_idx must be an integer or ~, got 1.7'),
        # objects larger than the scene crop
        ('object_size', [0.5, 1.5], r'object_size must be .*<= 1, got \(0.5, 1.5\)'),
        # a wrong type names the option
        ('stops', 'wide', "stops must be .*got 'wide'"),
        ('key_level', [0.1, 1.0], 'key_level must be'),
    ],
)
def test_capture_option_ranges_are_checked(option, value, match):
    with pytest.raises(ValueError, match=match):
        settings_for_style('handheld', {option: value})
    # the styles themselves are valid
    assert settings_for_style('handheld').num_objects == (0, 2)


def _dataset(corpus, **opt):
    base = {'dataroot': str(corpus), 'gt_size': 32, 'num_samples': 6, 'seed': 4, 'phase': 'train'}
    return SimulatedBracketDataset({**base, **opt})


def test_simulated_dataset_items(corpus):
    dataset = _dataset(corpus, styles={'kalantari': {'weight': 1}, 'handheld': {'weight': 3, 'max_rotation': 0.5}})
    assert len(dataset) == 6 and dataset.photos == ['pano', 'room', 'street']
    item = dataset[0]
    assert item['lq'].shape == (3, 6, 32, 32) and item['gt'].shape == (3, 32, 32)
    assert item['exposures'][0] == 1 and torch.all(item['exposures'][1:] > item['exposures'][:-1])
    # channels 3:6 are the HDR-domain frames L ** 2.2 / t
    torch.testing.assert_close(item['lq'][:, 3:], item['lq'][:, :3] ** 2.2 / item['exposures'].view(3, 1, 1, 1))
    assert torch.equal(dataset[(0, 2)]['lq'], dataset[2]['lq'])
    assert not torch.equal(dataset[(1, 2)]['lq'], dataset[2]['lq'])
    with pytest.raises(IndexError):
        dataset[6]


def test_simulated_dataset_is_the_same_with_any_number_of_workers(corpus):
    dataset = _dataset(corpus)
    batches = []
    for workers in (0, 2):
        loader = DataLoader(dataset, batch_size=3, num_workers=workers, shuffle=False)
        batches.append(torch.cat([b['lq'] for b in loader]))
    assert torch.equal(batches[0], batches[1])


def test_simulated_dataset_options_are_checked(corpus):
    with pytest.raises(ValueError, match='"gt_size"'):
        SimulatedBracketDataset({'dataroot': str(corpus)})
    with pytest.raises(ValueError, match=r"style 'handheld' sets \['num_exposure'\], which the dataset sets"):
        _dataset(corpus, styles={'handheld': {'num_exposure': 4}})
    with pytest.raises(ValueError, match='style .*weight'):
        _dataset(corpus, styles={'kalantari': {'weight': 0}})
    with pytest.raises(ValueError, match=r'gt_size 200, crops of 220 px.*need sides >= 220'):
        _dataset(corpus, gt_size=200)


def _stack(tmp_path, times=(0.25, 1.0, 4.0)):
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.01, 50, (24, 32, 3)).astype(np.float32)
    frames = []
    for i, t in enumerate(times):
        ldr = np.clip(gt * t / 10, 0, 1) ** (1 / 2.2)
        imwrite_atomic(tmp_path / f'f{i}.png', np.round(ldr[..., ::-1] * 255).astype(np.uint8))
        frames.append(f'f{i}.png')
    write_hdr(tmp_path / 'gt.hdr', gt)
    return {'name': 'stack', 'frames': frames, 'exposures': list(times), 'gt': 'gt.hdr'}, gt


def test_exposure_stack_dataset(tmp_path):
    stack, gt = _stack(tmp_path)
    dataset = ExposureStackDataset({'dataroot': str(tmp_path), 'stacks': [stack]})
    item = dataset[0]
    assert item['key'] == 'stack' and item['lq'].shape == (3, 6, 24, 32)
    torch.testing.assert_close(item['exposures'], torch.tensor([1.0, 4.0, 16.0]))
    assert np.percentile(item['gt'].numpy(), 99) == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(ValueError, match='increasing'):
        ExposureStackDataset({'dataroot': str(tmp_path), 'stacks': [{**stack, 'exposures': [1.0, 0.5, 2.0]}]})
    with pytest.raises(FileNotFoundError, match='nope.png'):
        ExposureStackDataset({'dataroot': str(tmp_path), 'stacks': [{**stack, 'frames': ['nope.png'] * 3}]})


def test_scaled_psnr_ignores_the_global_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 30, (16, 16, 3)).astype(np.float32)
    pred = gt * rng.uniform(0.9, 1.1, gt.shape).astype(np.float32)
    value = calculate_psnr_mu_scaled(pred, gt)
    assert calculate_psnr_mu_scaled(pred * 37.0, gt) == pytest.approx(value, abs=1e-6)
    assert calculate_psnr_mu_scaled(pred, gt * 0.01) == pytest.approx(value, abs=1e-6)
    scaled_pred, scaled_gt = match_scale(gt * 5.0, gt)
    np.testing.assert_allclose(scaled_pred, scaled_gt, rtol=1e-6)
    assert np.percentile(scaled_gt, 99) == pytest.approx(1.0)
    assert calculate_psnr_mu_scaled(pred, gt) > calculate_psnr_mu(pred / 30, gt / 30) - 10  # a sane figure
    with pytest.raises(ValueError, match='cannot be fitted'):
        match_scale(np.zeros_like(gt), gt)
    with pytest.raises(ValueError, match='NaN or Inf'):
        match_scale(np.full_like(gt, np.nan), gt)


@pytest.mark.skipif(not REAL_HDR_ROOT.is_dir(), reason='real HDR data not beside the checkout')
def test_the_real_training_corpus_and_its_holdout():
    """The CC0 / BSD folders hold 53 photographs; the options' held-out ones exist and are kept out of training."""
    import yaml

    folders = ['drei-assets', 'pmndrs-assets', 'gkjohnson-3d-demo-data', 'openexr_images', 'openexr-images-extra']
    names = [m.name for m in load_radiance_maps([REAL_HDR_ROOT / f for f in folders])]
    assert len(names) == 53
    opt = yaml.safe_load(open('options/train/LFFNet/train_LFFNet_RealHDR.yml'))
    holdout = opt['datasets']['train']['exclude']
    assert set(holdout) <= set(names) and len(holdout) == 9
    assert opt['datasets']['val_kalantari']['include'] == holdout
    assert [p.split('/')[-1] for p in opt['datasets']['train']['dataroot']] == folders


def test_simulate_brackets_script_writes_what_the_dataset_gives(corpus, tmp_path, capsys):
    """The written Kalantari-layout scenes read back through MultiExposureHDRDataset as the online samples."""
    import json

    from lffnet_arch.data import MultiExposureHDRDataset

    script = importlib.import_module('lffnet_arch.commands.simulate_brackets')
    out = tmp_path / 'sim'
    argv = ['--input', str(corpus), '--output', str(out), '--num', '4', '--size', '32', '--seed', '3']
    assert script.main(argv + ['--styles', 'handheld']) == 0
    assert script.main(argv + ['--styles', 'handheld']) == 1  # no overwrite
    assert 'already exists' in capsys.readouterr().err
    assert sorted(p.name for p in (out / 'sim_0001').iterdir()) == [
        'HDRImg.exr',
        'exposure.txt',
        'ldr_0.jpg',
        'ldr_1.jpg',
        'ldr_2.jpg',
    ]
    record = json.loads((out / 'simulated_set.json').read_text())
    assert len(record['scenes']) == 4 and record['photos'] == ['pano', 'room', 'street']
    online = SimulatedBracketDataset(
        {'dataroot': [str(corpus)], 'gt_size': 32, 'num_samples': 4, 'seed': 3, 'styles': ['handheld']}
    )
    disk = MultiExposureHDRDataset({'dataroot': str(out), 'phase': 'val'})
    for i in range(4):
        torch.testing.assert_close(disk[i]['lq'], online[i]['lq'], atol=1e-6, rtol=0)
        torch.testing.assert_close(disk[i]['gt'], online[i]['gt'], atol=0, rtol=0)
    assert script.main(argv + ['--styles', 'kalantari', '--overwrite']) == 0
    assert (out / 'sim_0000' / 'ldr_0.tif').is_file()


def test_linked_folders_aliases_and_tiny_scales_in_a_radiance_corpus(tmp_path):
    """Symbolic links to folders are followed (once, even in a cycle); a linked alias of an excluded photograph is
    excluded too and a photograph is used once; a map at a tiny absolute scale is brought near 1, not made black."""
    import os

    real = tmp_path / 'real'
    rng = np.random.default_rng(0)
    for index, scale in enumerate((1e-25, 1.0, 3.0)):
        (real / f'sub{index}').mkdir(parents=True)
        write_hdr(real / f'sub{index}' / f'map{index}.hdr', (rng.random((70, 80, 3)) * scale).astype(np.float32))
    corpus = tmp_path / 'corpus'
    corpus.mkdir()
    for index in range(3):
        os.symlink(real / f'sub{index}', corpus / f'link{index}')
    os.symlink(corpus, corpus / 'cycle')
    os.symlink(real / 'sub1' / 'map1.hdr', corpus / 'alias.hdr')
    assert [m.name for m in load_radiance_maps(corpus)] == ['alias', 'map0', 'map2']  # map1 once, as 'alias'
    maps = load_radiance_maps(corpus, exclude=['map1'])
    assert [m.name for m in maps] == ['map0', 'map2']
    assert 0.5 <= maps[0].image.max() <= 1.0  # 1e-25 times a power of two
    with pytest.raises(ValueError, match="option 'include' must be a list of names, got the string 'map0'"):
        load_radiance_maps(corpus, include='map0')
