"""Depthwise over-parameterized convolution (DO-Conv, Cao et al. 2020) and its folding into a plain convolution.

For an M x N kernel (MN = M * N) a DO-Conv layer trains two factors: a conventional kernel ``W`` of shape
(C_out, C_in, D_mul) and a depthwise kernel ``D`` of shape (C_in, MN, D_mul). They compose into one ordinary kernel

    K[o, i, m] = sum_s (D + D_diag)[i, m, s] * W[o, i, s],   reshaped to (C_out, C_in, M, N),

where ``D_diag`` is a constant identity. ``D`` starts at zero, so a fresh DO-Conv computes exactly the plain
convolution with kernel ``W``. The extra factor only changes the optimisation; at inference the layer folds into an
``nn.Conv2d`` with kernel ``K`` at no cost (:meth:`DOConv2d.fold`, :func:`fold_doconv`).
"""

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['DOConv2d', 'fold_doconv']

_IntPair = Union[int, tuple]


def _pair(value: _IntPair) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class DOConv2d(nn.Module):
    """A 2-D convolution over-parameterized by a depthwise factor (groups = 1).

    Args:
        in_channels (int): Input channels C_in.
        out_channels (int): Output channels C_out.
        kernel_size (int | tuple): Kernel size M x N.
        stride (int | tuple): Stride. Default: 1.
        padding (int | tuple): Zero padding. Default: 0.
        bias (bool): Learn an additive bias. Default: True.
        D_mul (int, optional): Depth multiplier; must be >= M * N. Default: M * N.

    Attributes:
        W (Parameter): (C_out, C_in, D_mul) conventional factor, initialised like ``nn.Conv2d.weight``.
        D (Parameter): (C_in, M * N, D_mul) depthwise factor, zero-initialised; absent for 1 x 1 kernels.
        D_diag (buffer): (C_in, M * N, D_mul) identity per input channel (zero-padded when D_mul % MN != 0).
    """

    # Suffixes of the trained factors and the constant identity in a state dict (``<name>.W``, ``.D``, ``.D_diag``).
    FACTOR_SUFFIXES = ('.W', '.D', '.D_diag')

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntPair,
        stride: _IntPair = 1,
        padding: _IntPair = 0,
        bias: bool = True,
        D_mul: Optional[int] = None,
    ) -> None:  # noqa: N803 (the DO-Conv paper's name)
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        mn = self.kernel_size[0] * self.kernel_size[1]
        self.D_mul = mn if D_mul is None or mn == 1 else D_mul
        if self.D_mul < mn:
            raise ValueError(f'DOConv2d: D_mul must be >= kernel height * width = {mn}, got {D_mul}.')

        self.W = nn.Parameter(torch.empty(out_channels, in_channels, self.D_mul))
        if mn > 1:
            self.D = nn.Parameter(torch.zeros(in_channels, mn, self.D_mul))
            identity = torch.eye(mn).repeat(1, self.D_mul // mn)
            identity = F.pad(identity, (0, self.D_mul % mn))
            self.register_buffer('D_diag', identity.expand(in_channels, mn, self.D_mul).clone())
        else:
            self.register_parameter('D', None)
            self.register_buffer('D_diag', None)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv2d's initialisation: W's fan-in, C_in * D_mul, equals the conv kernel's C_in * M * N.
        nn.init.kaiming_uniform_(self.W, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_channels * self.D_mul)
            nn.init.uniform_(self.bias, -bound, bound)
        if self.D is not None:
            nn.init.zeros_(self.D)

    def composite_weight(self) -> torch.Tensor:
        """The equivalent plain kernel K: (C_out, C_in, M, N)."""
        if self.D is None:
            weight = self.W
        else:
            weight = torch.einsum('ims,ois->oim', self.D + self.D_diag, self.W)
        return weight.reshape(self.out_channels, self.in_channels, *self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W')."""
        return F.conv2d(x, self.composite_weight(), self.bias, self.stride, self.padding)

    @torch.no_grad()
    def fold(self) -> nn.Conv2d:
        """Return an ``nn.Conv2d`` that computes the same function (on the same device and dtype)."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            bias=self.bias is not None,
            device=self.W.device,
            dtype=self.W.dtype,
        )
        conv.weight.copy_(self.composite_weight())
        if self.bias is not None:
            conv.bias.copy_(self.bias)
        return conv

    def extra_repr(self) -> str:
        return (
            f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, '
            f'padding={self.padding}, bias={self.bias is not None}, D_mul={self.D_mul}'
        )


def fold_doconv(model: nn.Module) -> nn.Module:
    """Replace every :class:`DOConv2d` inside ``model`` (or ``model`` itself) by its folded ``nn.Conv2d``.

    Works in place and returns the model, so ``net = fold_doconv(net)`` also covers a bare DOConv2d. The folded
    network has the parameter names of the plain network (``weight``/``bias``), e.g. of ``LFFNet(doconv='none')``.
    """
    if isinstance(model, DOConv2d):
        return model.fold()
    for name, child in model.named_children():
        if isinstance(child, DOConv2d):
            setattr(model, name, child.fold())
        else:
            fold_doconv(child)
    return model
