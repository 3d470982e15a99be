"""lffnet_arch: LFFNet and AHDRNet multi-exposure HDR fusion as a BasicSR plugin.

Importing the package registers its architectures (and, as they are added, datasets, losses, metrics and models)
in BasicSR's registries, so BasicSR's options files can name them by ``type``.
"""
from lffnet_arch import compat

compat.apply()

from lffnet_arch import archs  # noqa: E402

__version__ = '0.1.0'
__all__ = ['archs', '__version__']
