"""HDR metrics of the Kalantari protocol: PSNR and SSIM on mu-law tonemapped (``_mu``) and linear (``_l``) images.

Both images are linear HDR, clipped to [0, 1] first; the ``_mu`` metrics then apply the mu-law tonemap T of
:func:`lffnet_arch.hdr_input.mu_law`. PSNR uses data range 1 over the whole image (no border crop); identical
images give ``float('inf')`` as in BasicSR. SSIM is BasicSR's (Wang et al.'s): 11x11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, population (biased) covariance, averaged over the positions where the window fits inside the
image, per channel, then over channels. It is computed by :func:`basicsr.metrics.psnr_ssim.calculate_ssim` (numpy,
on the images scaled by 255, its data range) and :func:`basicsr.metrics.psnr_ssim.calculate_ssim_pt` (batched
tensors on any device, data range 1), both in float64 whatever the input precision. That equals
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=2)``, which the tests use as the reference.

A test set's figure is the mean of the per-image values. The numpy functions follow BasicSR's metric signature
(``img`` the prediction, ``img2`` the ground truth, both (H, W, C) float RGB); the ``_pt`` functions take
(B, C, H, W) tensors and return (B,). BasicSR's ``crop_border``, ``input_order`` and ``test_y_channel`` options are
accepted only at the protocol's values (0, 'HWC', False) and raise ``ValueError`` otherwise, so an options file
copied from a super-resolution setup cannot silently change the protocol.
"""

import math
from typing import Callable, Optional

import numpy as np
import torch
from basicsr.metrics.psnr_ssim import calculate_ssim, calculate_ssim_pt
from basicsr.utils.registry import METRIC_REGISTRY

from lffnet_arch.hdr_input import MU, mu_law

__all__ = [
    'calculate_psnr_l',
    'calculate_psnr_l_pt',
    'calculate_psnr_mu',
    'calculate_psnr_mu_pt',
    'calculate_ssim_l',
    'calculate_ssim_l_pt',
    'calculate_ssim_mu',
    'calculate_ssim_mu_pt',
    'ssim_numpy',
    'ssim_tensor',
]

SSIM_WINDOW = 11


def _check_protocol_options(name: str, crop_border: int, input_order: str, test_y_channel: bool) -> None:
    if crop_border != 0:
        raise ValueError(
            f'{name}: the Kalantari protocol uses the whole image, so crop_border must be 0; got {crop_border}.'
        )
    if input_order != 'HWC':
        raise ValueError(f"{name}: expects (H, W, C) arrays, so input_order must be 'HWC'; got {input_order!r}.")
    if test_y_channel:
        raise ValueError(f'{name}: HDR metrics are computed on RGB, so test_y_channel must be False.')


def _prepare_numpy(img: np.ndarray, img2: np.ndarray, name: str) -> tuple:
    """Validate a prediction / GT pair of (H, W, C) float arrays and return them clipped to [0, 1] in float64."""
    for label, arr in (('img', img), ('img2', img2)):
        if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
            found = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
            raise ValueError(
                f'{name}: {label} must be a float numpy array of linear HDR values (not an 8-bit '
                f'image from tensor2img); got {found}.'
            )
    if img.ndim != 3 or img.shape != img2.shape:
        raise ValueError(f'{name}: expects img and img2 of the same shape (H, W, C); got {img.shape} and {img2.shape}.')
    return np.clip(img.astype(np.float64), 0, 1), np.clip(img2.astype(np.float64), 0, 1)


def _prepare_tensor(img: torch.Tensor, img2: torch.Tensor, name: str) -> tuple:
    """Validate a prediction / GT pair of (B, C, H, W) float tensors and return them clipped to [0, 1] in float64."""
    for label, tensor in (('img', img), ('img2', img2)):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            found = tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f'{name}: {label} must be a float tensor of linear HDR values; got {found}.')
    if img.dim() != 4 or img.shape != img2.shape:
        raise ValueError(
            f'{name}: expects img and img2 of the same shape (B, C, H, W); got {tuple(img.shape)} and '
            f'{tuple(img2.shape)}.'
        )
    return img.detach().to(torch.float64).clamp(0, 1), img2.detach().to(torch.float64).clamp(0, 1)


def _psnr_numpy(x: np.ndarray, y: np.ndarray) -> float:
    mse = float(np.mean((x - y) ** 2))
    return float('inf') if mse == 0 else 10 * math.log10(1 / mse)


def _psnr_tensor(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(1 / mse)  # 1 / 0 = inf: identical images give inf, as BasicSR


def _check_ssim_size(height: int, width: int) -> None:
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f'SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} (its Gaussian window); got {height}x{width}.'
        )


def ssim_tensor(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM of Wang et al. per sample: (B, C, H, W) float64 in [0, 1] -> (B,), mean over channels (BasicSR's).

    Raises:
        ValueError: H or W is smaller than the 11x11 window.
    """
    _check_ssim_size(*x.shape[-2:])
    # calculate_ssim_pt takes [0, 1] and scales by 255 itself; its mean over (C, H, W) is the mean over channels.
    return calculate_ssim_pt(x, y, crop_border=0)


def ssim_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of Wang et al.: (H, W, C) float64 in [0, 1] -> mean over channels (BasicSR's); as :func:`ssim_tensor`.

    Raises:
        ValueError: H or W is smaller than the 11x11 window.
    """
    _check_ssim_size(*x.shape[:2])
    # calculate_ssim's constants assume data range 255; SSIM is scale-invariant once the constants scale with it.
    return float(calculate_ssim(x * 255, y * 255, crop_border=0, input_order='HWC'))


def _numpy_metric(
    name: str,
    score: Callable,
    img: np.ndarray,
    img2: np.ndarray,
    mu: Optional[float],
    crop_border: int,
    input_order: str,
    test_y_channel: bool,
) -> float:
    """The body of every numpy metric: protocol options, pair validation, mu-law (unless ``mu`` is None), score."""
    _check_protocol_options(name, crop_border, input_order, test_y_channel)
    x, y = _prepare_numpy(img, img2, name)
    return score(x, y) if mu is None else score(mu_law(x, mu), mu_law(y, mu))


def _tensor_metric(
    name: str,
    score: Callable,
    img: torch.Tensor,
    img2: torch.Tensor,
    mu: Optional[float],
    crop_border: int,
    test_y_channel: bool,
) -> torch.Tensor:
    """The body of every ``_pt`` metric, as :func:`_numpy_metric` (tensors are (B, C, H, W) by definition)."""
    _check_protocol_options(name, crop_border, 'HWC', test_y_channel)
    x, y = _prepare_tensor(img, img2, name)
    return score(x, y) if mu is None else score(mu_law(x, mu), mu_law(y, mu))


@METRIC_REGISTRY.register()
def calculate_psnr_mu(
    img: np.ndarray,
    img2: np.ndarray,
    mu: float = MU,
    crop_border: int = 0,
    input_order: str = 'HWC',
    test_y_channel: bool = False,
    **kwargs,
) -> float:
    """PSNR-mu: PSNR (data range 1) between T(clip(img)) and T(clip(img2)), T the mu-law tonemap.

    Args:
        img (ndarray): Prediction, (H, W, C) float linear HDR.
        img2 (ndarray): Ground truth, (H, W, C) float linear HDR.
        mu (float): Mu-law compression. Default: 5000.
        crop_border, input_order, test_y_channel: BasicSR options, accepted only as 0, 'HWC', False.

    Returns:
        float: PSNR in dB; inf for identical images.
    """
    return _numpy_metric('calculate_psnr_mu', _psnr_numpy, img, img2, mu, crop_border, input_order, test_y_channel)


@METRIC_REGISTRY.register()
def calculate_psnr_l(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int = 0,
    input_order: str = 'HWC',
    test_y_channel: bool = False,
    **kwargs,
) -> float:
    """PSNR-L: PSNR (data range 1) between clip(img) and clip(img2), linear values.

    Args:
        img (ndarray): Prediction, (H, W, C) float linear HDR.
        img2 (ndarray): Ground truth, (H, W, C) float linear HDR.
        crop_border, input_order, test_y_channel: BasicSR options, accepted only as 0, 'HWC', False.

    Returns:
        float: PSNR in dB; inf for identical images.
    """
    return _numpy_metric('calculate_psnr_l', _psnr_numpy, img, img2, None, crop_border, input_order, test_y_channel)


@METRIC_REGISTRY.register()
def calculate_ssim_mu(
    img: np.ndarray,
    img2: np.ndarray,
    mu: float = MU,
    crop_border: int = 0,
    input_order: str = 'HWC',
    test_y_channel: bool = False,
    **kwargs,
) -> float:
    """SSIM-mu: SSIM (Wang et al., see the module docstring) between T(clip(img)) and T(clip(img2)).

    Args:
        img (ndarray): Prediction, (H, W, C) float linear HDR, H and W >= 11.
        img2 (ndarray): Ground truth, (H, W, C) float linear HDR.
        mu (float): Mu-law compression. Default: 5000.
        crop_border, input_order, test_y_channel: BasicSR options, accepted only as 0, 'HWC', False.

    Returns:
        float: SSIM, mean over channels.
    """
    return _numpy_metric('calculate_ssim_mu', ssim_numpy, img, img2, mu, crop_border, input_order, test_y_channel)


@METRIC_REGISTRY.register()
def calculate_ssim_l(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int = 0,
    input_order: str = 'HWC',
    test_y_channel: bool = False,
    **kwargs,
) -> float:
    """SSIM-L: SSIM (Wang et al., see the module docstring) between clip(img) and clip(img2), linear values.

    Args:
        img (ndarray): Prediction, (H, W, C) float linear HDR, H and W >= 11.
        img2 (ndarray): Ground truth, (H, W, C) float linear HDR.
        crop_border, input_order, test_y_channel: BasicSR options, accepted only as 0, 'HWC', False.

    Returns:
        float: SSIM, mean over channels.
    """
    return _numpy_metric('calculate_ssim_l', ssim_numpy, img, img2, None, crop_border, input_order, test_y_channel)


@METRIC_REGISTRY.register()
def calculate_psnr_mu_pt(
    img: torch.Tensor, img2: torch.Tensor, mu: float = MU, crop_border: int = 0, test_y_channel: bool = False, **kwargs
) -> torch.Tensor:
    """PSNR-mu per sample: img (prediction), img2 (GT) (B, C, H, W) float linear HDR -> (B,) float64 dB."""
    return _tensor_metric('calculate_psnr_mu_pt', _psnr_tensor, img, img2, mu, crop_border, test_y_channel)


@METRIC_REGISTRY.register()
def calculate_psnr_l_pt(
    img: torch.Tensor, img2: torch.Tensor, crop_border: int = 0, test_y_channel: bool = False, **kwargs
) -> torch.Tensor:
    """PSNR-L per sample: img (prediction), img2 (GT) (B, C, H, W) float linear HDR -> (B,) float64 dB."""
    return _tensor_metric('calculate_psnr_l_pt', _psnr_tensor, img, img2, None, crop_border, test_y_channel)


@METRIC_REGISTRY.register()
def calculate_ssim_mu_pt(
    img: torch.Tensor, img2: torch.Tensor, mu: float = MU, crop_border: int = 0, test_y_channel: bool = False, **kwargs
) -> torch.Tensor:
    """SSIM-mu per sample: img (prediction), img2 (GT) (B, C, H, W) float linear HDR, H, W >= 11 -> (B,) float64."""
    return _tensor_metric('calculate_ssim_mu_pt', ssim_tensor, img, img2, mu, crop_border, test_y_channel)


@METRIC_REGISTRY.register()
def calculate_ssim_l_pt(
    img: torch.Tensor, img2: torch.Tensor, crop_border: int = 0, test_y_channel: bool = False, **kwargs
) -> torch.Tensor:
    """SSIM-L per sample: img (prediction), img2 (GT) (B, C, H, W) float linear HDR, H, W >= 11 -> (B,) float64."""
    return _tensor_metric('calculate_ssim_l_pt', ssim_tensor, img, img2, None, crop_border, test_y_channel)
