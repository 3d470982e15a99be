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


@pytest.mark.parametrize('size', [(8, 8), (9, 7), (6, 11), (1, 5)])
def test_rfft_block_matches_numpy_reference(size):
    block = RFFTBlock(4)
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    block = block.double()
    out = block(x)
    assert out.shape == x.shape
    expected = x.numpy() + block.spatial(x).detach().numpy() + _numpy_frequency_branch(x.numpy(), block)
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-10)


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
