"""Kalantari-protocol metrics: PSNR against hand-computed values, SSIM against scikit-image and a closed form,
clipping, tensor versions, option checks, registry."""

import math

import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY
from skimage.metrics import structural_similarity

from lffnet_arch.metrics import (
    calculate_psnr_l,
    calculate_psnr_l_pt,
    calculate_psnr_mu,
    calculate_psnr_mu_pt,
    calculate_ssim_l,
    calculate_ssim_l_pt,
    calculate_ssim_mu,
    calculate_ssim_mu_pt,
)

NUMPY_METRICS = [calculate_psnr_mu, calculate_psnr_l, calculate_ssim_mu, calculate_ssim_l]
TENSOR_METRICS = [calculate_psnr_mu_pt, calculate_psnr_l_pt, calculate_ssim_mu_pt, calculate_ssim_l_pt]


def np_mu_law(x, mu=5000.0):
    return np.log(1 + mu * x) / np.log(1 + mu)


def skimage_ssim(x, y):
    return structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=2
    )


def _pair(shape=(64, 64, 3), seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape)
    pred = np.clip(gt + 0.1 * rng.standard_normal(shape), 0, 1)
    return pred, gt


def _to_tensor(*arrays):
    return torch.from_numpy(np.stack([a.transpose(2, 0, 1) for a in arrays]))


def test_psnr_l_of_a_constant_offset():
    gt = np.full((16, 16, 3), 0.25)
    pred = gt + 0.1  # mse = 0.01 -> 20 dB
    assert calculate_psnr_l(pred, gt) == pytest.approx(10 * math.log10(1 / 0.1**2), abs=1e-9)
    assert calculate_psnr_l(pred, gt) == pytest.approx(20.0, abs=1e-9)


def test_psnr_mu_of_known_values():
    # T(0) = 0 and T(1) = 1, so an all-black GT against an all-white prediction is 0 dB.
    assert calculate_psnr_mu(np.ones((8, 8, 3)), np.zeros((8, 8, 3))) == pytest.approx(0.0, abs=1e-12)
    # Constant 0.01 against 0.02: mse = (T(0.02) - T(0.01))^2.
    diff = np.log(1 + 5000 * 0.02) / np.log(5001) - np.log(1 + 5000 * 0.01) / np.log(5001)
    expected = -20 * math.log10(diff)
    assert calculate_psnr_mu(np.full((8, 8, 3), 0.02), np.full((8, 8, 3), 0.01)) == pytest.approx(expected, abs=1e-9)


def test_psnr_mu_matches_hand_computation_and_mu_argument():
    pred, gt = _pair(seed=1)
    for mu in (5000.0, 100.0):
        mse = np.mean((np_mu_law(pred, mu) - np_mu_law(gt, mu)) ** 2)
        assert calculate_psnr_mu(pred, gt, mu=mu) == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)
    assert calculate_psnr_mu(pred, gt, mu=100.0) != pytest.approx(calculate_psnr_mu(pred, gt), abs=1e-3)


def test_values_outside_unit_range_are_clipped():
    pred, gt = _pair(seed=2)
    gt[:4] = 1.0
    gt[4:8] = 0.0
    over = pred.copy()
    over[:4] = 3.0  # clipped to 1 = GT there
    over[4:8] = -0.5  # clipped to 0 = GT there
    exact = pred.copy()
    exact[:4], exact[4:8] = 1.0, 0.0
    for metric in NUMPY_METRICS:
        assert metric(over, gt) == pytest.approx(metric(exact, gt), abs=1e-12)
    # A GT above 1 is clipped as well: a prediction of 1 matches it exactly.
    assert calculate_psnr_l(np.ones((8, 8, 3)), np.full((8, 8, 3), 4.0)) == float('inf')


@pytest.mark.parametrize('metric', [calculate_psnr_mu, calculate_psnr_l])
def test_identical_images_give_inf_psnr(metric):
    pred, _ = _pair(seed=3)
    assert metric(pred, pred.copy()) == float('inf')


@pytest.mark.parametrize('shape', [(64, 64, 3), (37, 23, 3), (11, 11, 3)])
def test_ssim_matches_skimage(shape):
    pred, gt = _pair(shape, seed=shape[0])
    # Both in float64, so the two implementations agree to round-off.
    assert calculate_ssim_l(pred, gt) == pytest.approx(skimage_ssim(pred, gt), abs=1e-10)
    assert calculate_ssim_mu(pred, gt) == pytest.approx(skimage_ssim(np_mu_law(pred), np_mu_law(gt)), abs=1e-10)


def test_ssim_of_float32_inputs_is_computed_in_float64():
    pred, gt = _pair(seed=4)
    pred32, gt32 = pred.astype(np.float32), gt.astype(np.float32)
    reference = skimage_ssim(pred32.astype(np.float64), gt32.astype(np.float64))
    assert calculate_ssim_l(pred32, gt32) == pytest.approx(reference, abs=1e-10)


def test_ssim_of_constant_images_has_closed_form():
    # No variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 1)^2, for every window and channel.
    a, b, c1 = 0.3, 0.5, 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert calculate_ssim_l(np.full((16, 20, 3), a), np.full((16, 20, 3), b)) == pytest.approx(expected, abs=1e-12)
    pred, _ = _pair(seed=5)
    assert calculate_ssim_mu(pred, pred.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_averages_channels():
    pred, gt = _pair(seed=6)
    per_channel = [skimage_ssim(pred[..., c : c + 1], gt[..., c : c + 1]) for c in range(3)]
    assert calculate_ssim_l(pred, gt) == pytest.approx(np.mean(per_channel), abs=1e-10)


def test_tensor_versions_match_numpy_per_sample():
    (p1, g1), (p2, g2) = _pair((24, 19, 3), seed=7), _pair((24, 19, 3), seed=8)
    pred, gt = _to_tensor(p1, p2), _to_tensor(g1, g2)
    for tensor_metric, numpy_metric in zip(TENSOR_METRICS, NUMPY_METRICS):
        out = tensor_metric(pred.float(), gt.float())
        assert out.shape == (2,)
        expected = [
            numpy_metric(p1.astype(np.float32), g1.astype(np.float32)),
            numpy_metric(p2.astype(np.float32), g2.astype(np.float32)),
        ]
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)
    assert torch.isinf(calculate_psnr_mu_pt(pred, pred.clone())).all()


@pytest.mark.parametrize('metric', NUMPY_METRICS)
def test_bad_options_and_inputs_raise(metric):
    pred, gt = _pair((16, 16, 3), seed=9)
    with pytest.raises(ValueError, match='crop_border'):
        metric(pred, gt, crop_border=4)
    with pytest.raises(ValueError, match='input_order'):
        metric(pred, gt, input_order='CHW')
    with pytest.raises(ValueError, match='test_y_channel'):
        metric(pred, gt, test_y_channel=True)
    with pytest.raises(ValueError, match='float numpy array'):
        metric((pred * 255).astype(np.uint8), gt)
    with pytest.raises(ValueError, match='same shape'):
        metric(pred, gt[:15])
    # BasicSR's defaults are accepted.
    assert np.isfinite(metric(pred, gt, crop_border=0, input_order='HWC', test_y_channel=False))


@pytest.mark.parametrize('metric', [calculate_ssim_l, calculate_ssim_mu])
def test_ssim_rejects_images_smaller_than_the_window(metric):
    with pytest.raises(ValueError, match='at least 11x11'):
        metric(np.zeros((10, 32, 3)), np.zeros((10, 32, 3)))


def test_tensor_versions_reject_bad_inputs():
    with pytest.raises(ValueError, match='same shape'):
        calculate_psnr_l_pt(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match='crop_border'):
        calculate_ssim_l_pt(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), crop_border=2)


@pytest.mark.parametrize('metric', NUMPY_METRICS + TENSOR_METRICS)
def test_registered_in_basicsr(metric):
    assert METRIC_REGISTRY.get(metric.__name__) is metric


def test_calculate_metric_dispatches_from_options():
    pred, gt = _pair(seed=10)
    value = calculate_metric({'img': pred, 'img2': gt}, {'type': 'calculate_psnr_mu', 'crop_border': 0})
    assert value == pytest.approx(calculate_psnr_mu(pred, gt), abs=1e-12)
    value = calculate_metric({'img': pred, 'img2': gt}, {'type': 'calculate_ssim_l'})
    assert value == pytest.approx(skimage_ssim(pred, gt), abs=1e-10)
