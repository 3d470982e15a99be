"""RFFT block: the frequency branch against a numpy reference, odd and even sizes, DO-Conv variant."""

import numpy as np
import pytest
import torch

from lffnet_arch.archs import DOConv2d, RFFTBlock


def _numpy_frequency_branch(x: np.ndarray, block: RFFTBlock) -> np.ndarray:
    w1 = block.frequency[0].weight.detach().numpy()[:, :, 0, 0]
    w2 = block.frequency[2].weight.detach().numpy()[:, :, 0, 0]
    spectrum = np.fft.rfft2(x, axes=(-2, -1))
    stacked = np.concatenate([spectrum.real, spectrum.imag], axis=1)  # (B, 2C, H, W//2+1)
    hidden = np.maximum(np.einsum('oc,bchw->bohw', w1, stacked), 0)
    out = np.einsum('oc,bchw->bohw', w2, hidden)
    c = x.shape[1]
    return np.fft.irfft2(out[:, :c] + 1j * out[:, c:], s=x.shape[-2:], axes=(-2, -1))


@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('size', [(8, 8), (9, 7), (6, 11), (1, 5)])
def test_rfft_block_matches_numpy_reference(size, memory_format):
    block = RFFTBlock(4).double().to(memory_format=memory_format)
    x = torch.randn(2, 4, *size, dtype=torch.float64).contiguous(memory_format=memory_format)
    out = block(x)
    assert out.shape == x.shape
    expected = x.numpy() + block.spatial(x).detach().numpy() + _numpy_frequency_branch(x.numpy(), block)
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-10)


def test_rfft_block_gradients_match_the_plain_formulation():
    """The channels-last stacking and in-place residual adds give the gradients of the textbook form."""
    torch.manual_seed(0)
    block = RFFTBlock(4).double()
    x = torch.randn(2, 4, 9, 7, dtype=torch.float64, requires_grad=True)

    def plain(x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft2(x)
        real, imag = block.frequency(torch.cat([spectrum.real, spectrum.imag], dim=1)).chunk(2, dim=1)
        return x + block.spatial(x) + torch.fft.irfft2(torch.complex(real, imag), s=x.shape[-2:])

    weights = torch.randn(2, 4, 9, 7, dtype=torch.float64)
    grads = torch.autograd.grad((block(x) * weights).sum(), [x, *block.parameters()])
    expected = torch.autograd.grad((plain(x) * weights).sum(), [x, *block.parameters()])
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_rfft_block_is_bias_free_and_counts():
    block = RFFTBlock(64)
    assert all(m.bias is None for m in block.modules() if hasattr(m, 'bias') and not isinstance(m, RFFTBlock))
    assert sum(p.numel() for p in block.parameters()) == 106_496


def test_rfft_block_frequency_branch_is_global():
    block = RFFTBlock(4).eval()
    x = torch.randn(1, 4, 16, 16)
    y = x.clone()
    y[..., 0, 0] += 1.0
    with torch.no_grad():
        delta = block(y) - block(x)
    # A single pixel changes outputs far beyond the 5x5 reach of the spatial branch.
    assert delta[..., 8, 8].abs().max() > 1e-4


def test_rfft_block_with_doconv():
    block = RFFTBlock(8, doconv=True)
    assert sum(isinstance(m, DOConv2d) for m in block.modules()) == 2
    assert sum(p.numel() for p in block.parameters()) == sum(p.numel() for p in RFFTBlock(8).parameters()) + 2 * 81 * 8
    out = block(torch.randn(1, 8, 7, 9))
    assert out.shape == (1, 8, 7, 9) and torch.isfinite(out).all()
