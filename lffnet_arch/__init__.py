"""lffnet_arch: LFFNet and AHDRNet multi-exposure HDR fusion as a BasicSR plugin.

Importing the package registers its architectures, datasets, losses, metrics and model in BasicSR's registries, so
BasicSR options files can name them by ``type``. The only other effect of the import is the torchvision shim that
``import basicsr`` needs (:mod:`lffnet_arch.compat`); the deployment API (``fuse``, ``load_model``, ``read_bracket``,
from :mod:`lffnet_arch.deploy`) is imported on first use.
"""

from lffnet_arch.compat import install_functional_tensor_shim

install_functional_tensor_shim()  # must precede the first `import basicsr`, which the subpackages below do

from lffnet_arch import archs, data, losses, metrics, models  # noqa: E402

__version__ = '0.1.0'
__all__ = ['__version__', 'archs', 'data', 'fuse', 'load_model', 'losses', 'metrics', 'models', 'read_bracket']

_DEPLOY_API = ('fuse', 'load_model', 'read_bracket')


def __getattr__(name: str):
    if name in _DEPLOY_API:
        from lffnet_arch import deploy

        return getattr(deploy, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
