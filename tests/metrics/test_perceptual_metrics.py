"""PU21 encoding against the published formula and constants, PU21-PSNR / SSIM by hand and against scikit-image,
ColorVideoVDP (skipped without the metrics extra), option checks, registry."""

import math

import numpy as np
import pytest
from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY
from skimage.metrics import structural_similarity

from lffnet_arch.metrics import perceptual_metric
from lffnet_arch.metrics.perceptual_metric import (
    calculate_cvvdp,
    calculate_pu21_psnr,
    calculate_pu21_ssim,
    metric_unavailable,
    pu21_decode,
    pu21_encode,
)

# Transcribed separately from Mantiuk and Azimi's reference encoder (pu21_encoder.m), p1..p7.
PUBLISHED = {
    'banding': [1.070275272, 0.4088273932, 0.153224308, 0.2520326168, 1.063512885, 1.14115047, 521.4527484],
    'banding_glare': [
        *(0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627),
        *(0.09150303166, 0.9099517204, 596.3148142),
    ],
}
LUMINANCES = [0.005, 0.02, 0.1, 1.0, 10.0, 100.0, 1000.0, 4000.0, 10000.0]


def formula(y: float, variant: str = 'banding_glare') -> float:
    """V = max(p7 ((p1 + p2 Y^p4) / (1 + p3 Y^p4))^p5 - p6), 0), scalar, with math."""
    p = PUBLISHED[variant]
    y = min(max(y, 0.005), 10000.0)
    return max(p[6] * (math.pow((p[0] + p[1] * y ** p[3]) / (1 + p[2] * y ** p[3]), p[4]) - p[5]), 0.0)


@pytest.mark.parametrize('variant', sorted(PUBLISHED))
def test_encoding_matches_the_published_formula(variant):
    got = pu21_encode(np.array(LUMINANCES), variant)
    expected = [formula(y, variant) for y in LUMINANCES]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
    assert np.all(np.diff(got) > 0)  # strictly increasing over the valid range
    np.testing.assert_allclose(pu21_decode(got[1:], variant), LUMINANCES[1:], rtol=1e-6)


def test_encoding_anchors_and_clamping():
    # The reference's documented anchors for banding_glare: 100 cd/m^2 near 256 (SDR white), 10000 near 595.
    assert pu21_encode(np.array(100.0)) == pytest.approx(256.38, abs=0.01)
    assert pu21_encode(np.array(10000.0)) == pytest.approx(595.39, abs=0.01)
    black = pu21_encode(np.array(0.005))
    assert black == pytest.approx(0.0, abs=1e-6)
    # Values outside [0.005, 10000] are clamped; NaN is black.
    np.testing.assert_array_equal(pu21_encode(np.array([0.0, -5.0, np.nan])), black)
    assert pu21_encode(np.array(1e6)) == pu21_encode(np.array(10000.0))


def test_psnr_of_constant_images_by_hand():
    gt = np.full((16, 16, 3), 0.5)  # the GT maximum -> 1000 cd/m^2
    pred = np.full((16, 16, 3), 0.25)  # -> 500 cd/m^2
    expected = 20 * math.log10(256 / (formula(1000.0) - formula(500.0)))
    assert calculate_pu21_psnr(pred, gt) == pytest.approx(expected, abs=1e-9)
    expected_4000 = 20 * math.log10(256 / (formula(4000.0) - formula(2000.0)))
    assert calculate_pu21_psnr(pred, gt, display_peak=4000) == pytest.approx(expected_4000, abs=1e-9)
    banding = 20 * math.log10(256 / (formula(1000.0, 'banding') - formula(500.0, 'banding')))
    assert calculate_pu21_psnr(pred, gt, variant='banding') == pytest.approx(banding, abs=1e-9)
    assert calculate_pu21_psnr(gt, gt) == float('inf')


def _pair(shape=(48, 64, 3), seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape) ** 3  # wide range, max near 1
    pred = np.clip(gt * (1 + 0.2 * rng.standard_normal(shape)), 0, None)
    return pred, gt


def test_relative_units_are_anchored_at_the_gt_maximum():
    pred, gt = _pair()
    psnr, ssim = calculate_pu21_psnr(pred, gt), calculate_pu21_ssim(pred, gt)
    # Scaling both images together does not change the absolute luminances, so neither metric changes ...
    assert calculate_pu21_psnr(pred * 7, gt * 7) == pytest.approx(psnr, abs=1e-9)
    assert calculate_pu21_ssim(pred * 7, gt * 7) == pytest.approx(ssim, abs=1e-9)
    # ... but a darker display changes the encoding's sensitivity, so PSNR does.
    assert abs(calculate_pu21_psnr(pred, gt, display_peak=100) - psnr) > 0.1


def test_psnr_is_on_rgb_and_ssim_on_luminance():
    _, gt = _pair()
    gt = 0.2 + 0.5 * gt
    # A colour change that keeps the BT.709 luminance: PSNR sees it, SSIM (luminance only) does not.
    d = 0.05
    pred = gt + np.array([d, 0.0, -d * 0.212656 / 0.072186])
    pred[..., 2] = np.clip(pred[..., 2], 0, None)
    keep = gt[..., 2] > d * 0.212656 / 0.072186
    pred[~keep] = gt[~keep]
    assert np.isfinite(calculate_pu21_psnr(pred, gt))
    assert calculate_pu21_ssim(pred, gt) == pytest.approx(1.0, abs=1e-9)


def test_ssim_equals_scikit_image_on_encoded_luminance():
    pred, gt = _pair()
    scale = 1000 / gt.max()
    weights = np.array([0.212656, 0.715158, 0.072186])
    px, py = (pu21_encode((a * scale) @ weights) for a in (pred, gt))
    expected = structural_similarity(
        px, py, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=256
    )
    assert calculate_pu21_ssim(pred, gt) == pytest.approx(expected, abs=1e-6)
    assert calculate_pu21_ssim(pred, gt) < 0.99


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'variant': 'peaks'}, 'variant'),
        ({'display_peak': 0}, 'display_peak'),
        ({'display_peak': 20000}, 'display_peak'),
        ({'crop_border': 4}, 'crop_border'),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    pred, gt = _pair()
    for metric in (calculate_pu21_psnr, calculate_pu21_ssim):
        with pytest.raises(ValueError, match=match):
            metric(pred, gt, **kwargs)


def test_bad_images_are_refused():
    pred, gt = _pair()
    with pytest.raises(ValueError, match='same shape'):
        calculate_pu21_psnr(pred[:10], gt)
    with pytest.raises(ValueError, match='float'):
        calculate_pu21_psnr((pred * 255).astype(np.uint8), gt)
    with pytest.raises(ValueError, match='11x11'):
        calculate_pu21_ssim(pred[:8, :8], gt[:8, :8])


def test_registered_and_usable_from_options():
    pred, gt = _pair()
    for name in ('calculate_pu21_psnr', 'calculate_pu21_ssim', 'calculate_cvvdp'):
        assert name in METRIC_REGISTRY
    value = calculate_metric({'img': pred, 'img2': gt}, {'type': 'calculate_pu21_psnr', 'display_peak': 4000})
    assert value == pytest.approx(calculate_pu21_psnr(pred, gt, display_peak=4000))


def test_cvvdp_missing_gives_an_install_message(monkeypatch):
    monkeypatch.setattr(perceptual_metric, 'cvvdp_available', lambda: False)
    reason = metric_unavailable('calculate_cvvdp')
    assert 'pip install' in reason and 'metrics' in reason
    assert metric_unavailable('calculate_pu21_psnr') is None
    pred, gt = _pair()
    with pytest.raises(ImportError, match='metrics'):
        calculate_cvvdp(pred, gt)


def test_cvvdp_in_jod():
    pytest.importorskip('pycvvdp', reason='ColorVideoVDP needs the metrics extra: pip install -e ".[metrics]"')
    rng = np.random.default_rng(1)
    gt = np.clip(np.cumsum(rng.random((64, 96, 3)), axis=1) / 96, 0, None) ** 2.2
    jods = [
        calculate_cvvdp(np.clip(gt * (1 + s * rng.standard_normal(gt.shape)), 0, None), gt, device='cpu')
        for s in (0.0, 0.05, 0.3)
    ]
    assert jods[0] == pytest.approx(10.0, abs=1e-3)  # no difference: 10 JOD
    assert jods[0] > jods[1] > jods[2]
    assert 0 < jods[2] < 10
    with pytest.raises(ValueError, match='device'):
        calculate_cvvdp(gt, gt, device='nonsense')
