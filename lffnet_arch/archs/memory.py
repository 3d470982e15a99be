"""How much memory the networks' forward passes take, for choosing tile sizes (``lffnet_arch.tiling``).

Each measured network class carries ``FORWARD_BYTES_PER_PIXEL``: the rough peak memory of one fp32 forward pass per
input pixel at num_feat = 64 and T = 3 frames, in bytes, measured on the CPU as the peak-RSS increase of a fresh
process over the built model at small sizes (the largest value of each is used, so the estimate errs on the safe
side). It scales roughly linearly with num_feat and with the number of frames (the alignment network keeps T
feature maps).
"""

from typing import Optional

from lffnet_arch.archs.ahdrnet_arch import AHDRNet
from lffnet_arch.archs.lffnet_arch import LFFNet

__all__ = ['MEASURED_ARCHS', 'forward_bytes_per_pixel']

MEASURED_ARCHS = {cls.__name__: cls for cls in (LFFNet, AHDRNet)}


def forward_bytes_per_pixel(arch: Optional[str] = 'LFFNet', num_feat: int = 64, num_exposure: int = 3) -> float:
    """Estimated peak memory of one fp32 forward pass per input pixel, in bytes.

    ``FORWARD_BYTES_PER_PIXEL * num_feat / 64 * max(1, num_exposure / 3)`` of ``arch``; the largest measured figure
    stands in for ``arch=None`` (an architecture without a measurement). Half precision needs less, so the estimate
    stays safe.

    Args:
        arch (str | None): A name of :data:`MEASURED_ARCHS` (``'LFFNet'``, ``'AHDRNet'``) or None. Default: 'LFFNet'.
        num_feat (int): The network's feature channels. Default: 64.
        num_exposure (int): Frames T. Default: 3.

    Raises:
        ValueError: ``arch`` is a name without a measurement.
    """
    if arch is not None and arch not in MEASURED_ARCHS:
        raise ValueError(
            f'No memory estimate for arch {arch!r}; expected one of {sorted(MEASURED_ARCHS)} '
            'or pass bytes_per_pixel (or arch=None for the largest estimate).'
        )
    figures = [cls.FORWARD_BYTES_PER_PIXEL for cls in MEASURED_ARCHS.values()]
    measured = max(figures) if arch is None else MEASURED_ARCHS[arch].FORWARD_BYTES_PER_PIXEL
    return measured * num_feat / 64 * max(1.0, num_exposure / 3)
