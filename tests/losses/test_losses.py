"""HDR losses: each against an independent numpy reference (explicit shifted sums, numpy.fft), reductions, weights,
gradients, odd and minimal sizes, registry and build_loss."""

import numpy as np
import pytest
import torch
from basicsr.losses import build_loss
from basicsr.utils.registry import LOSS_REGISTRY

from lffnet_arch.losses import MuLawL1Loss, MultiScaleCharbonnierLoss, MultiScaleEdgeLoss, MultiScaleFrequencyLoss

LOSS_NAMES = ['MuLawL1Loss', 'MultiScaleCharbonnierLoss', 'MultiScaleEdgeLoss', 'MultiScaleFrequencyLoss']
MULTI_SCALE = [MultiScaleCharbonnierLoss, MultiScaleEdgeLoss, MultiScaleFrequencyLoss]


def rtol_for(kind):
    # The edge kernel's taps (0.05, 0.4, ...) are stored in float32, so float64 inputs meet the float64 numpy
    # reference to float32 round-off; the binomial taps (k / 16) are exact.
    return 1e-7 if kind is MultiScaleEdgeLoss else 1e-10


# ---- numpy reference, written independently of the torch code (loops over kernel taps, np.pad) ----
def np_mu_law(x, mu=5000.0):
    return np.log(1 + mu * x) / np.log(1 + mu)


def np_filter(img, taps, pad_mode):
    """Depthwise 5x5 'same' filter of (B, C, H, W) by an explicit sum over the 25 shifted copies."""
    kernel = np.outer(taps, taps)
    padded = np.pad(img, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=pad_mode)
    h, w = img.shape[-2:]
    out = np.zeros_like(img)
    for i in range(5):
        for j in range(5):
            out += kernel[i, j] * padded[..., i : i + h, j : j + w]
    return out


def np_pyramid(img, num_scales):
    levels = [img]
    for _ in range(num_scales - 1):
        levels.append(np_filter(levels[-1], np.array([1, 4, 6, 4, 1]) / 16, 'reflect')[..., ::2, ::2])
    return levels


def np_laplacian(img):
    taps = np.array([0.05, 0.25, 0.4, 0.25, 0.05])
    blurred = np_filter(img, taps, 'edge')
    up = np.zeros_like(blurred)
    h, w = img.shape[-2:]
    for r in range(0, h, 2):
        for c in range(0, w, 2):
            up[..., r, c] = 4 * blurred[..., r, c]
    return img - np_filter(up, taps, 'edge')


def np_charbonnier(x, y, eps=1e-3):
    return np.sqrt((x - y) ** 2 + eps**2)


def np_level_maps(kind, x, y):
    if kind is MultiScaleCharbonnierLoss:
        return np_charbonnier(x, y)
    if kind is MultiScaleEdgeLoss:
        return np_charbonnier(np_laplacian(x), np_laplacian(y))
    return np.abs(np.fft.fft2(x, axes=(-2, -1)) - np.fft.fft2(y, axes=(-2, -1)))


def np_multiscale(kind, pred, target, num_scales=3, reduction='mean', mu=5000.0):
    px, py = np_pyramid(np_mu_law(pred, mu), num_scales), np_pyramid(np_mu_law(target, mu), num_scales)
    reduce = np.mean if reduction == 'mean' else np.sum
    return sum(reduce(np_level_maps(kind, x, y)) for x, y in zip(px, py))


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    pred = rng.random(shape)
    target = np.clip(pred + 0.2 * rng.standard_normal(shape), 0, 1.5)
    return pred, target


def _t(arr, requires_grad=False):
    return torch.tensor(arr, dtype=torch.float64, requires_grad=requires_grad)


# ---- tests ----
@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
def test_mu_law_l1_matches_numpy(reduction):
    pred, target = _pair((2, 3, 9, 7))
    expected_map = np.abs(np_mu_law(pred) - np_mu_law(target))
    expected = {'none': expected_map, 'mean': expected_map.mean(), 'sum': expected_map.sum()}[reduction]
    out = MuLawL1Loss(loss_weight=0.5, reduction=reduction)(_t(pred), _t(target))
    np.testing.assert_allclose(out.numpy(), 0.5 * expected, rtol=1e-12)


@pytest.mark.parametrize('kind', MULTI_SCALE)
@pytest.mark.parametrize('size', [(16, 16), (17, 13), (5, 5), (32, 21)])
def test_multiscale_losses_match_numpy(kind, size):
    pred, target = _pair((2, 3, *size), seed=sum(size))
    out = kind()(_t(pred), _t(target))
    np.testing.assert_allclose(out.item(), np_multiscale(kind, pred, target), rtol=rtol_for(kind))


@pytest.mark.parametrize('kind', MULTI_SCALE)
def test_multiscale_sum_reduction_scales_and_mu_match_numpy(kind):
    pred, target = _pair((1, 3, 19, 24), seed=3)
    out = kind(reduction='sum', num_scales=2, mu=100.0, loss_weight=0.25)(_t(pred), _t(target))
    expected = 0.25 * np_multiscale(kind, pred, target, num_scales=2, reduction='sum', mu=100.0)
    np.testing.assert_allclose(out.item(), expected, rtol=rtol_for(kind))


def test_single_scale_is_the_plain_loss():
    pred, target = _pair((1, 3, 8, 8), seed=4)
    tx, ty = np_mu_law(pred), np_mu_law(target)
    out = MultiScaleCharbonnierLoss(num_scales=1)(_t(pred), _t(target))
    np.testing.assert_allclose(out.item(), np_charbonnier(tx, ty).mean(), rtol=1e-12)


def test_pyramid_halves_sizes_with_ceil():
    """Three scales of a 17x13 image are 17x13, 9x7 and 5x4: every level contributes, odd sizes included."""
    pred, target = _pair((1, 3, 17, 13), seed=5)
    full = MultiScaleFrequencyLoss(num_scales=3)(_t(pred), _t(target)).item()
    two = MultiScaleFrequencyLoss(num_scales=2)(_t(pred), _t(target)).item()
    coarsest = np_pyramid(np_mu_law(pred), 3)[-1]
    assert coarsest.shape[-2:] == (5, 4)
    np.testing.assert_allclose(
        full - two,
        np_level_maps(MultiScaleFrequencyLoss, coarsest, np_pyramid(np_mu_law(target), 3)[-1]).mean(),
        rtol=1e-9,
    )


@pytest.mark.parametrize('name', LOSS_NAMES)
def test_loss_weight_scales_linearly(name):
    pred, target = _pair((2, 3, 16, 16), seed=6)
    base = LOSS_REGISTRY.get(name)()(_t(pred), _t(target))
    weighted = LOSS_REGISTRY.get(name)(loss_weight=0.05)(_t(pred), _t(target))
    assert base.item() > 0
    np.testing.assert_allclose(weighted.item(), 0.05 * base.item(), rtol=1e-12)


@pytest.mark.parametrize('name', LOSS_NAMES)
def test_gradients_flow_and_are_finite(name):
    pred, target = _pair((2, 3, 16, 16), seed=7)
    pred_t = torch.tensor(pred, dtype=torch.float32, requires_grad=True)
    loss = LOSS_REGISTRY.get(name)()(pred_t, torch.tensor(target, dtype=torch.float32))
    loss.backward()
    assert torch.isfinite(pred_t.grad).all()
    assert pred_t.grad.abs().sum() > 0


@pytest.mark.parametrize('name', LOSS_NAMES)
def test_identical_inputs_give_the_minimum_with_finite_gradients(name):
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    loss_fn = LOSS_REGISTRY.get(name)()
    loss = loss_fn(x, x.detach().clone())
    loss.backward()
    # Charbonnier terms bottom out at eps per element (one eps per scale with mean reduction), the others at 0.
    expected = 3 * loss_fn.eps if hasattr(loss_fn, 'eps') else 0.0
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-9, atol=1e-12)
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().max() < 1e-9


@pytest.mark.parametrize('kind', MULTI_SCALE)
def test_too_small_input_raises_with_minimum(kind):
    with pytest.raises(ValueError, match='at least 5 pixels per side'):
        kind()(torch.rand(1, 3, 4, 16), torch.rand(1, 3, 4, 16))
    # One scale fewer works at that size.
    assert torch.isfinite(kind(num_scales=2)(torch.rand(1, 3, 4, 16), torch.rand(1, 3, 4, 16)))


@pytest.mark.parametrize('name', LOSS_NAMES)
def test_bad_options_and_inputs_raise(name):
    cls = LOSS_REGISTRY.get(name)
    with pytest.raises(ValueError, match='reduction'):
        cls(reduction='max')
    with pytest.raises(ValueError, match='mu must be positive'):
        cls(mu=0)
    with pytest.raises(ValueError, match='same shape'):
        cls()(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 15))
    with pytest.raises(ValueError, match='same shape'):
        cls()(torch.rand(3, 16, 16), torch.rand(3, 16, 16))


@pytest.mark.parametrize('kind', MULTI_SCALE)
def test_multiscale_rejects_none_reduction_and_bad_num_scales(kind):
    with pytest.raises(ValueError, match="'none'"):
        kind(reduction='none')
    with pytest.raises(ValueError, match='num_scales'):
        kind(num_scales=0)


def test_kernels_are_non_persistent_buffers():
    loss = MultiScaleEdgeLoss()
    buffers = dict(loss.named_buffers())
    assert set(buffers) == {'pyramid_kernel', 'edge_kernel'}
    assert loss.state_dict() == {}
    np.testing.assert_allclose(
        buffers['pyramid_kernel'][0, 0].numpy(), np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256
    )
    assert abs(buffers['edge_kernel'].sum().item() - 1) < 1e-6
    loss = loss.double()
    assert loss.pyramid_kernel.dtype == torch.float64


def test_half_precision_inputs_are_computed_in_float32():
    pred, target = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    for name in LOSS_NAMES:
        loss_fn = LOSS_REGISTRY.get(name)()
        half = loss_fn(pred.bfloat16(), target.bfloat16())
        assert half.dtype == torch.float32
        np.testing.assert_allclose(
            half.item(), loss_fn(pred.bfloat16().float(), target.bfloat16().float()).item(), rtol=1e-6
        )


@pytest.mark.parametrize('name', LOSS_NAMES)
def test_registered_and_built_by_basicsr(name):
    cls = LOSS_REGISTRY.get(name)
    assert cls.__name__ == name
    loss = build_loss({'type': name, 'loss_weight': 0.05})
    assert isinstance(loss, cls) and loss.loss_weight == 0.05


def test_build_paper_objective():
    opts = [
        {'type': 'MuLawL1Loss', 'loss_weight': 1.0},
        {'type': 'MultiScaleCharbonnierLoss', 'loss_weight': 1.0},
        {'type': 'MultiScaleEdgeLoss', 'loss_weight': 0.05},
        {'type': 'MultiScaleFrequencyLoss', 'loss_weight': 0.01},
    ]
    pred, target = _pair((1, 3, 16, 16), seed=8)
    total = sum(build_loss(opt)(_t(pred), _t(target)) for opt in opts)
    expected = (
        np.abs(np_mu_law(pred) - np_mu_law(target)).mean()
        + np_multiscale(MultiScaleCharbonnierLoss, pred, target)
        + 0.05 * np_multiscale(MultiScaleEdgeLoss, pred, target)
        + 0.01 * np_multiscale(MultiScaleFrequencyLoss, pred, target)
    )
    np.testing.assert_allclose(total.item(), expected, rtol=rtol_for(MultiScaleEdgeLoss))
