"""Losses of the LFFNet paper, computed between mu-law tonemapped prediction and ground truth.

The paper's objective is L = L1 + L_msc + 0.05 L_msed + 0.01 L_msfr (the weights are DeepRFT's; the paper gives
none). Each term is a separate registered loss so an options file lists them with their ``loss_weight``:

- :class:`MuLawL1Loss`: mean |T(y) - T(gt)|, AHDRNet's training loss.
- :class:`MultiScaleCharbonnierLoss`: Charbonnier sqrt((x - y)^2 + eps^2) at scales 1, 1/2, 1/4.
- :class:`MultiScaleEdgeLoss`: Charbonnier between Laplacians Lap(x) = x - G(U(G(x))) at the same scales.
- :class:`MultiScaleFrequencyLoss`: mean modulus of the difference of full 2-D FFTs at the same scales.

T is the mu-law tonemap of :func:`lffnet_arch.hdr_input.mu_law`. The scales come from a binomial pyramid:
blur with the 5x5 kernel outer([1, 4, 6, 4, 1] / 16) under reflect padding, then keep every second row and column;
the terms of all scales are summed with weight 1. Reflect padding needs at least 3 pixels per side, so
``num_scales`` scales need inputs of at least ``2 ** (num_scales - 1) + 1`` pixels per side (5 for the default 3);
smaller inputs raise a ``ValueError``.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from basicsr.losses.loss_util import reduce_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from lffnet_arch.hdr_input import MU, mu_law

__all__ = [
    'MuLawL1Loss',
    'MultiScaleCharbonnierLoss',
    'MultiScaleEdgeLoss',
    'MultiScaleFrequencyLoss',
    'binomial_pyramid',
    'laplacian',
    'min_pyramid_size',
]

BINOMIAL_TAPS = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
EDGE_TAPS = (0.05, 0.25, 0.4, 0.25, 0.05)


def _outer_kernel(taps: Sequence[float]) -> torch.Tensor:
    """(1, 1, K, K) kernel g^T g of the 1-D taps g."""
    g = torch.tensor(taps, dtype=torch.float32)
    return torch.outer(g, g)[None, None]


def _blur(x: torch.Tensor, kernel: torch.Tensor, padding_mode: str) -> torch.Tensor:
    """Depthwise 'same' filtering of (B, C, H, W) with a (1, 1, K, K) kernel shared by every channel."""
    batch, channels, height, width = x.shape
    pad = kernel.shape[-1] // 2
    # Folding channels into the batch applies one single-channel kernel to every channel, whatever C is.
    flat = F.pad(x.reshape(batch * channels, 1, height, width), (pad, pad, pad, pad), mode=padding_mode)
    out = F.conv2d(flat, kernel.to(device=x.device, dtype=x.dtype))
    return out.reshape(batch, channels, height, width)


def min_pyramid_size(num_scales: int) -> int:
    """Smallest side length for which :func:`binomial_pyramid` can build ``num_scales`` levels."""
    return 2 ** (num_scales - 1) + 1 if num_scales > 1 else 1


def binomial_pyramid(x: torch.Tensor, num_scales: int, kernel: torch.Tensor) -> list[torch.Tensor]:
    """Gaussian pyramid of (B, C, H, W): ``[x, down(x), down(down(x)), ...]`` with ``num_scales`` levels.

    down(x) blurs with ``kernel`` (1, 1, 5, 5) under reflect padding and keeps rows and columns 0, 2, 4, ...,
    so a level of side n gives one of side ceil(n / 2); odd sizes are fine.

    Raises:
        ValueError: A level that must be downsampled has a side shorter than 3 (reflect padding by 2 needs 3).
    """
    levels = [x]
    for _ in range(num_scales - 1):
        height, width = levels[-1].shape[-2:]
        if min(height, width) < 3:
            raise ValueError(
                f'Input of size {tuple(x.shape[-2:])} is too small for a {num_scales}-scale binomial '
                f'pyramid (level {len(levels)} would be {height}x{width}, reflect padding needs at '
                f'least 3x3): inputs must be at least {min_pyramid_size(num_scales)} pixels per side.'
            )
        levels.append(_blur(levels[-1], kernel, 'reflect')[..., ::2, ::2])
    return levels


def laplacian(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Laplacian x - G(U(G(x))) of (B, C, H, W), G the (1, 1, 5, 5) ``kernel`` under replicate padding.

    U keeps G(x) at the even rows and columns, multiplied by 4 (the zero-inserted pixels' share), and zero
    elsewhere: a downsample-upsample round trip, so the result holds the image's finest detail (edges).
    """
    blurred = _blur(x, kernel, 'replicate')
    upsampled = torch.zeros_like(blurred)
    upsampled[..., ::2, ::2] = blurred[..., ::2, ::2] * 4
    return x - _blur(upsampled, kernel, 'replicate')


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError(
            f'{name} expects pred and target of the same shape (B, C, H, W); '
            f'got {tuple(pred.shape)} and {tuple(target.shape)}.'
        )


def _working_precision(x: torch.Tensor) -> torch.Tensor:
    # Half-precision log1p, FFT (power-of-two sizes only) and small Charbonnier eps are unreliable; use float32.
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_common(loss_weight: float, mu: float, reduction: str, allowed: Sequence[str], name: str) -> None:
    if reduction not in allowed:
        raise ValueError(f'{name}: unsupported reduction {reduction!r}; expected one of {list(allowed)}.')
    if mu <= 0:
        raise ValueError(f'{name}: mu must be positive, got {mu}.')
    if loss_weight < 0:
        raise ValueError(f'{name}: loss_weight must be non-negative, got {loss_weight}.')


def _check_eps(eps: float, name: str) -> float:
    if eps <= 0:
        raise ValueError(f'{name}: eps must be positive, got {eps}.')
    return eps


def _charbonnier(diff: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.sqrt(diff**2 + eps**2)


@LOSS_REGISTRY.register()
class MuLawL1Loss(nn.Module):
    """L1 between mu-law tonemapped prediction and target, mean |T(pred) - T(target)| (AHDRNet's loss).

    Args:
        loss_weight (float): Factor on the loss. Default: 1.0.
        reduction (str): 'none' (per-element map) | 'mean' | 'sum'. Default: 'mean'.
        mu (float): Mu-law compression. Default: 5000.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean', mu: float = MU) -> None:
        super().__init__()
        _check_common(loss_weight, mu, reduction, ('none', 'mean', 'sum'), type(self).__name__)
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.mu = mu

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: (B, C, H, W) linear HDR, non-negative -> scalar, or (B, C, H, W) for reduction 'none'."""
        _check_pair(pred, target, type(self).__name__)
        diff = mu_law(_working_precision(pred), self.mu) - mu_law(_working_precision(target), self.mu)
        return self.loss_weight * reduce_loss(diff.abs(), self.reduction)


class _MultiScaleLoss(nn.Module):
    """Sum over the levels of a binomial pyramid of a per-element loss between tonemapped images.

    Pyramid, Laplacian and FFT are linear, so every level's loss depends only on the difference of the tonemapped
    images: one pyramid of d = T(pred) - T(target) replaces a pyramid of each. Subclasses implement
    :meth:`level_loss`, which returns the per-element loss map of one level of d; ``reduction`` reduces each level's
    map (mean or sum) before the levels are added. 'none' is not offered because the levels' maps differ in size.
    ``kernels`` names further constant filters (buffer name -> 1-D taps of a separable kernel) a subclass uses.
    """

    kernels: dict = {}

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean', mu: float = MU, num_scales: int = 3) -> None:
        super().__init__()
        name = type(self).__name__
        _check_common(loss_weight, mu, reduction, ('mean', 'sum'), name)
        if not isinstance(num_scales, int) or num_scales < 1:
            raise ValueError(f'{name}: num_scales must be a positive integer, got {num_scales!r}.')
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.mu = mu
        self.num_scales = num_scales
        # Not persistent: constants, so they stay out of any state_dict.
        self.register_buffer('pyramid_kernel', _outer_kernel(BINOMIAL_TAPS), persistent=False)
        for buffer, taps in self.kernels.items():
            self.register_buffer(buffer, _outer_kernel(taps), persistent=False)

    def level_loss(self, diff: torch.Tensor) -> torch.Tensor:
        """Per-element loss map of one level ``diff`` (B, C, h, w) of the pyramid of T(pred) - T(target)."""
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: (B, C, H, W) linear HDR, non-negative, H and W >= 2 ** (num_scales - 1) + 1 -> scalar."""
        _check_pair(pred, target, type(self).__name__)
        diff = mu_law(_working_precision(pred), self.mu) - mu_law(_working_precision(target), self.mu)
        levels = binomial_pyramid(diff, self.num_scales, self.pyramid_kernel)
        total = sum(reduce_loss(self.level_loss(level), self.reduction) for level in levels)
        return self.loss_weight * total


class _MultiScaleCharbonnierBase(_MultiScaleLoss):
    """A pyramid loss whose level loss is a Charbonnier penalty with smoothing ``eps`` (validated here)."""

    def __init__(
        self, loss_weight: float = 1.0, reduction: str = 'mean', mu: float = MU, num_scales: int = 3, eps: float = 1e-3
    ) -> None:
        super().__init__(loss_weight, reduction, mu, num_scales)
        self.eps = _check_eps(eps, type(self).__name__)


@LOSS_REGISTRY.register()
class MultiScaleCharbonnierLoss(_MultiScaleCharbonnierBase):
    """Charbonnier loss sqrt((x - y)^2 + eps^2) at scales 1, 1/2, 1/4 (L_msc).

    Identical inputs give the minimum, eps per element (eps * num_scales with reduction 'mean'), not zero.

    Args:
        loss_weight (float): Factor on the loss. Default: 1.0.
        reduction (str): 'mean' | 'sum', applied per scale before the scales are added. Default: 'mean'.
        mu (float): Mu-law compression. Default: 5000.
        num_scales (int): Pyramid levels. Default: 3.
        eps (float): Charbonnier smoothing. Default: 1e-3.
    """

    def level_loss(self, diff: torch.Tensor) -> torch.Tensor:
        return _charbonnier(diff, self.eps)


@LOSS_REGISTRY.register()
class MultiScaleEdgeLoss(_MultiScaleCharbonnierBase):
    """Charbonnier loss between Laplacians x - G(U(G(x))) at scales 1, 1/2, 1/4 (L_msed).

    G is the depthwise 5x5 kernel g^T g with g = [0.05, 0.25, 0.4, 0.25, 0.05] under replicate padding (see
    :func:`laplacian`). Identical inputs give the minimum, eps per element.

    Args:
        loss_weight (float): Factor on the loss; the paper's objective uses 0.05. Default: 1.0.
        reduction (str): 'mean' | 'sum', applied per scale before the scales are added. Default: 'mean'.
        mu (float): Mu-law compression. Default: 5000.
        num_scales (int): Pyramid levels. Default: 3.
        eps (float): Charbonnier smoothing. Default: 1e-3.
    """

    kernels = {'edge_kernel': EDGE_TAPS}

    def level_loss(self, diff: torch.Tensor) -> torch.Tensor:
        # The Laplacian is linear (replicate padding included): Lap(x) - Lap(y) = Lap(x - y).
        return _charbonnier(laplacian(diff, self.edge_kernel), self.eps)


@LOSS_REGISTRY.register()
class MultiScaleFrequencyLoss(_MultiScaleLoss):
    """Mean modulus |FFT2(x) - FFT2(y)| of the full, unnormalised 2-D FFT at scales 1, 1/2, 1/4 (L_msfr).

    The spectrum is unnormalised (``norm='backward'``, as DeepRFT), so the loss grows with the image area; the
    paper's objective weighs it by 0.01.

    Args:
        loss_weight (float): Factor on the loss; the paper's objective uses 0.01. Default: 1.0.
        reduction (str): 'mean' | 'sum' over the frequency bins, applied per scale before the scales are added.
            Default: 'mean'.
        mu (float): Mu-law compression. Default: 5000.
        num_scales (int): Pyramid levels. Default: 3.
    """

    def level_loss(self, diff: torch.Tensor) -> torch.Tensor:
        # The FFT is linear, so one transform of the difference equals the difference of the transforms.
        return torch.fft.fft2(diff, norm='backward').abs()
