"""Architectures; importing this package registers ``AHDRNet``, ``LFFNet`` and ``HDRAdapter`` in ``ARCH_REGISTRY``."""

from lffnet_arch.archs.adapter_arch import HDRAdapter
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
    'HDRAdapter',
    'LFFNet',
    'RFFTBlock',
    'SpatialAttention',
    'fold_doconv',
]
