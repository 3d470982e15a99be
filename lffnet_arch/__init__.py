"""lffnet_arch: LFFNet and AHDRNet multi-exposure HDR fusion as a BasicSR plugin.

Importing the package registers its architectures, datasets, losses, metrics and model in BasicSR's registries, so
BasicSR options files can name them by ``type``. The only other effect of the import is the torchvision shim that
``import basicsr`` needs (:mod:`lffnet_arch.compat`); the deployment API (``fuse``, ``load_model``, ``read_bracket``,
from :mod:`lffnet_arch.deploy`) is imported on first use.

The console commands (the top-level ``lffnet_cli`` module) check their arguments before torch is imported: while
``lffnet_cli.DEFER_REGISTRATION`` is set, importing the package leaves the registration to an explicit
:func:`register`, so the torch-free modules of the command line (``commands.arguments``, ``commands.inference_args``,
``choices``, ``deploy.pretrained``) load on their own.
"""

import importlib
import sys

__version__ = '0.1.0'
__all__ = [
    '__version__',
    'archs',
    'data',
    'fuse',
    'load_model',
    'losses',
    'metrics',
    'models',
    'read_bracket',
    'register',
]

_DEPLOY_API = ('fuse', 'load_model', 'read_bracket')
# Importing these fills BasicSR's registries.
_REGISTERING = (
    'lffnet_arch.archs',
    'lffnet_arch.data',
    'lffnet_arch.losses',
    'lffnet_arch.metrics',
    'lffnet_arch.models',
)


def register() -> None:
    """Install the torchvision shim and register every component in BasicSR's registries (once; importing the
    package does it, except inside a console command's argument check)."""
    from lffnet_arch.compat import install_functional_tensor_shim

    install_functional_tensor_shim()  # must precede the first `import basicsr`, which the subpackages below do
    for name in _REGISTERING:
        importlib.import_module(name)


def __getattr__(name: str):
    if name in _DEPLOY_API:
        from lffnet_arch import deploy

        return getattr(deploy, name)
    if f'{__name__}.{name}' in _REGISTERING:  # after a deferred import, before register()
        register()
        return sys.modules[f'{__name__}.{name}']
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


if not getattr(sys.modules.get('lffnet_cli'), 'DEFER_REGISTRATION', False):
    register()
