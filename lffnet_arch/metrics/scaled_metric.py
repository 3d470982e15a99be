"""Metrics for radiance of unknown absolute scale (real stacks, handheld captures): one global scale fitted first.

A radiance map recovered from a real stack (Debevec and Malik's Memorial Church) or a prediction from frames of an
unknown camera response is right only up to a global factor. Before the Kalantari metrics, both images are brought
to a common scale:

1. the GT is divided by its 99th percentile (over all values), so that percentile is 1;
2. the prediction is multiplied by s = exp(median(log GT - log P)), the median over the values with
   1e-3 < GT < 1 and P > 1e-6 (well-exposed, positive values: clipped and black ones say nothing about the scale);
3. both are clipped to [0, 1] and scored with mu-law PSNR / SSIM (mu = 5000) as in :mod:`hdr_metric`.
"""

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from lffnet_arch.metrics.hdr_metric import calculate_psnr_mu, calculate_ssim_mu

__all__ = ['calculate_psnr_mu_scaled', 'calculate_ssim_mu_scaled', 'match_scale']

GT_PERCENTILE = 99.0
GT_RANGE = (1e-3, 1.0)
PRED_FLOOR = 1e-6


def match_scale(img: np.ndarray, img2: np.ndarray) -> tuple:
    """(prediction, GT) brought to the common scale of the module docstring (not yet clipped).

    Args:
        img: Prediction, linear HDR (H, W, C) float.
        img2: Ground truth, linear HDR (H, W, C) float, any positive scale.

    Raises:
        ValueError: Non-finite values, a GT without positive values, or no value inside the fitting range.
    """
    pred, gt = np.asarray(img, np.float64), np.asarray(img2, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f'match_scale: prediction {pred.shape} and GT {gt.shape} differ in shape.')
    if not (np.isfinite(pred).all() and np.isfinite(gt).all()):
        raise ValueError('match_scale: the prediction or the GT holds NaN or Inf.')
    level = float(np.percentile(gt, GT_PERCENTILE))
    if not level > 0:
        raise ValueError(f"match_scale: the GT's {GT_PERCENTILE:g}th percentile is {level}; expected > 0.")
    gt = gt / level
    usable = (gt > GT_RANGE[0]) & (gt < GT_RANGE[1]) & (pred > PRED_FLOOR)
    if not usable.any():
        raise ValueError(
            f'match_scale: no value has {GT_RANGE[0]} < GT < {GT_RANGE[1]} and prediction > {PRED_FLOOR}; '
            'the scale cannot be fitted.'
        )
    scale = float(np.exp(np.median(np.log(gt[usable]) - np.log(pred[usable]))))
    return pred * scale, gt


@METRIC_REGISTRY.register()
def calculate_psnr_mu_scaled(img: np.ndarray, img2: np.ndarray, **kwargs) -> float:
    """Mu-law PSNR (dB) after :func:`match_scale`; ``img`` the prediction, ``img2`` the GT, (H, W, C) float."""
    pred, gt = match_scale(img, img2)
    return calculate_psnr_mu(pred.astype(np.float32), gt.astype(np.float32), **kwargs)


@METRIC_REGISTRY.register()
def calculate_ssim_mu_scaled(img: np.ndarray, img2: np.ndarray, **kwargs) -> float:
    """Mu-law SSIM after :func:`match_scale`; ``img`` the prediction, ``img2`` the GT, (H, W, C) float."""
    pred, gt = match_scale(img, img2)
    return calculate_ssim_mu(pred.astype(np.float32), gt.astype(np.float32), **kwargs)
