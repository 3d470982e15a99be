"""DO-Conv: composite kernel against the paper's two-stage formulation, folding, initial state."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lffnet_arch.archs import DOConv2d, fold_doconv


def _randomise_d(layer: DOConv2d) -> None:
    with torch.no_grad():
        layer.D.normal_(std=0.2)


def _two_stage_doconv(x, layer: DOConv2d):
    """The DO-Conv paper's feature composition, written independently of DOConv2d.composite_weight.

    First a depthwise step: every input channel's M x N patch is mapped by (D + D_diag)^T to D_mul features; then a
    conventional step contracts channels and depth with W like a 1x1 convolution.
    """
    m, n = layer.kernel_size
    b, c_in, h, w = x.shape
    patches = F.unfold(x, (m, n), padding=layer.padding, stride=layer.stride)  # (B, C_in * MN, L)
    patches = patches.reshape(b, c_in, m * n, -1)
    depthwise = layer.D + layer.D_diag  # (C_in, MN, D_mul)
    transformed = torch.stack([depthwise[i].t() @ patches[:, i] for i in range(c_in)], dim=1)  # (B, C_in, D_mul, L)
    out = torch.stack(
        [(layer.W[o][None, :, :, None] * transformed).sum(dim=(1, 2)) for o in range(layer.out_channels)], dim=1
    )  # (B, C_out, L)
    out = out + layer.bias[None, :, None]
    out_h = (h + 2 * layer.padding[0] - m) // layer.stride[0] + 1
    out_w = (w + 2 * layer.padding[1] - n) // layer.stride[1] + 1
    return out.reshape(b, layer.out_channels, out_h, out_w)


@pytest.mark.parametrize(
    'kernel_size,stride,padding,d_mul', [(3, 1, 1, None), (3, 2, 0, None), ((3, 5), 1, 1, 20), (3, 1, 1, 12)]
)
def test_doconv_matches_two_stage_formulation(kernel_size, stride, padding, d_mul):
    layer = DOConv2d(4, 5, kernel_size, stride=stride, padding=padding, D_mul=d_mul)
    _randomise_d(layer)
    x = torch.randn(2, 4, 9, 11)
    torch.testing.assert_close(layer(x), _two_stage_doconv(x, layer), atol=1e-5, rtol=1e-5)


def test_doconv_shapes_and_initial_state():
    layer = DOConv2d(6, 8, 3, padding=1)
    assert layer.W.shape == (8, 6, 9)
    assert layer.D.shape == (6, 9, 9) and torch.count_nonzero(layer.D) == 0
    assert 'D_diag' in dict(layer.named_buffers()) and 'D_diag' not in dict(layer.named_parameters())
    torch.testing.assert_close(layer.D_diag[3], torch.eye(9))
    # With D = 0 the layer is the plain convolution with kernel W.
    x = torch.randn(1, 6, 7, 7)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.W.reshape(8, 6, 3, 3), layer.bias, padding=1))
    # Trainable parameters: W, D, bias = conv count + 81 * C_in for a 3x3 layer.
    assert sum(p.numel() for p in layer.parameters()) == 8 * 6 * 9 + 8 + 81 * 6


def test_doconv_tiled_identity_when_d_mul_exceeds_mn():
    layer = DOConv2d(2, 3, 3, D_mul=20)
    expected = torch.cat([torch.eye(9), torch.eye(9), torch.zeros(9, 2)], dim=1)
    torch.testing.assert_close(layer.D_diag[1], expected)


def test_doconv_1x1_has_no_depthwise_factor():
    layer = DOConv2d(4, 3, 1)
    assert layer.D is None and layer.D_diag is None
    assert sum(p.numel() for p in layer.parameters()) == 4 * 3 + 3
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.W.reshape(3, 4, 1, 1), layer.bias))


def test_doconv_rejects_small_depth_multiplier():
    with pytest.raises(ValueError, match='D_mul'):
        DOConv2d(2, 2, 3, D_mul=4)


@pytest.mark.parametrize('bias', [True, False])
def test_fold_equals_unfolded(bias):
    layer = DOConv2d(5, 7, 3, padding=1, bias=bias)
    _randomise_d(layer)
    folded = layer.fold()
    assert type(folded) is nn.Conv2d and (folded.bias is not None) == bias
    x = torch.randn(2, 5, 12, 13)
    torch.testing.assert_close(folded(x), layer(x), atol=1e-5, rtol=0)


def test_fold_doconv_replaces_nested_layers():
    model = nn.Sequential(DOConv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Sequential(DOConv2d(4, 2, 3, padding=1)))
    for module in model.modules():
        if isinstance(module, DOConv2d):
            _randomise_d(module)
    x = torch.randn(1, 3, 10, 10)
    expected = model(x)
    assert fold_doconv(model) is model
    assert not any(isinstance(m, DOConv2d) for m in model.modules())
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=0)
    assert isinstance(fold_doconv(DOConv2d(2, 2, 3)), nn.Conv2d)
