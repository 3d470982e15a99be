"""Workarounds for running basicsr 1.4.2 (the latest PyPI release, 2022) on the current torch/torchvision stack.

Every workaround lives here, cites the upstream report and has a test in ``tests/test_compat.py``. Nothing in
site-packages is edited; :func:`apply` only adds what basicsr expects to find before basicsr is imported.
Import-time patches are applied by ``lffnet_arch/__init__.py``; run-time fixes (resume, distributed training,
options parsing) are added by the training issue next to the code that needs them.
"""
import sys
import types

__all__ = ['apply', 'install_functional_tensor_shim']


def install_functional_tensor_shim() -> bool:
    """Provide ``torchvision.transforms.functional_tensor`` for basicsr's degradations module.

    torchvision 0.17 removed the private module ``functional_tensor``; ``basicsr/data/degradations.py`` imports
    ``rgb_to_grayscale`` from it at import time, so ``import basicsr`` raises ``ModuleNotFoundError``
    (XPixelGroup/BasicSR#649, #663). The public ``torchvision.transforms.functional.rgb_to_grayscale`` is the same
    operation, so an alias module restores the import.

    Returns:
        bool: True when the alias was installed, False when torchvision still ships the module.
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


def apply() -> None:
    """Apply every import-time workaround; idempotent."""
    install_functional_tensor_shim()
