"""Architectures; importing this package registers ``AHDRNet`` and ``LFFNet`` in BasicSR's ``ARCH_REGISTRY``."""

from lffnet_arch.archs.ahdrnet_arch import DRDB, AHDRNet
from lffnet_arch.archs.attention_hdr import AttentionGuidedHDRNet, SpatialAttention
from lffnet_arch.archs.doconv import DOConv2d, fold_doconv
from lffnet_arch.archs.lffnet_arch import LFFNet
from lffnet_arch.archs.rfft import RFFTBlock

__all__ = [
    'AHDRNet',
    'AttentionGuidedHDRNet',
    'DOConv2d',
    'DRDB',
    'LFFNet',
    'RFFTBlock',
    'SpatialAttention',
    'fold_doconv',
]
