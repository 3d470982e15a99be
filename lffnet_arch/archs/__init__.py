"""Architectures; importing this package registers ``AHDRNet``, ``LFFNet`` and ``HDRAdapter`` in ``ARCH_REGISTRY``.

Each network also knows its own weights: ``options_from_state_dict`` on its class (asked by
:func:`infer_network_options`), the official AHDRNet key map beside AHDRNet, DO-Conv folding beside DO-Conv, and
the memory of a forward pass (:func:`forward_bytes_per_pixel`, for tile sizes) on the measured classes.
"""

from lffnet_arch.archs.adapter_arch import HDRAdapter
from lffnet_arch.archs.ahdrnet_arch import DRDB, AHDRNet, convert_official_ahdrnet_state_dict, official_ahdrnet_keys
from lffnet_arch.archs.attention_hdr import AttentionGuidedHDRNet, SpatialAttention
from lffnet_arch.archs.doconv import DOConv2d, fold_doconv
from lffnet_arch.archs.lffnet_arch import LFFNet
from lffnet_arch.archs.memory import MEASURED_ARCHS, forward_bytes_per_pixel
from lffnet_arch.archs.rfft import RFFTBlock
from lffnet_arch.archs.state_dict import infer_network_options, loading_advice

__all__ = [
    'AHDRNet',
    'AttentionGuidedHDRNet',
    'DOConv2d',
    'DRDB',
    'HDRAdapter',
    'LFFNet',
    'MEASURED_ARCHS',
    'RFFTBlock',
    'SpatialAttention',
    'convert_official_ahdrnet_state_dict',
    'fold_doconv',
    'forward_bytes_per_pixel',
    'infer_network_options',
    'loading_advice',
    'official_ahdrnet_keys',
]
