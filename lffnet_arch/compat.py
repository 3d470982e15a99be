"""Workarounds for running basicsr 1.4.2 (the latest PyPI release, 2022) on the current torch/torchvision stack.

Every workaround lives here, cites the upstream report or the failing line, and has a test in
``tests/test_compat.py``. Nothing in site-packages is edited, and importing the package changes only what must
precede ``import basicsr``:

- :func:`install_functional_tensor_shim`, run by ``import lffnet_arch``, adds the module basicsr imports.
- :func:`apply_runtime`, called by the entry points ``lffnet_arch.train.run`` and ``lffnet_arch.test.run`` (not at
  import), replaces ``BaseModel.model_to_device`` so that distributed runs work on the CPU.
- :func:`safe_ordered_yaml`, :func:`init_dist` and :func:`fix_dataloader_options` are called directly by
  ``lffnet_arch.commands.options.parse_options``, the options reader of the entry points; basicsr's own
  ``parse_options`` is not used.
"""

import os
import sys
import types
import warnings
from collections import OrderedDict

import torch

__all__ = [
    'apply_runtime',
    'fix_dataloader_options',
    'init_dist',
    'install_functional_tensor_shim',
    'model_to_device',
    'safe_ordered_yaml',
]


def install_functional_tensor_shim() -> bool:
    """Provide ``torchvision.transforms.functional_tensor`` for basicsr's degradations module.

    torchvision 0.17 removed the private module ``functional_tensor``; ``basicsr/data/degradations.py`` imports
    ``rgb_to_grayscale`` from it at import time, so ``import basicsr`` raises ``ModuleNotFoundError``
    (XPixelGroup/BasicSR#649, #663). The public ``torchvision.transforms.functional.rgb_to_grayscale`` is the same
    operation, so an alias module restores the import.

    Returns:
        bool: True when the alias was installed, False when it exists already.
    """
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return False
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401

        return False
    except ImportError:
        pass
    from torchvision.transforms import functional

    shim = types.ModuleType(name)
    shim.rgb_to_grayscale = functional.rgb_to_grayscale
    sys.modules[name] = shim
    return True


def safe_ordered_yaml():
    """(Loader, Dumper) like ``basicsr.utils.options.ordered_yaml``, but the Loader is YAML's safe loader.

    basicsr parses options files with PyYAML's full ``Loader``/``CLoader``, which constructs arbitrary Python objects
    from tags such as ``!!python/object/apply:os.system``: opening an options file could run code
    (XPixelGroup/BasicSR#768). Options are plain data, so the safe loader (mappings kept in order) reads every valid
    options file and rejects such tags with ``yaml.constructor.ConstructorError``.
    """
    import yaml

    class OrderedSafeLoader(yaml.SafeLoader):
        pass

    class OrderedDumper(yaml.SafeDumper):
        pass

    def construct_mapping(loader, node):
        return OrderedDict(loader.construct_pairs(node))

    def represent_ordered_dict(dumper, data):
        return dumper.represent_dict(data.items())

    OrderedSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    OrderedDumper.add_representer(OrderedDict, represent_ordered_dict)
    return OrderedSafeLoader, OrderedDumper


def dist_backend() -> str:
    """``nccl`` when CUDA is available, else ``gloo`` (the only backend that runs on CPU)."""
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def init_dist(launcher: str, backend=None, **kwargs) -> None:
    """``basicsr.utils.dist_util.init_dist`` that also works without GPUs.

    basicsr hard-codes the nccl backend and calls ``torch.cuda.set_device(rank % torch.cuda.device_count())``,
    which raises ``ZeroDivisionError`` on a CPU-only machine (``basicsr/utils/dist_util.py``). Here the backend is
    nccl on GPUs and gloo on CPU, and the device is set only when there is one.
    """
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if launcher != 'pytorch':
        from basicsr.utils import dist_util

        return dist_util.init_dist(launcher, backend=backend or 'nccl', **kwargs)
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
    dist.init_process_group(backend=backend or dist_backend(), **kwargs)


def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
    """``BaseModel.model_to_device`` without the CUDA assumption.

    basicsr wraps the network in ``DistributedDataParallel(net, device_ids=[torch.cuda.current_device()])``, which
    fails without a GPU (``basicsr/models/base_model.py``). CPU modules must be wrapped with ``device_ids=None``.
    """
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    net = net.to(self.device)
    if self.opt['dist']:
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(
            net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False)
        )
    elif self.opt['num_gpu'] > 1:
        net = DataParallel(net)
    return net


def fix_dataloader_options(opt: dict) -> dict:
    """Adjust data-loading options that cannot work as written on this machine; return ``opt``.

    - ``prefetch_mode: cuda`` needs a GPU (``CUDAPrefetcher`` calls ``torch.cuda.Stream``); without one it falls back
      to the plain loader, with a warning.
    - Distributed training switches multiprocessing to ``spawn``; basicsr then re-creates its DataLoader workers
      every epoch, which re-imports torch in each and costs seconds per epoch on small datasets. Workers are kept
      alive across epochs (``persistent_workers: true``) unless the options say otherwise.
    """
    for name, dataset_opt in opt.get('datasets', {}).items():
        if dataset_opt.get('phase') != 'train':
            continue
        if dataset_opt.get('prefetch_mode') == 'cuda' and (opt['num_gpu'] == 0 or not torch.cuda.is_available()):
            warnings.warn(
                f'datasets.{name}.prefetch_mode is "cuda" but no GPU is used; using the plain data loader.',
                stacklevel=2,
            )
            dataset_opt['prefetch_mode'] = None
        if dataset_opt.get('num_worker_per_gpu', 0) > 0:
            dataset_opt.setdefault('persistent_workers', True)
    return opt


def apply_runtime() -> None:
    """Apply the runtime workaround (:func:`model_to_device` on ``BaseModel``); idempotent.

    Called by the entry points before they build a model, so that embedding the networks elsewhere
    (``from lffnet_arch.archs import LFFNet``) leaves basicsr as it is.
    """
    from basicsr.models.base_model import BaseModel

    BaseModel.model_to_device = model_to_device
