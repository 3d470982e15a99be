"""Training, resume, testing and two-process training through BasicSR's pipelines, on CPU, in seconds."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

# Runs BasicSR's pipeline exactly as ``python lffnet_arch/train.py`` does, with ``root`` in place of the repository
# root, so tests write nothing into the checkout.
TRAIN = 'import sys, lffnet_arch; from basicsr.train import train_pipeline; train_pipeline(sys.argv.pop(1))'
TEST = 'import sys, lffnet_arch; from basicsr.test import test_pipeline; test_pipeline(sys.argv.pop(1))'


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    from lffnet_arch.data.demo import generate_demo_set

    return generate_demo_set(tmp_path_factory.mktemp('demo'), num_train=4, num_val=1, size=(32, 48), seed=3)


def _options(demo_root: Path, name: str, total_iter: int = 2, **overrides) -> dict:
    opt = {
        'name': name,
        'model_type': 'HDRModel',
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'train': {
                'name': 'demo_train',
                'type': 'MultiExposureHDRDataset',
                'dataroot': str(demo_root / 'Training'),
                'io_backend': {'type': 'disk'},
                'num_exposure': 3,
                'gt_size': 32,
                'use_hflip': True,
                'use_rot': True,
                'num_worker_per_gpu': 0,
                'batch_size_per_gpu': 2,
                'dataset_enlarge_ratio': 1,
            },
            'val': {
                'name': 'demo_val',
                'type': 'MultiExposureHDRDataset',
                'dataroot': str(demo_root / 'Test'),
                'io_backend': {'type': 'disk'},
                'num_exposure': 3,
            },
        },
        'network_g': {'type': 'LFFNet', 'num_feat': 8, 'num_block': 2, 'doconv': 'fusion'},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0.9,
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [3], 'gamma': 0.5},
            'total_iter': total_iter,
            'warmup_iter': -1,
            'losses': {
                'l1': {'type': 'MuLawL1Loss', 'loss_weight': 1.0},
                'msc': {'type': 'MultiScaleCharbonnierLoss', 'loss_weight': 1.0},
                'msed': {'type': 'MultiScaleEdgeLoss', 'loss_weight': 0.05},
                'msfr': {'type': 'MultiScaleFrequencyLoss', 'loss_weight': 0.01},
            },
        },
        'val': {
            'val_freq': 2,
            'save_img': True,
            'metrics': {'psnr_mu': {'type': 'calculate_psnr_mu'}, 'ssim_mu': {'type': 'calculate_ssim_mu'}},
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }
    for key, value in overrides.items():
        opt[key] = value
    return opt


def _write(opt: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def _run(code: str, root: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, '-c', code, str(root), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _val_scene(demo_root: Path) -> str:
    return sorted(p.name for p in (demo_root / 'Test').iterdir())[0]


def _logged_iters(log_text: str) -> list:
    return [int(v.replace(',', '')) for v in re.findall(r'\[epoch:\s*\d+, iter:\s*([\d,]+),', log_text)]


def test_two_iterations_train_validate_and_checkpoint(demo_root, tmp_path):
    opt = _options(demo_root, 'tiny')
    opt['val']['report_baseline'] = True
    opt_file = _write(opt, tmp_path / 'tiny.yml')
    result = _run(TRAIN, tmp_path, '-opt', str(opt_file), cwd=tmp_path)
    exp = tmp_path / 'experiments' / 'tiny'
    log = next(exp.glob('train_tiny_*.log')).read_text()
    assert _logged_iters(log)[:2] == [1, 2]
    for key in ('l_l1', 'l_msc', 'l_msed', 'l_msfr', 'l_total'):
        assert f'{key}: ' in log, key
    assert re.search(r'# psnr_mu: \d+\.\d+', log)
    ckpt = torch.load(exp / 'models' / 'net_g_2.pth', weights_only=True)
    assert set(ckpt) == {'params', 'params_ema'}
    assert (exp / 'models' / 'net_g_latest.pth').is_file()
    assert (exp / 'training_states' / '2.state').is_file()
    assert not list(exp.rglob('*.tmp'))
    scene = _val_scene(demo_root)
    assert (exp / 'visualization' / scene / f'{scene}_2.hdr').is_file()
    assert (exp / 'visualization' / scene / f'{scene}_2.png').is_file()
    assert 'Traceback' not in result.stderr

    # The reference-frame baseline in the log is the metric of the reference's HDR-domain image, computed by hand.
    from lffnet_arch.data.hdr_dataset import MultiExposureHDRDataset
    from lffnet_arch.metrics.hdr_metric import calculate_psnr_mu

    item = MultiExposureHDRDataset(
        {'dataroot': str(demo_root / 'Test'), 'io_backend': {'type': 'disk'}, 'phase': 'val'}
    )[0]
    expected = calculate_psnr_mu(item['lq'][1, 3:6].permute(1, 2, 0).numpy(), item['gt'].permute(1, 2, 0).numpy())
    logged = float(re.search(r'Reference-frame baseline on demo_val .*psnr_mu: (\d+\.\d+)', log).group(1))
    assert logged == pytest.approx(expected, abs=1e-4)


def test_baseline_computed_once_and_without_ref_idx(demo_root, monkeypatch):
    """The reference-frame baseline works for a network without ``ref_idx`` and is not recomputed per validation."""
    from basicsr.models import build_model
    from torch.utils.data import DataLoader

    import lffnet_arch.models.hdr_model as hdr_model
    from lffnet_arch.data.hdr_dataset import MultiExposureHDRDataset
    from lffnet_arch.metrics.hdr_metric import calculate_psnr_mu

    opt = _options(demo_root, 'baseline')
    opt.update(is_train=False, dist=False, rank=0, world_size=1)
    opt['val'].update(save_img=False, report_baseline=True, metrics={'psnr_mu': {'type': 'calculate_psnr_mu'}})
    model = build_model(opt)

    class Wrapped(torch.nn.Module):  # any (B, T, 6, H, W) -> (B, 3, H, W) network: the middle frame is the reference
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, lq: torch.Tensor) -> torch.Tensor:
            return self.net(lq)

    model.net_g = Wrapped(model.net_g)
    assert not hasattr(model.get_bare_model(model.net_g), 'ref_idx')
    dataset = MultiExposureHDRDataset({**opt['datasets']['val'], 'phase': 'val'})
    calls = []
    monkeypatch.setattr(hdr_model, 'calculate_metric', lambda data, o: calls.append(o) or calculate_psnr_mu(**data))
    model.nondist_validation(DataLoader(dataset), 1, None, save_img=False)
    assert len(calls) == 2 * len(dataset)  # network and baseline
    item = dataset[0]
    expected = calculate_psnr_mu(item['lq'][1, 3:6].permute(1, 2, 0).numpy(), item['gt'].permute(1, 2, 0).numpy())
    assert model._baselines['demo_val']['psnr_mu'] == pytest.approx(expected, abs=1e-6)
    model.nondist_validation(DataLoader(dataset), 2, None, save_img=False)
    assert len(calls) == 3 * len(dataset)  # the second validation computes the network's metrics only


def test_console_command_writes_under_the_working_directory(demo_root, tmp_path):
    command = Path(sys.executable).with_name('lffnet-train')
    if not command.exists():
        pytest.skip('lffnet-train is not installed in this environment')
    opt = _options(demo_root, 'console', total_iter=1)
    opt['logger']['save_checkpoint_freq'] = 1
    opt.pop('val')
    opt['datasets'].pop('val')
    opt_file = _write(opt, tmp_path / 'console.yml')
    result = subprocess.run(
        [str(command), '-opt', str(opt_file)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'experiments' / 'console' / 'models' / 'net_g_1.pth').is_file()


def test_resume_restores_optimizer_and_scheduler_from_another_directory(demo_root, tmp_path):
    root, elsewhere = tmp_path / 'root', tmp_path / 'elsewhere'
    root.mkdir()
    elsewhere.mkdir()
    opt_file = _write(_options(demo_root, 'resume', total_iter=2), tmp_path / 'resume.yml')
    _run(TRAIN, root, '-opt', str(opt_file), cwd=root)
    states = root / 'experiments' / 'resume' / 'training_states'
    saved = torch.load(states / '2.state', weights_only=False)

    # Saved states load back into a fresh model unchanged (optimizer moments, learning rate, scheduler).
    import basicsr.train
    from basicsr.models import build_model

    opt = _options(demo_root, 'resume', total_iter=4)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=True)
    opt['path'].update(training_states=str(states), models=str(root / 'experiments' / 'resume' / 'models'))
    for phase, dataset in opt['datasets'].items():
        dataset['phase'] = phase
    state = basicsr.train.load_resume_state(opt)
    model = build_model(opt)
    model.resume_training(state)
    loaded = model.optimizers[0].state_dict()
    for key, moments in saved['optimizers'][0]['state'].items():
        torch.testing.assert_close(loaded['state'][key]['exp_avg'], moments['exp_avg'], rtol=0, atol=0)
        torch.testing.assert_close(loaded['state'][key]['exp_avg_sq'], moments['exp_avg_sq'], rtol=0, atol=0)
    assert model.schedulers[0].state_dict() == saved['schedulers'][0]
    assert model.get_current_learning_rate() == [saved['optimizers'][0]['param_groups'][0]['lr']]

    # The run resumes from another working directory and continues at iteration 3.
    opt_file = _write(_options(demo_root, 'resume', total_iter=4), tmp_path / 'resume4.yml')
    _run(TRAIN, root, '-opt', str(opt_file), '--auto_resume', cwd=elsewhere)
    logs = sorted((root / 'experiments' / 'resume').glob('train_resume_*.log'))
    resumed_log = logs[-1].read_text()
    assert 'Resuming training from epoch' in resumed_log and ', iter: 2.' in resumed_log
    assert _logged_iters(resumed_log.split('Start training from')[1])[0] == 3
    final = torch.load(states / '4.state', weights_only=False)
    adam_steps = {int(s['step']) for s in final['optimizers'][0]['state'].values()}
    assert adam_steps == {4}  # 2 saved + 2 resumed steps: the moments were restored, not restarted
    # BasicSR steps the scheduler before every iteration but the first: 3 steps by iteration 4, which reaches the
    # milestone at 3 only when the 1 step taken before the interruption was restored.
    assert final['schedulers'][0]['last_epoch'] == 3
    assert final['optimizers'][0]['param_groups'][0]['lr'] == pytest.approx(1e-3 * 0.5)
    assert not (elsewhere / 'experiments').exists()


def test_test_pipeline_writes_hdr_and_png_with_tiled_validation(demo_root, tmp_path):
    from lffnet_arch.archs import LFFNet

    net = LFFNet(num_feat=8, num_block=2)
    torch.save({'params': net.state_dict()}, tmp_path / 'net.pth')
    opt = _options(demo_root, 'tiny_test')
    opt['datasets'] = {'test_1': opt['datasets']['val']}
    opt['path'] = {'pretrain_network_g': str(tmp_path / 'net.pth'), 'strict_load_g': True}
    opt['val'] = {
        'save_img': True,
        'suffix': None,
        'tile_size': 32,
        'tile_overlap': 8,
        'metrics': {
            'psnr_mu': {'type': 'calculate_psnr_mu'},
            'psnr_l': {'type': 'calculate_psnr_l'},
            'ssim_mu': {'type': 'calculate_ssim_mu'},
            'ssim_l': {'type': 'calculate_ssim_l'},
        },
    }
    for key in ('train', 'logger'):
        opt.pop(key)
    opt_file = _write(opt, tmp_path / 'test.yml')
    _run(TEST, tmp_path, '-opt', str(opt_file), cwd=tmp_path)
    results = tmp_path / 'results' / 'tiny_test'
    scene = _val_scene(demo_root)
    assert (results / 'visualization' / 'demo_val' / f'{scene}_tiny_test.hdr').is_file()
    assert (results / 'visualization' / 'demo_val' / f'{scene}_tiny_test.png').is_file()
    log = next(results.glob('test_tiny_test_*.log')).read_text()
    for metric in ('psnr_mu', 'psnr_l', 'ssim_mu', 'ssim_l'):
        assert re.search(rf'# {metric}: \d+\.\d+', log), metric
    assert 'runs in 32px tiles (overlap 8)' in log  # tiled validation is announced: its figures differ


# A launcher for torchrun: records, per rank, the samples each rank trained on and its final weights.
DIST_SCRIPT = """
import json, os, sys
import torch
import lffnet_arch
from basicsr.train import train_pipeline
from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY
from lffnet_arch.data.hdr_dataset import MultiExposureHDRDataset
from lffnet_arch.models.hdr_model import HDRModel

OUT = os.environ['RECORD_DIR']


@DATASET_REGISTRY.register()
class RecordingHDRDataset(MultiExposureHDRDataset):
    def __getitem__(self, index):
        item = super().__getitem__(index)
        with open(os.path.join(OUT, f"keys_{os.environ['RANK']}.txt"), 'a') as f:
            f.write(item['key'] + '\\n')
        return item


@MODEL_REGISTRY.register()
class RecordingHDRModel(HDRModel):
    def save(self, epoch, current_iter):
        super().save(epoch, current_iter)
        state = self.get_bare_model(self.net_g).state_dict()
        torch.save(state, os.path.join(OUT, f"weights_{os.environ['RANK']}_{current_iter}.pth"))


train_pipeline(sys.argv.pop(1))
"""


def test_two_process_gloo_training(demo_root, tmp_path):
    from lffnet_arch.archs import LFFNet

    init = LFFNet(num_feat=8, num_block=2)
    torch.save({'params': init.state_dict()}, tmp_path / 'init.pth')
    opt = _options(demo_root, 'ddp', total_iter=2, model_type='RecordingHDRModel')
    opt['datasets']['train'].update(type='RecordingHDRDataset', batch_size_per_gpu=1)
    opt['datasets'].pop('val')
    opt.pop('val')
    opt['train'].pop('ema_decay')
    opt['path']['pretrain_network_g'] = str(tmp_path / 'init.pth')
    opt_file = _write(opt, tmp_path / 'ddp.yml')
    script = tmp_path / 'launch.py'
    script.write_text(DIST_SCRIPT)
    record = tmp_path / 'record'
    record.mkdir()
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--nproc_per_node=2',
        f'--master_port={port}',
        str(script),
        str(tmp_path),
        '-opt',
        str(opt_file),
        '--launcher',
        'pytorch',
    ]
    env = {**os.environ, 'RECORD_DIR': str(record), 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # Batch 1 per process and 2 iterations: the first two samples of each rank make up epoch 0 (BasicSR's loop
    # fetches one more batch before it notices the end).
    keys = [(record / f'keys_{rank}.txt').read_text().split()[:2] for rank in (0, 1)]
    assert len(keys[0]) == len(keys[1]) == 2
    assert set(keys[0]).isdisjoint(keys[1])  # each rank saw its own shard
    weights = [torch.load(record / f'weights_{rank}_-1.pth', weights_only=True) for rank in (0, 1)]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=0, atol=0)
    params = dict(init.named_parameters())
    unchanged = [name for name, value in params.items() if torch.equal(value, weights[0][name])]
    assert not unchanged
