"""The ONNX export form of the RFFT block: the same block with its 2-D real FFTs written as real DFTs.

PyTorch's ONNX exporters cannot deliver the RFFT block's 2-D real FFTs in a form ONNX Runtime runs: the TorchScript
exporter has no ``aten::fft_rfft2``, and the dynamo exporter emits a ``DFT`` node with ``inverse=1, onesided=1`` for
``irfft2`` that ONNX Runtime rejects (pytorch/pytorch#164698, #188496). For export only, the frequency branch is
therefore written as real DFTs: matrix products with cosine and sine matrices that the graph builds from the input's
height and width, so one exported model serves every size. :class:`ExportableRFFTBlock` swaps this form into a copy
of the model (:func:`make_exportable`, used by :mod:`lffnet_arch.deploy.onnx`); :mod:`lffnet_arch.archs.rfft` is
untouched and the swap is checked against it in ``tests/deploy/test_onnx.py``.

Cost: the real DFTs are O(N^2) per row / column instead of the FFT's O(N log N); at 1000 x 1500 they add about
0.7 T multiply-adds per RFFT block, so prefer PyTorch for full-resolution throughput and ONNX for portability.
"""

import copy
import math

import torch
from torch import nn

from lffnet_arch.archs.doconv import fold_doconv
from lffnet_arch.archs.rfft import RFFTBlock

__all__ = ['ExportableRFFTBlock', 'make_exportable', 'real_irfft2', 'real_rfft2']


def _cos_sin(length: int, num_bins: int, device: torch.device) -> tuple:
    """cos and sin of 2 pi n k / length for n < length, k < num_bins: two (length, num_bins) float32 matrices.

    n * k is reduced modulo ``length`` in integers first, so the angles stay in [0, 2 pi) and float32 keeps them
    accurate for large sizes.
    """
    n = torch.arange(length, device=device)
    k = torch.arange(num_bins, device=device)
    # ``length`` as a tensor (n's last value + 1): the ONNX exporter mishandles symbolic sizes as scalar operands.
    length_t = n[-1:] + 1
    angle = torch.remainder(n[:, None] * k[None, :], length_t).float() * (2 * math.pi) / length_t.float()
    return torch.cos(angle), torch.sin(angle)


def real_rfft2(x: torch.Tensor) -> tuple:
    """``torch.fft.rfft2(x, norm='backward')`` as real matrix products (exportable to ONNX).

    Args:
        x (Tensor): (..., H, W) float32.

    Returns:
        tuple[Tensor, Tensor]: Real and imaginary parts, each (..., H, W // 2 + 1).
    """
    height, width = x.shape[-2:]
    cos_w, sin_w = _cos_sin(width, width // 2 + 1, x.device)
    cos_h, sin_h = _cos_sin(height, height, x.device)
    # Along W: P = sum_w x e^{-i theta} = A + iB.
    real_w, imag_w = x @ cos_w, -(x @ sin_w)
    # Along H (full transform, the matrices are symmetric): Z = sum_h P e^{-i phi}.
    real = cos_h @ real_w + sin_h @ imag_w
    imag = cos_h @ imag_w - sin_h @ real_w
    return real, imag


def real_irfft2(real: torch.Tensor, imag: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``torch.fft.irfft2(torch.complex(real, imag), s=(height, width), norm='backward')`` as real matrix products.

    As ``irfft2``, this is an inverse complex DFT along H followed by a complex-to-real inverse DFT along W, which
    reads the W // 2 + 1 bins as half of a Hermitian spectrum (so the imaginary parts of the DC bin and, for even
    widths, the Nyquist bin are ignored).

    Args:
        real (Tensor): (..., H, W // 2 + 1) float32 real parts.
        imag (Tensor): Same shape, imaginary parts.
        height (int): Output height H.
        width (int): Output width W.

    Returns:
        Tensor: (..., H, W).
    """
    num_bins = width // 2 + 1
    cos_h, sin_h = _cos_sin(height, height, real.device)
    # Along H: Q = (1 / H) sum_k Z e^{+i phi}.
    real_h = (cos_h @ real - sin_h @ imag) / height
    imag_h = (cos_h @ imag + sin_h @ real) / height
    # Along W: x = (1 / W) sum_k c_k (Re Q cos - Im Q sin); c_k = 2 for the bins that stand for a conjugate pair,
    # 1 for DC and the Nyquist bin (k = W / 2 for even W).
    cos_w, sin_w = _cos_sin(width, num_bins, real.device)
    k = torch.arange(num_bins, device=real.device)
    weight = torch.where((k == 0) | (2 * k == width), 1.0, 2.0) / width
    return real_h @ (cos_w * weight).transpose(0, 1) - imag_h @ (sin_w * weight).transpose(0, 1)


class ExportableRFFTBlock(RFFTBlock):
    """An :class:`RFFTBlock` whose frequency branch uses :func:`real_rfft2` / :func:`real_irfft2` (ONNX-exportable).

    It shares the original block's ``spatial`` and ``frequency`` modules (so parameter names and values are the
    block's) and inherits its ``forward``; only the transforms differ, by float32 rounding.

    Args:
        block (RFFTBlock): Block to wrap.
    """

    def __init__(self, block: RFFTBlock) -> None:
        nn.Module.__init__(self)  # The parameters come from ``block``; RFFTBlock.__init__ would build new ones.
        self.spatial = block.spatial
        self.frequency = block.frequency

    def frequency_branch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W), computed in float32 as :meth:`RFFTBlock.frequency_branch`."""
        height, width = x.shape[-2:]
        real, imag = real_rfft2(x.float())
        stacked = torch.cat([real, imag], dim=1)
        real, imag = self.frequency(stacked.to(x.dtype)).float().chunk(2, dim=1)
        return real_irfft2(real, imag, height, width).to(x.dtype)


def _swap_rfft_blocks(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, RFFTBlock) and not isinstance(child, ExportableRFFTBlock):
            setattr(module, name, ExportableRFFTBlock(child))
        else:
            _swap_rfft_blocks(child)


def make_exportable(model: nn.Module) -> nn.Module:
    """Return a folded, exportable copy of ``model`` in eval mode; ``model`` itself is not changed.

    DO-Conv layers are folded into plain convs and every :class:`RFFTBlock` becomes an :class:`ExportableRFFTBlock`.
    """
    model = fold_doconv(copy.deepcopy(model)).eval()
    if isinstance(model, RFFTBlock):
        return ExportableRFFTBlock(model)
    _swap_rfft_blocks(model)
    return model
