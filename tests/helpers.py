"""Helpers shared by several test modules: a tiny network with LFFNet's interface and DO-Conv weights that matter."""

from pathlib import Path

import torch
from torch import nn

from lffnet_arch.archs import DOConv2d

ROOT = Path(__file__).resolve().parents[1]


class PixelwiseNet(nn.Module):
    """A per-pixel network with LFFNet's interface (1x1 conv over all frames): tiling reproduces its whole-image
    output exactly, and it exports to ONNX quickly.

    ``lq``: (B, T, 6, H, W) -> (B, 3, H, W) in (0, 1).
    """

    num_in_ch = 6

    def __init__(self, num_exposure: int = 3) -> None:
        super().__init__()
        self.num_exposure = num_exposure
        self.conv = nn.Conv2d(self.num_in_ch * num_exposure, 3, 1)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = lq.shape
        return torch.sigmoid(self.conv(lq.reshape(b, t * c, h, w)))


def randomise_doconv(net: nn.Module, std: float = 0.1) -> int:
    """Give every DO-Conv a non-zero D (a fresh one is zero and folds trivially); returns how many were changed."""
    layers = [m for m in net.modules() if isinstance(m, DOConv2d) and m.D is not None]
    with torch.no_grad():
        for layer in layers:
            layer.D.normal_(std=std)
    return len(layers)


def with_varied_output(net: nn.Module, gain: float) -> nn.Module:
    """Multiply the last conv's kernel by ``gain`` so the random network's output varies across the image.

    A freshly initialised LFFNet gives an almost constant output (std about 0.02), against which a tiled result with
    visible seams still looks close; with ``gain`` 10 its output std is about 0.14-0.22. The DO-Conv kernel is
    (D + D_diag) W with D = 0 at init, so scaling W scales the kernel. Imported by test_inference.py.
    """
    conv = net.conv_last
    with torch.no_grad():
        (conv.W if hasattr(conv, 'W') else conv.weight).mul_(gain)
    return net
