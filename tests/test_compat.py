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
    assert 'torchvision.transforms.functional_tensor' in sys.modules


def test_importing_the_networks_changes_nothing_else():
    # Embedding the networks elsewhere must leave basicsr, the environment and the deployment stack alone.
    result = _run(
        'import os, sys; os.environ.pop("OPENCV_IO_ENABLE_OPENEXR", None); '
        'from lffnet_arch.archs import LFFNet; '
        'import basicsr.train, basicsr.utils.options as o; from basicsr.models.base_model import BaseModel; '
        'assert "OPENCV_IO_ENABLE_OPENEXR" not in os.environ; '
        'assert BaseModel.model_to_device.__module__ == "basicsr.models.base_model"; '
        'assert basicsr.train.load_resume_state.__module__ == "basicsr.train"; '
        'assert o.ordered_yaml.__module__ == "basicsr.utils.options"; '
        'assert not [m for m in sys.modules if m.startswith(("lffnet_arch.deploy", "lffnet_arch.inference"))]; '
        'from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY; '
        'assert {"LFFNet", "AHDRNet", "HDRAdapter"} <= set(ARCH_REGISTRY.keys()); '
        'assert "MultiExposureHDRDataset" in DATASET_REGISTRY.keys() and "HDRModel" in MODEL_REGISTRY.keys(); '
        'import lffnet_arch; assert callable(lffnet_arch.fuse) and callable(lffnet_arch.load_model); print("ok")'
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'ok'


def test_runtime_workaround_is_applied_by_the_entry_points():
    from basicsr.models.base_model import BaseModel

    compat.apply_runtime()
    assert BaseModel.model_to_device is compat.model_to_device


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
import torch
from lffnet_arch import compat
from lffnet_arch.compat import init_dist
from basicsr.models.base_model import BaseModel
compat.apply_runtime()
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
