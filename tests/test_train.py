"""Training, resume, testing and two-process training through BasicSR's pipelines, on CPU, in seconds."""

import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

# Runs the training / test entry point exactly as ``python lffnet_arch/train.py`` does, with ``root`` in place of the
# repository root, so tests write nothing into the checkout.
TRAIN = 'import sys; from lffnet_arch.train import run; run(sys.argv.pop(1))'
TEST = 'import sys; from lffnet_arch.test import run; run(sys.argv.pop(1))'


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    from lffnet_arch.data.simulator.demo import generate_demo_set

    return generate_demo_set(tmp_path_factory.mktemp('demo'), num_train=4, num_val=1, size=32, seed=3)


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


def _run(code: str, root: Path, *args: str, cwd: Path, ok: bool = True, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, '-c', code, str(root), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})},
    )
    assert (result.returncode == 0) == ok, result.stdout[-3000:] + result.stderr[-3000:]
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
    assert set(ckpt) == {'params', 'params_ema', 'network_g'}
    assert ckpt['network_g'] == {'type': 'LFFNet', 'num_feat': 8, 'num_block': 2, 'doconv': 'fusion'}
    umask = os.umask(0o022)
    os.umask(umask)
    for made in (exp / 'models' / 'net_g_2.pth', exp / 'training_states' / '2.state', exp / 'tiny.yml'):
        assert stat.S_IMODE(made.stat().st_mode) == 0o666 & ~umask, made  # the umask's mode, not a temporary's 0600
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


def _relative_options(demo_root: Path, root: Path, name: str, total_iter: int) -> dict:
    """Options whose dataset paths are relative to the run's root, as the shipped options files are."""
    opt = _options(demo_root, name, total_iter=total_iter)
    for dataset in opt['datasets'].values():
        dataset['dataroot'] = os.path.relpath(dataset['dataroot'], root)
    return opt


def _dead_pid() -> int:
    code = 'import os; print(os.getpid())'
    return int(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout)


def test_resume_restores_optimizer_and_scheduler_from_another_directory(demo_root, tmp_path):
    """Relative dataset paths resolve against the run's root from any directory; an old training state (no
    sampler position, no generator states) still resumes, with a warning; leftovers of a killed save are removed."""
    root, elsewhere = tmp_path / 'root', tmp_path / 'elsewhere'
    root.mkdir()
    elsewhere.mkdir()
    opt_file = _write(_relative_options(demo_root, root, 'resume', total_iter=2), tmp_path / 'resume.yml')
    assert not os.path.isabs(yaml.safe_load(opt_file.read_text())['datasets']['train']['dataroot'])
    _run(TRAIN, root, '-opt', str(opt_file), cwd=root)
    exp = root / 'experiments' / 'resume'
    recorded = yaml.safe_load((exp / 'resume.yml').read_text())
    assert recorded['datasets']['train']['dataroot'] == str(demo_root / 'Training')  # resolved paths recorded
    states = exp / 'training_states'
    saved = torch.load(states / '2.state', weights_only=False)
    assert {'sampler', 'rng', 'run'} <= set(saved)
    old = ('sampler', 'rng', 'run')
    torch.save({k: v for k, v in saved.items() if k not in old}, states / '2.state')  # an old state
    stale = exp / 'models' / f'.net_g_4.pth.{_dead_pid()}.k2j4h5g6.tmp'
    live = exp / 'models' / f'.net_g_4.pth.{os.getpid()}.k2j4h5g6.tmp'
    stale.write_bytes(b'killed while saving')
    live.write_bytes(b'another run saving now')

    # Saved states load back into a fresh model unchanged (optimizer moments, learning rate, scheduler).
    from basicsr.models import build_model

    from lffnet_arch.train import load_resume_state

    opt = _options(demo_root, 'resume', total_iter=4)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=True)
    opt['path'].update(training_states=str(states), models=str(root / 'experiments' / 'resume' / 'models'))
    for phase, dataset in opt['datasets'].items():
        dataset['phase'] = phase
    state = load_resume_state(opt)
    model = build_model(opt)
    model.resume_training(state)
    loaded = model.optimizers[0].state_dict()
    for key, moments in saved['optimizers'][0]['state'].items():
        torch.testing.assert_close(loaded['state'][key]['exp_avg'], moments['exp_avg'], rtol=0, atol=0)
        torch.testing.assert_close(loaded['state'][key]['exp_avg_sq'], moments['exp_avg_sq'], rtol=0, atol=0)
    assert model.schedulers[0].state_dict() == saved['schedulers'][0]
    assert model.get_current_learning_rate() == [saved['optimizers'][0]['param_groups'][0]['lr']]

    # The run resumes from another working directory and continues at iteration 3.
    opt_file = _write(_relative_options(demo_root, root, 'resume', total_iter=4), tmp_path / 'resume4.yml')
    _run(TRAIN, root, '-opt', str(opt_file), '--auto_resume', cwd=elsewhere)
    logs = sorted((root / 'experiments' / 'resume').glob('train_resume_*.log'))
    resumed_log = logs[-1].read_text()
    assert 'Resuming training from epoch' in resumed_log and ', iter: 2.' in resumed_log
    assert 'holds no sampler position and random generator states' in resumed_log
    assert 'records no run options (saved by an older version)' in resumed_log
    assert f'Removed {stale}, left by an interrupted run' in resumed_log
    assert not stale.exists() and live.exists()
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
    def save(self, epoch, current_iter, extra_state=None):
        super().save(epoch, current_iter, extra_state)
        state = self.get_bare_model(self.net_g).state_dict()
        torch.save(state, os.path.join(OUT, f"weights_{os.environ['RANK']}_{current_iter}.pth"))


from lffnet_arch.train import run

run(sys.argv.pop(1))
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


# ---------------------------------------------------------------- reliability of the training entry point


def test_runs_exactly_total_iter_and_validates_once_at_the_end(demo_root, tmp_path):
    """4 scenes in batches of 3 give one batch per epoch; BasicSR's epoch arithmetic stopped at iteration 3."""
    opt = _options(demo_root, 'exact', total_iter=4)
    opt['datasets']['train']['batch_size_per_gpu'] = 3
    opt['val']['val_freq'] = 2
    opt['logger']['save_checkpoint_freq'] = 4
    _run(TRAIN, tmp_path, '-opt', str(_write(opt, tmp_path / 'exact.yml')), cwd=tmp_path)
    exp = tmp_path / 'experiments' / 'exact'
    log = next(exp.glob('train_exact_*.log')).read_text()
    assert _logged_iters(log) == [1, 2, 3, 4]
    assert (exp / 'models' / 'net_g_4.pth').is_file() and (exp / 'training_states' / '4.state').is_file()
    assert log.count('Validation demo_val') == 2  # at 2 and at 4, the end: not again
    scene = _val_scene(demo_root)
    assert sorted(p.name for p in (exp / 'visualization' / scene).glob('*.hdr')) == [f'{scene}_2.hdr', f'{scene}_4.hdr']
    assert 'eta: -' not in log and 'day' not in log


def test_hostile_force_yml_is_refused_and_runs_nothing(demo_root, tmp_path):
    marker = tmp_path / 'pwned'
    opt_file = _write(_options(demo_root, 'hostile'), tmp_path / 'hostile.yml')
    for entry in (
        f'name=[__import__("os").system("touch {marker}")]',
        f'name"]=1;import os;os.system("touch {marker}");x["a=1',
    ):
        result = _run(TRAIN, tmp_path, '-opt', str(opt_file), '--force_yml', entry, cwd=tmp_path, ok=False)
        assert result.stderr.startswith('error: --force_yml') and 'Traceback' not in result.stderr  # one line
    result = _run(
        TEST,
        tmp_path,
        '-opt',
        str(opt_file),
        '--force_yml',
        f'name=!!python/object/apply:os.system ["touch {marker}"]',
        cwd=tmp_path,
        ok=False,
    )
    assert result.stderr.startswith('error: --force_yml') and 'Traceback' not in result.stderr
    assert not marker.exists() and not (tmp_path / 'experiments').exists()


class _Payload:
    """Unpickling this runs ``touch <marker>``: what a hostile checkpoint holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_checkpoints_load_weights_only_whatever_the_environment(demo_root, tmp_path):
    """path.pretrain_network_g in test.py and the network loaded on resume refuse a pickled payload even with
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (BasicSR's torch.load would run it)."""
    marker = tmp_path / 'pwned'
    hostile = tmp_path / 'hostile.pth'
    torch.save({'params': _Payload(marker)}, hostile)
    env = {'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'}
    opt = _options(demo_root, 'wo_test')
    opt['datasets'] = {'test_1': opt['datasets']['val']}
    opt['path'] = {'pretrain_network_g': str(hostile), 'strict_load_g': True}
    opt['val'].pop('val_freq')
    result = _run(TEST, tmp_path, '-opt', str(_write(opt, tmp_path / 't.yml')), cwd=tmp_path, ok=False, env=env)
    assert 'weights_only=True' in result.stderr and not marker.exists()

    opt_file = _write(_options(demo_root, 'wo_resume', total_iter=2), tmp_path / 'r.yml')
    _run(TRAIN, tmp_path, '-opt', str(opt_file), cwd=tmp_path, env=env)
    models = tmp_path / 'experiments' / 'wo_resume' / 'models'
    torch.save({'params': _Payload(marker), 'params_ema': _Payload(marker)}, models / 'net_g_2.pth')
    opt_file = _write(_options(demo_root, 'wo_resume', total_iter=4), tmp_path / 'r.yml')
    result = _run(TRAIN, tmp_path, '-opt', str(opt_file), '--auto_resume', cwd=tmp_path, ok=False, env=env)
    assert 'weights_only=True' in result.stderr and not marker.exists()


def test_non_finite_loss_stops_training_before_anything_is_saved(demo_root, tmp_path):
    from lffnet_arch.data.simulator.demo import generate_demo_set
    from lffnet_arch.fileio.image import read_hdr, write_hdr

    data = generate_demo_set(tmp_path / 'data', num_train=2, num_val=1, size=32, seed=4)
    gt_file = sorted((data / 'Training').iterdir())[0] / 'HDRImg.exr'
    write_hdr(gt_file, read_hdr(gt_file) * 1e36)  # finite but absurd: every loss overflows
    opt = _options(data, 'nan', total_iter=2)
    opt['datasets']['train']['gt_max'] = 1e38  # let it through the dataset's bound
    result = _run(TRAIN, tmp_path, '-opt', str(_write(opt, tmp_path / 'nan.yml')), cwd=tmp_path, ok=False)
    assert 'FloatingPointError: Non-finite training at iteration 1: l_l1:' in result.stderr
    assert sorted(p.name for p in (data / 'Training').iterdir())[0] in result.stderr  # the batch's scene names
    exp = tmp_path / 'experiments' / 'nan'
    assert not list((exp / 'models').iterdir()) and not list((exp / 'training_states').iterdir())
    assert 'Non-finite training at iteration 1' in next(exp.glob('train_nan_*.log')).read_text()

    del opt['datasets']['train']['gt_max']  # by default the dataset refuses it, naming the file and the value
    result = _run(TRAIN, tmp_path, '-opt', str(_write(opt, tmp_path / 'nan.yml')), cwd=tmp_path, ok=False)
    assert f'Ground truth {gt_file}' in result.stderr and 'above gt_max = 1e+06' in result.stderr


# Kills its own process (SIGKILL, nothing cleaned up) right after the save at iteration KILL_AT.
KILLING_TRAIN = """
import os, signal, sys
import lffnet_arch
from basicsr.utils.registry import MODEL_REGISTRY
from lffnet_arch.models.hdr_model import HDRModel
from lffnet_arch.train import run


@MODEL_REGISTRY.register()
class KilledHDRModel(HDRModel):
    def save(self, epoch, current_iter, extra_state=None):
        super().save(epoch, current_iter, extra_state)
        if current_iter == int(os.environ['KILL_AT']):
            os.kill(os.getpid(), signal.SIGKILL)


run(sys.argv.pop(1))
"""


def _losses_by_iter(log_text: str) -> dict:
    lines = re.findall(r'iter:\s*([\d,]+), lr:.*?\] (l_.*)', log_text)
    return {int(i.replace(',', '')): re.sub(r'\s+', ' ', losses).strip() for i, losses in lines}


def test_killed_and_resumed_run_logs_the_losses_of_an_uninterrupted_one(demo_root, tmp_path):
    """Killed mid-epoch (4 scenes, batches of 2, killed after iteration 3), resumed with --auto_resume: iterations 4
    to 6 log the losses of the run never interrupted, with 0 or 2 data-loader workers, and end with the same
    weights."""

    def options(name: str, workers: int, model_type: str = 'HDRModel') -> Path:
        opt = _options(demo_root, name, total_iter=6, model_type=model_type)
        opt['datasets']['train']['num_worker_per_gpu'] = workers
        opt['logger']['save_checkpoint_freq'] = 1
        opt.pop('val')
        opt['datasets'].pop('val')
        return _write(opt, tmp_path / f'{name}.yml')

    _run(TRAIN, tmp_path, '-opt', str(options('straight', 0)), cwd=tmp_path)
    straight = tmp_path / 'experiments' / 'straight'
    expected = _losses_by_iter(next(straight.glob('train_*.log')).read_text())
    assert sorted(expected) == [1, 2, 3, 4, 5, 6]
    final = torch.load(straight / 'models' / 'net_g_6.pth', weights_only=True)
    for workers in (0, 2):
        name = f'killed_{workers}'
        killed = _run(
            KILLING_TRAIN,
            tmp_path,
            '-opt',
            str(options(name, workers, 'KilledHDRModel')),
            cwd=tmp_path,
            ok=False,
            env={'KILL_AT': '3'},
        )
        assert killed.returncode == -signal.SIGKILL
        _run(TRAIN, tmp_path, '-opt', str(options(name, workers)), '--auto_resume', cwd=tmp_path)
        logs = sorted((tmp_path / 'experiments' / name).glob('train_*.log'))
        first, resumed = (_losses_by_iter(log.read_text()) for log in logs)
        assert sorted(first) == [1, 2, 3] and sorted(resumed) == [4, 5, 6]
        assert {**first, **resumed} == expected, workers
        weights = torch.load(tmp_path / 'experiments' / name / 'models' / 'net_g_6.pth', weights_only=True)
        for key in ('params', 'params_ema'):
            for param, value in final[key].items():
                torch.testing.assert_close(weights[key][param], value, rtol=0, atol=0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _torchrun(script: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={_free_port()}']
    cmd += [str(script), str(root), *args, '--launcher', 'pytorch']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_two_process_gloo_run_validates_saves_and_resumes(demo_root, tmp_path):
    """torchrun with 2 processes, no EMA: rank 0 validates with the unwrapped network (a DDP forward waited for the
    other rank, which had left), saves, and the run resumes."""
    script = tmp_path / 'launch.py'
    script.write_text('import sys\nfrom lffnet_arch.train import run\n\nrun(sys.argv.pop(1))\n')
    for total_iter, extra in ((2, ()), (4, ('--auto_resume',))):
        opt = _options(demo_root, 'ddp_val', total_iter=total_iter)
        opt['datasets']['train']['batch_size_per_gpu'] = 1
        opt['train']['ema_decay'] = 0
        _torchrun(script, tmp_path, '-opt', str(_write(opt, tmp_path / 'ddp_val.yml')), *extra)
    exp = tmp_path / 'experiments' / 'ddp_val'
    logs = [log.read_text() for log in sorted(exp.glob('train_ddp_val_*.log'))]
    assert len(logs) == 2 and 'Resuming training from epoch' in logs[1]
    assert re.search(r'Validation demo_val\s+# psnr_mu: \d+\.\d+', logs[0])
    assert _logged_iters(logs[1]) == [3, 4] and re.search(r'# psnr_mu: \d+\.\d+', logs[1])
    for name in ('net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth'):
        assert set(torch.load(exp / 'models' / name, weights_only=True)) == {'params', 'network_g'}
    scene = _val_scene(demo_root)
    assert (exp / 'visualization' / scene / f'{scene}_4.hdr').is_file()


def _train_model(demo_root: Path, **train_options):
    from basicsr.models import build_model

    opt = _options(demo_root, 'precision')
    opt.update(is_train=True, dist=False, rank=0, world_size=1)
    opt['train'].update(ema_decay=0, **train_options)
    torch.manual_seed(0)
    return build_model(opt)


def test_bf16_and_channels_last_training_steps(demo_root):
    """train.precision bf16 runs the forward pass in bfloat16 and keeps float32 weights, gradients and output;
    train.memory_format channels_last lays the weights out channels-last; both train to finite, changed weights."""
    from lffnet_arch.data.hdr_dataset import MultiExposureHDRDataset

    dataset = MultiExposureHDRDataset({**_options(demo_root, 'x')['datasets']['train'], 'phase': 'train'})
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    outputs = {}
    for name, options in {'fp32': {}, 'bf16': {'precision': 'bf16'}, 'cl': {'memory_format': 'channels_last'}}.items():
        model = _train_model(demo_root, **options)
        conv = model.net_g.conv_first.weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == (name == 'cl')
        before = conv.detach().clone()
        model.feed_data(batch)
        model.optimize_parameters(1)
        assert model.output.dtype == torch.float32 and torch.isfinite(model.output).all()
        assert conv.dtype == torch.float32 and not torch.equal(conv.detach(), before)
        outputs[name] = model.output.detach()
    # Same seed, same weights: channels-last computes the same function; bf16 rounds the forward pass.
    torch.testing.assert_close(outputs['cl'], outputs['fp32'], atol=1e-5, rtol=1e-4)
    difference = (outputs['bf16'] - outputs['fp32']).abs().max()
    assert 0 < difference < 0.05


@pytest.mark.parametrize(
    'options,match', [({'precision': 'fp16'}, 'train.precision must be'), ({'memory_format': 'nhwc'}, 'memory_format')]
)
def test_bad_training_precision_or_memory_format(demo_root, options, match):
    with pytest.raises(ValueError, match=match):
        _train_model(demo_root, **options)


def test_a_resume_with_other_options_is_refused_listing_the_differences(demo_root, tmp_path):
    """The state stores batches done; resumed with another batch size the sampler would skip samples, and a changed
    schedule would be overridden by the saved one. Such a resume is refused before any step, naming each change."""
    opt = _options(demo_root, 'exact', total_iter=2)
    _run(TRAIN, tmp_path, '-opt', str(_write(opt, tmp_path / 'exact.yml')), cwd=tmp_path)
    opt['train']['total_iter'] = 4  # a longer budget under the same schedule resumes exactly
    opt['datasets']['train']['batch_size_per_gpu'] = 4
    opt['train']['scheduler']['milestones'] = [2]
    result = _run(
        TRAIN, tmp_path, '-opt', str(_write(opt, tmp_path / 'exact.yml')), '--auto_resume', cwd=tmp_path, ok=False
    )
    assert 'exact/training_states/2.state was saved by a run with other options' in result.stderr
    assert 'datasets:train:batch_size_per_gpu: 2 -> 4' in result.stderr
    assert 'train:scheduler:milestones: [3] -> [2]' in result.stderr
    assert 'total_iter' not in result.stderr.split('other options')[1]
    assert not (tmp_path / 'experiments' / 'exact' / 'models' / 'net_g_4.pth').exists()


def test_a_run_without_a_seed_resumes_with_its_own_and_its_saved_options_run_again(demo_root, tmp_path):
    """Without manual_seed a seed is drawn each start; a resume continues with the saved run's. The options file a run
    saves beside its experiment (with the keys the run adds) passes the options check and runs again."""
    opt = _options(demo_root, 'seedless', total_iter=2)
    del opt['manual_seed']
    _run(TRAIN, tmp_path, '-opt', str(_write(opt, tmp_path / 'seedless.yml')), cwd=tmp_path)
    opt['train']['total_iter'] = 4
    _run(TRAIN, tmp_path, '-opt', str(_write(opt, tmp_path / 'seedless.yml')), '--auto_resume', cwd=tmp_path)
    exp = tmp_path / 'experiments' / 'seedless'
    assert (exp / 'models' / 'net_g_4.pth').is_file()
    saved = exp / 'seedless.yml'
    from lffnet_arch.commands.options import read_options_file
    from lffnet_arch.commands.options_schema import check_options

    check_options(read_options_file(saved), True, str(saved))


def test_simulated_training_with_a_worker_and_aligned_frames_runs_to_the_end(tmp_path):
    """The capture simulator in a data-loader worker, after the training process has used OpenCV's threads: the
    worker neither deadlocks nor oversubscribes (one OpenCV thread, set before it forks); frames pre-aligned as
    inference does, the merge head."""
    from lffnet_arch.data.simulator.demo import DEMO_RADIANCE

    opt = _options(tmp_path, 'simulated_worker', total_iter=3)
    opt['datasets']['train'] = {
        'name': 'simulated',
        'type': 'SimulatedBracketDataset',
        'dataroot': str(DEMO_RADIANCE),
        'styles': ['handheld'],
        'align': 'ecc',
        'response': 'camera',
        'gt_size': 32,
        'num_samples': 6,
        'num_worker_per_gpu': 1,
        'batch_size_per_gpu': 2,
        'dataset_enlarge_ratio': 1,
    }
    opt['datasets'].pop('val')
    opt.pop('val')
    opt['network_g'] = {'type': 'LFFNet', 'num_feat': 8, 'num_block': 1, 'head': 'merge'}
    code = 'import cv2, numpy; cv2.setNumThreads(4); cv2.resize(numpy.zeros((2048, 2048), "f"), (999, 999)); ' + TRAIN
    _run(code, tmp_path, '-opt', str(_write(opt, tmp_path / 'sim.yml')), cwd=tmp_path, env={'OMP_NUM_THREADS': '2'})
    run = tmp_path / 'experiments' / 'simulated_worker'
    assert 'End of training' in next(run.glob('train_*.log')).read_text()
    assert (run / 'models' / 'net_g_latest.pth').is_file()
