"""HDRAdapter: BasicSR's image-to-image networks on the HDR protocol (shapes, padding, argument mapping, errors), and
the shipped SwinIR options trained and tested through the project's commands with the perceptual metrics and
comparison pictures."""

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from lffnet_arch.archs import HDRAdapter
from lffnet_arch.archs.adapter_arch import inner_network_arguments

REPO = Path(__file__).resolve().parents[2]

TINY = {
    'SwinIR': {'type': 'SwinIR', 'embed_dim': 12, 'depths': [1], 'num_heads': [2], 'window_size': 4, 'img_size': 16},
    'RRDBNet': {'type': 'RRDBNet', 'num_feat': 8, 'num_block': 1, 'num_grow_ch': 4},
    'EDSR': {'type': 'EDSR', 'num_feat': 8, 'num_block': 1},
}


def _lq(height: int, width: int, frames: int = 3) -> torch.Tensor:
    return torch.rand(2, frames, 6, height, width)


@pytest.mark.parametrize('arch', sorted(TINY))
def test_any_size_in_linear_hdr_out(arch):
    net = HDRAdapter(TINY[arch]).eval()
    with torch.no_grad():
        out = net(_lq(30, 37))
    assert out.shape == (2, 3, 30, 37)
    assert torch.isfinite(out).all() and out.min() > 0 and out.max() < 1  # the HDR networks' sigmoid range
    assert net.num_exposure == 3 and net.ref_idx == 1 and net.num_in_ch == 6


def test_argument_defaults_and_padding_multiples():
    _, options, in_ch, out_ch, multiple = inner_network_arguments(TINY['SwinIR'], 18)
    assert (options['in_chans'], in_ch, out_ch, multiple, options['upscale']) == (18, 18, 18, 4, 1)
    _, options, in_ch, out_ch, multiple = inner_network_arguments(TINY['RRDBNet'], 18)
    assert (options['num_in_ch'], options['num_out_ch'], options['scale'], multiple) == (18, 3, 1, 4)
    # EDSR subtracts an RGB mean: it takes and returns 3 channels.
    _, options, in_ch, out_ch, multiple = inner_network_arguments(TINY['EDSR'], 18)
    assert (options['num_in_ch'], options['num_out_ch'], options['upscale'], multiple) == (3, 3, 1, 1)


def test_channel_names_are_mapped_to_the_networks_own():
    net = HDRAdapter({**TINY['SwinIR'], 'num_in_ch': 8})  # BasicSR's name for SwinIR's in_chans
    assert net.stem.out_channels == 8 and net.inner.conv_first.in_channels == 8 and net.head.in_channels == 8
    net = HDRAdapter({**TINY['RRDBNet'], 'in_chans': 5, 'out_chans': 7})
    assert net.inner.conv_first.in_channels == 5 * 16  # RRDBNet at scale 1 pixel-unshuffles by 4
    assert net.head.in_channels == 7
    with torch.no_grad():
        assert net.eval()(_lq(16, 20)).shape == (2, 3, 16, 20)


def test_no_padding_when_the_size_is_already_a_multiple():
    net = HDRAdapter(TINY['SwinIR']).eval()
    lq = _lq(16, 24)
    with torch.no_grad():
        expected = torch.sigmoid(net.head(net.inner(net.stem(lq.reshape(2, 18, 16, 24)))))
        assert torch.equal(net(lq), expected)
        # Padding to a larger multiple changes only what the inner network sees, never the output size.
        net.pad_multiple = 8
        assert net(lq).shape == expected.shape


@pytest.mark.parametrize(
    ('inner', 'match'),
    [
        ({'type': 'RRDBNet', 'num_feat': 8, 'num_block': 1, 'scale': 4}, 'scale 1'),
        ({'type': 'EDSR', 'num_in_ch': 18}, 'RGB mean'),
        ({'type': 'SwinIR', 'in_chans': 3, 'num_in_ch': 3}, 'given twice'),
        ({'type': 'SwinIR', 'in_chans': 4, 'num_out_ch': 3}, 'as many channels'),
        ({'type': 'NoSuchNet'}, 'not registered'),
        ({'embed_dim': 8}, 'type'),
        ({'type': 'LFFNet'}, 'without the adapter'),
        ({'type': 'RRDBNet', 'num_feat': 8, 'no_such_option': 1}, 'invalid options'),
        ({'type': 'SpyNet'}, 'input-channel argument'),
    ],
)
def test_bad_inner_options_are_refused(inner, match):
    with pytest.raises(ValueError, match=match):
        HDRAdapter(inner)


def test_bad_adapter_options_and_input_are_refused():
    with pytest.raises(ValueError, match='ref_idx'):
        HDRAdapter(TINY['EDSR'], ref_idx=3)
    with pytest.raises(ValueError, match='pad_multiple'):
        HDRAdapter(TINY['EDSR'], pad_multiple=0)
    with pytest.raises(ValueError, match=r'\(B, 3, 6, H, W\)'):
        HDRAdapter(TINY['EDSR'])(torch.rand(1, 2, 6, 16, 16))


def test_registered_and_built_from_options():
    assert 'HDRAdapter' in ARCH_REGISTRY
    net = build_network({'type': 'HDRAdapter', 'inner': TINY['RRDBNet'], 'num_exposure': 4, 'ref_idx': 2})
    assert net.stem.in_channels == 24 and net.ref_idx == 2
    net.train()
    out = net(_lq(16, 16, frames=4))
    out.mean().backward()  # trainable end to end
    assert net.stem.weight.grad is not None and net.stem.weight.grad.abs().sum() > 0


# Runs BasicSR's pipelines as ``python lffnet_arch/train.py`` / ``test.py`` do, with the root in tmp_path.
TRAIN = 'import sys, lffnet_arch; from basicsr.train import train_pipeline; train_pipeline(sys.argv.pop(1))'
TEST = 'import sys, lffnet_arch; from basicsr.test import test_pipeline; test_pipeline(sys.argv.pop(1))'
METRICS = {
    'psnr_mu': {'type': 'calculate_psnr_mu'},
    'pu21_psnr': {'type': 'calculate_pu21_psnr', 'display_peak': 1000},
    'pu21_ssim': {'type': 'calculate_pu21_ssim'},
    'cvvdp': {'type': 'calculate_cvvdp', 'device': 'cpu'},
}


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    from lffnet_arch.data.simulator.demo import generate_demo_set

    return generate_demo_set(tmp_path_factory.mktemp('demo'), num_train=3, num_val=1, size=32, seed=5)


def _shipped_options(kind: str, name: str, demo_root: Path) -> dict:
    """The shipped SwinIR demo options (train or test), narrowed for a test: CPU, 32 x 32 crops, a tiny SwinIR."""
    opt = yaml.safe_load((REPO / 'options' / kind / 'SwinIR' / f'{kind}_SwinIR_demo.yml').read_text())
    opt.update(name=name, num_gpu=0)
    inner = opt['network_g']['inner']
    inner.update(embed_dim=8, depths=[1], num_heads=[2], window_size=4, img_size=32)
    for dataset in opt['datasets'].values():
        dataset['dataroot'] = str(demo_root / ('Training' if dataset['name'] == 'demo_train' else 'Test'))
    opt['val'].update(metrics=METRICS, save_comparison=True, tonemap='reinhard', pbar=False)
    if kind == 'train':
        opt['datasets']['train'].update(gt_size=32, batch_size_per_gpu=2, dataset_enlarge_ratio=1)
        opt['train'].update(total_iter=2, scheduler={'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5})
        opt['val']['val_freq'] = 2
        opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    return opt


def _run(code: str, root: Path, opt: dict, name: str) -> None:
    opt_file = root / f'{name}.yml'
    opt_file.write_text(yaml.safe_dump(opt, sort_keys=False))
    result = subprocess.run(
        [sys.executable, '-c', code, str(root), '-opt', str(opt_file)], cwd=root, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_swinir_trains_and_tests_through_the_projects_commands(demo_root, tmp_path):
    _run(TRAIN, tmp_path, _shipped_options('train', 'swinir_tiny', demo_root), 'train')
    exp = tmp_path / 'experiments' / 'swinir_tiny'
    log = next(exp.glob('train_swinir_tiny_*.log')).read_text()
    for key in ('l_l1', 'l_msc', 'l_msed', 'l_msfr', 'l_total'):
        assert f'{key}: ' in log, key
    for metric in ('psnr_mu', 'pu21_psnr', 'pu21_ssim'):
        assert re.search(rf'# {metric}: \d+\.\d+', log), metric
    if importlib.util.find_spec('pycvvdp') is None:
        assert 'Skipping val.metrics.cvvdp: calculate_cvvdp needs the cvvdp package' in log
    else:
        assert re.search(r'# cvvdp: \d+\.\d+', log)
    scene = sorted(p.name for p in (demo_root / 'Test').iterdir())[0]
    picture = cv2.imread(str(exp / 'visualization' / scene / f'{scene}_2_comparison.png'))
    assert picture is not None and picture.shape == (2 * (32 * 8 + 24), 3 * 32 * 8, 3)  # 32 px enlarged 8x to 256

    checkpoint = exp / 'models' / 'net_g_latest.pth'
    assert set(torch.load(checkpoint, weights_only=True)) == {'params', 'network_g'}  # the demo recipe has no EMA
    opt = _shipped_options('test', 'swinir_tiny_test', demo_root)
    opt['path']['pretrain_network_g'] = str(checkpoint)
    _run(TEST, tmp_path, opt, 'test')
    results = tmp_path / 'results' / 'swinir_tiny_test' / 'visualization' / 'demo_test'
    assert (results / f'{scene}_swinir_tiny_test.hdr').is_file()
    assert (results / f'{scene}_swinir_tiny_test_comparison.png').is_file()


def test_validation_skips_a_metric_whose_package_is_missing(demo_root, monkeypatch, tmp_path):
    from basicsr.models import build_model
    from torch.utils.data import DataLoader

    import lffnet_arch.models.hdr_model as hdr_model
    from lffnet_arch.data.hdr_dataset import MultiExposureHDRDataset

    opt = _shipped_options('test', 'skip', demo_root)
    opt.update(is_train=False, dist=False, rank=0, world_size=1)
    opt['path'] = {'pretrain_network_g': None, 'visualization': str(tmp_path)}
    model = build_model(opt)
    monkeypatch.setattr(
        hdr_model, 'metric_unavailable', lambda kind: 'not installed here' if kind == 'calculate_cvvdp' else None
    )
    dataset = MultiExposureHDRDataset({**opt['datasets']['test_1'], 'phase': 'val'})
    model.nondist_validation(DataLoader(dataset), 0, None, save_img=True)
    assert set(model.metric_results) == {'psnr_mu', 'pu21_psnr', 'pu21_ssim'}
    assert len(list(tmp_path.rglob('*_comparison.png'))) == len(dataset)
    model.opt['val']['tonemap'] = 'filmic'
    with pytest.raises(ValueError, match='val.tonemap'):
        model.nondist_validation(DataLoader(dataset), 0, None, save_img=False)


def test_cpu_benchmark_times_an_adapted_network_beside_lffnet():
    report = importlib.import_module('scripts.measure.speed').main(
        ['--opt', f'SwinIR={REPO / "options" / "train" / "SwinIR" / "train_SwinIR_demo.yml"}', '--archs', 'LFFNet',
         '--sizes', '16x24', '--runs', '1', '--warmup', '0', '--no_memory', '--no_train']
    )  # fmt: skip
    rows = [line.split(' | ')[0].strip('| ') for line in report.splitlines() if line.startswith('| ')]
    assert 'SwinIR' in rows and 'LFFNet' in rows
