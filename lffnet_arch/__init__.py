"""lffnet_arch: LFFNet and AHDRNet multi-exposure HDR fusion as a BasicSR plugin.

Importing the package registers its architectures, dataset, losses, metrics and model in BasicSR's registries, so
BasicSR options files can name them by ``type``.
"""

import os

# OpenCV 4.x reads and writes OpenEXR only when this is set before cv2 is first imported (basicsr imports it).
os.environ.setdefault('OPENCV_IO_ENABLE_OPENEXR', '1')

from lffnet_arch import compat  # noqa: E402

compat.apply()

from lffnet_arch import archs, data, losses, metrics, models  # noqa: E402
from lffnet_arch.inference import fuse, load_model, read_bracket  # noqa: E402

__version__ = '0.1.0'
__all__ = ['__version__', 'archs', 'data', 'fuse', 'load_model', 'losses', 'metrics', 'models', 'read_bracket']
