"""Each workaround in lffnet_arch.compat: the breakage it fixes is real here, and the fix works."""

import subprocess
import sys

import pytest
import torchvision

from lffnet_arch import compat

TORCHVISION_DROPPED_FUNCTIONAL_TENSOR = tuple(int(v) for v in torchvision.__version__.split('.')[:2]) >= (0, 17)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not TORCHVISION_DROPPED_FUNCTIONAL_TENSOR, reason='this torchvision still ships functional_tensor')
def test_basicsr_import_breaks_without_the_shim():
    # XPixelGroup/BasicSR#649, #663: the breakage the shim exists for.
    result = _run('import basicsr')
    assert result.returncode != 0
    assert 'functional_tensor' in result.stderr


def test_importing_the_plugin_makes_basicsr_importable():
    result = _run(
        'import lffnet_arch, basicsr.data.degradations as d; '
        'from torchvision.transforms.functional import rgb_to_grayscale as f; '
        'assert d.rgb_to_grayscale is f; print("ok")'
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'


def test_shim_is_idempotent():
    assert compat.install_functional_tensor_shim() is False  # already applied by `import lffnet_arch`
    compat.apply()
    assert 'torchvision.transforms.functional_tensor' in sys.modules


def test_options_files_cannot_run_code(tmp_path, monkeypatch):
    # XPixelGroup/BasicSR#768: basicsr's options loader constructs arbitrary Python objects.
    from basicsr.utils.options import parse_options
    from yaml.constructor import ConstructorError

    marker = tmp_path / 'pwned'
    opt_file = tmp_path / 'evil.yml'
    opt_file.write_text(
        f'name: evil\nnum_gpu: 0\nrun: !!python/object/apply:os.system ["touch {marker}"]\ndatasets: {{}}\npath: {{}}\n'
    )
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', str(opt_file)])
    with pytest.raises(ConstructorError):
        parse_options(str(tmp_path), is_train=True)
    assert not marker.exists()


def test_safe_loader_reads_options_in_order():
    import yaml

    loader, dumper = compat.safe_ordered_yaml()
    opt = yaml.load('b: 1\na: !!float 2e-4\nc: [1, 2]\nd: ~\n', Loader=loader)
    assert list(opt) == ['b', 'a', 'c', 'd'] and opt['a'] == 2e-4 and opt['d'] is None
    assert yaml.dump(opt, Dumper=dumper).startswith('b: 1')


def test_distributed_training_initialises_on_cpu(tmp_path):
    # basicsr/utils/dist_util.py divides by the GPU count and hard-codes nccl; base_model.py passes
    # device_ids=[torch.cuda.current_device()] to DistributedDataParallel. Run in a child process so the process
    # group and the 'spawn' start method do not leak into other tests.
    code = """
import os, socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
import torch, lffnet_arch
from basicsr.utils.options import init_dist
from basicsr.models.base_model import BaseModel
from torch.nn.parallel import DistributedDataParallel
init_dist("pytorch")
assert torch.distributed.get_backend() == ("nccl" if torch.cuda.is_available() else "gloo")
model = BaseModel({"num_gpu": 0, "is_train": True, "dist": True})
net = model.model_to_device(torch.nn.Linear(2, 2))
assert isinstance(net, DistributedDataParallel)
net(torch.ones(1, 2)).sum().backward()
torch.distributed.destroy_process_group()
print("ok")
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith('ok')


def _save_training_state(state_dir, iteration):
    import torch
    from basicsr.models.lr_scheduler import MultiStepRestartLR

    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([param], lr=1e-3)
    param.grad = torch.ones(2)
    optimizer.step()
    scheduler = MultiStepRestartLR(optimizer, milestones=[10, 20], gamma=0.5)
    state = {
        'epoch': 0,
        'iter': iteration,
        'optimizers': [optimizer.state_dict()],
        'schedulers': [scheduler.state_dict()],
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state, state_dir / f'{iteration}.state')


def test_auto_resume_finds_the_run_from_another_directory_on_cpu(tmp_path, monkeypatch):
    # basicsr/train.py looks in ./experiments relative to the working directory and maps onto
    # torch.cuda.current_device(); the plugin resumes the experiment the run writes to, on the run's device.
    import basicsr.train

    root = tmp_path / 'repo'
    states = root / 'experiments' / 'demo' / 'training_states'
    for iteration in (2, 10):
        _save_training_state(states, iteration)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    opt = {
        'name': 'demo',
        'auto_resume': True,
        'num_gpu': 0,
        'network_g': {'type': 'LFFNet'},
        'path': {
            'training_states': str(states),
            'models': str(root / 'experiments' / 'demo' / 'models'),
            'resume_state': None,
        },
    }
    state = basicsr.train.load_resume_state(opt)
    assert state is not None and state['iter'] == 10
    assert opt['path']['resume_state'] == str(states / '10.state')
    assert opt['path']['pretrain_network_g'].endswith('net_g_10.pth')
    assert state['optimizers'][0]['state'][0]['exp_avg'].device.type == 'cpu'
    assert state['schedulers'][0]['milestones'] == {10: 1, 20: 1}


def test_explicit_resume_state_loads_on_cpu(tmp_path):
    import basicsr.train

    states = tmp_path / 'experiments' / 'demo' / 'training_states'
    _save_training_state(states, 4)
    opt = {
        'auto_resume': False,
        'num_gpu': 0,
        'network_g': {'type': 'LFFNet'},
        'path': {'resume_state': str(states / '4.state'), 'models': str(tmp_path / 'models')},
    }
    state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 4 and opt['path']['pretrain_network_g'].endswith('net_g_4.pth')


def test_resume_state_path_missing_is_a_clear_error(tmp_path):
    import basicsr.train

    opt = {'auto_resume': False, 'num_gpu': 0, 'path': {'resume_state': str(tmp_path / 'nope.state')}}
    with pytest.raises(FileNotFoundError, match='resume_state.*nope.state'):
        basicsr.train.load_resume_state(opt)


def test_dataloader_options_fixed_for_cpu():
    opt = {
        'num_gpu': 0,
        'datasets': {
            'train': {'phase': 'train', 'prefetch_mode': 'cuda', 'num_worker_per_gpu': 2},
            'val': {'phase': 'val', 'prefetch_mode': 'cuda'},
        },
    }
    with pytest.warns(UserWarning, match='prefetch_mode'):
        compat.fix_dataloader_options(opt)
    assert opt['datasets']['train']['prefetch_mode'] is None
    assert opt['datasets']['train']['persistent_workers'] is True
    assert opt['datasets']['val']['prefetch_mode'] == 'cuda'  # validation loaders never prefetch


def test_entry_points_parse_with_the_fixes():
    import basicsr.test
    import basicsr.train

    assert basicsr.train.parse_options.__wrapped__ is not None
    assert basicsr.test.parse_options.__wrapped__ is not None
    assert basicsr.train.load_resume_state is compat.load_resume_state
