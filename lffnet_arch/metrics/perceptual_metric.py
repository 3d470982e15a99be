"""Perceptual HDR metrics: PU21-encoded PSNR and SSIM, and ColorVideoVDP (optional, in JOD units).

Both take linear HDR in relative units (the networks' output and the GT, (H, W, 3) RGB, BT.709 primaries) and map it
to absolute luminance first, because the human visual system's sensitivity depends on absolute light levels:

    absolute = linear * display_peak / max(GT)

so the brightest GT value is shown at ``display_peak`` cd/m^2 (default 1000, a common HDR display) and the
prediction is scaled by the same factor. This is how the PU21 authors' example maps relative HDR images (the image
maximum to the display peak, ``pu21/matlab/examples/ex_hdr_images.m``). Values are not clipped to [0, 1] as the
Kalantari metrics are; negative values and NaN are treated as black.

PU21 (Mantiuk and Azimi, "PU21: A novel perceptually uniform encoding for adapting existing quality metrics for HDR",
PCS 2021), as in the authors' reference code (gfxdisp/pu21, ``pu21_encoder.m`` and ``pu21_metric.m``):

- Encoding: V(Y) = max(p7 * (((p1 + p2 Y^p4) / (1 + p3 Y^p4))^p5 - p6), 0) with Y clamped to [0.005, 10000]
  cd/m^2. Variant ``banding_glare`` by default (the authors' recommendation), ``banding`` as an option; 100 cd/m^2
  encodes to about 256 (as 8-bit SDR white) and 10000 cd/m^2 to about 595 (banding_glare) or 520 (banding).
- PU21-PSNR: on the three RGB channels (each encoded as a luminance), peak value 256 (not the encoded maximum),
  mean squared error over all pixels and channels: 10 log10(256^2 / MSE).
- PU21-SSIM: on luminance Y = 0.212656 R + 0.715158 G + 0.072186 B (BT.709), encoded, SSIM with data range 256.
  The reference calls MATLAB's ``ssim`` (which filters with replicate padding over the whole image); here it is the
  project's SSIM (BasicSR's, the window where it fits inside the image), so figures near the border differ slightly.

ColorVideoVDP (Mantiuk et al., SIGGRAPH 2024; the ``cvvdp`` package, imported as ``pycvvdp``; install the ``metrics``
extra) predicts the visibility of differences in just-objectionable-difference (JOD) units: 10 means no visible
difference, lower is worse. The display model is the package's ``standard_hdr_linear`` geometry (30-inch 4K at
0.75 m) with its photometry rebuilt for ``display_peak`` (linear BT.709 input in cd/m^2, contrast 1,000,000:1, 10 lux
ambient), all shipped with the package: nothing is downloaded at run time.
"""

import functools
import importlib.util
import math
from typing import Any, Optional

import numpy as np
import torch
from basicsr.metrics.psnr_ssim import calculate_ssim
from basicsr.utils.registry import METRIC_REGISTRY

__all__ = [
    'BT709_LUMINANCE',
    'PU21_L_MAX',
    'PU21_L_MIN',
    'PU21_PARAMS',
    'PU21_PEAK',
    'calculate_cvvdp',
    'calculate_pu21_psnr',
    'calculate_pu21_ssim',
    'cvvdp_available',
    'metric_unavailable',
    'pu21_decode',
    'pu21_encode',
    'to_absolute',
]

# p1..p7 of the PU21 encoding (pu21_encoder.m, parameters of 06/02/2020).
PU21_PARAMS = {
    'banding': (1.070275272, 0.4088273932, 0.153224308, 0.2520326168, 1.063512885, 1.14115047, 521.4527484),
    'banding_glare': (
        0.353487901,
        0.3734658629,
        8.277049286e-05,
        0.9062562627,
        0.09150303166,
        0.9099517204,
        596.3148142,
    ),
}
PU21_L_MIN = 0.005  # cd/m^2, the encoding's valid range
PU21_L_MAX = 10000.0
PU21_PEAK = 256.0  # the PSNR peak and SSIM data range of pu21_metric.m (100 cd/m^2 encodes to about 256)
BT709_LUMINANCE = (0.212656, 0.715158, 0.072186)
DEFAULT_DISPLAY_PEAK = 1000.0
CVVDP_DISPLAY = 'standard_hdr_linear'
CVVDP_INSTALL_HINT = 'install the metrics extra: pip install --no-build-isolation -e ".[metrics]", or pip install cvvdp'


def _variant(variant: str) -> tuple:
    if variant not in PU21_PARAMS:
        raise ValueError(f'PU21 variant must be one of {sorted(PU21_PARAMS)}; got {variant!r}.')
    return PU21_PARAMS[variant]


def pu21_encode(luminance: np.ndarray, variant: str = 'banding_glare') -> np.ndarray:
    """PU21 encoding of absolute linear values (cd/m^2), clamped to [0.005, 10000] first.

    Args:
        luminance (np.ndarray): Absolute luminance, or absolute linear RGB encoded channel by channel.
        variant (str): 'banding_glare' (default, the authors' recommendation) or 'banding'.

    Returns:
        np.ndarray: float64 PU21 values, about 0 at 0.005 cd/m^2, 256 at 100 cd/m^2, 595 (banding_glare) at 10000.
    """
    p1, p2, p3, p4, p5, p6, p7 = _variant(variant)
    y = np.clip(np.nan_to_num(np.asarray(luminance, dtype=np.float64), nan=0.0), PU21_L_MIN, PU21_L_MAX)
    y_p4 = y**p4
    return np.maximum(p7 * (((p1 + p2 * y_p4) / (1 + p3 * y_p4)) ** p5 - p6), 0.0)


def pu21_decode(encoded: np.ndarray, variant: str = 'banding_glare') -> np.ndarray:
    """Inverse of :func:`pu21_encode` on its range: PU21 values -> absolute linear values (cd/m^2), float64."""
    p1, p2, p3, p4, p5, p6, p7 = _variant(variant)
    v_p = np.maximum(np.asarray(encoded, dtype=np.float64) / p7 + p6, 0.0) ** (1 / p5)
    return (np.maximum(v_p - p1, 0.0) / (p2 - p3 * v_p)) ** (1 / p4)


def _check_pair(img: Any, img2: Any, name: str) -> tuple:
    for label, arr in (('img', img), ('img2', img2)):
        if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
            found = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
            raise ValueError(f'{name}: {label} must be a float numpy array of linear HDR values; got {found}.')
    if img.ndim != 3 or img.shape[2] != 3 or img.shape != img2.shape:
        raise ValueError(f'{name}: expects img and img2 of the same shape (H, W, 3); got {img.shape} and {img2.shape}.')
    clean = [np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0).clip(0, None) for a in (img, img2)]
    return clean[0], clean[1]


def _check_peak(display_peak: Any, name: str) -> float:
    if isinstance(display_peak, bool) or not isinstance(display_peak, (int, float)) or not display_peak > 0:
        raise ValueError(f'{name}: display_peak must be a positive number of cd/m^2; got {display_peak!r}.')
    if display_peak > PU21_L_MAX:
        raise ValueError(f'{name}: display_peak must be at most {PU21_L_MAX:g} cd/m^2; got {display_peak!r}.')
    return float(display_peak)


def to_absolute(img: np.ndarray, img2: np.ndarray, display_peak: float = DEFAULT_DISPLAY_PEAK) -> tuple:
    """Map a prediction / GT pair of relative linear HDR to cd/m^2: both times ``display_peak / max(img2)``.

    Args:
        img (np.ndarray): Prediction, (H, W, 3) float linear HDR, non-negative.
        img2 (np.ndarray): Ground truth, same shape; its maximum is shown at ``display_peak``.
        display_peak (float): Peak luminance of the display, cd/m^2. Default: 1000.

    Returns:
        tuple[np.ndarray, np.ndarray]: The two images in cd/m^2 (float64). An all-black GT leaves both unscaled.
    """
    peak = float(img2.max()) if img2.size else 0.0
    scale = display_peak / peak if peak > 0 else 1.0
    return img * scale, img2 * scale


def _protocol(name: str, crop_border: int, input_order: str, test_y_channel: bool) -> None:
    if crop_border != 0 or input_order != 'HWC' or test_y_channel:
        raise ValueError(
            f"{name}: crop_border, input_order and test_y_channel are accepted only as 0, 'HWC' and False (the "
            f'whole RGB image); got {crop_border!r}, {input_order!r}, {test_y_channel!r}.'
        )


def _absolute_pair(
    name: str, img: Any, img2: Any, display_peak: Any, crop_border: int, input_order: str, test_y_channel: bool
) -> tuple:
    """The common part of every metric here: protocol options, pair validation, both images in cd/m^2.

    Returns:
        tuple: (prediction, GT) in cd/m^2 (float64 (H, W, 3)) and the display peak as a float.
    """
    _protocol(name, crop_border, input_order, test_y_channel)
    img, img2 = _check_pair(img, img2, name)
    peak = _check_peak(display_peak, name)
    return (*to_absolute(img, img2, peak), peak)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.asarray(BT709_LUMINANCE)


@METRIC_REGISTRY.register()
def calculate_pu21_psnr(
    img: np.ndarray,
    img2: np.ndarray,
    display_peak: float = DEFAULT_DISPLAY_PEAK,
    variant: str = 'banding_glare',
    crop_border: int = 0,
    input_order: str = 'HWC',
    test_y_channel: bool = False,
    **kwargs,
) -> float:
    """PU21-PSNR: PSNR with peak 256 between the PU21-encoded RGB channels of both images (see the module docstring).

    Args:
        img (np.ndarray): Prediction, (H, W, 3) float linear HDR (relative units).
        img2 (np.ndarray): Ground truth, same shape; its maximum is mapped to ``display_peak``.
        display_peak (float): cd/m^2 of the GT's maximum. Default: 1000.
        variant (str): PU21 variant, 'banding_glare' (default) or 'banding'.
        crop_border, input_order, test_y_channel: BasicSR options, accepted only as 0, 'HWC', False.

    Returns:
        float: PSNR in dB; inf for identical images.
    """
    x, y, _ = _absolute_pair('calculate_pu21_psnr', img, img2, display_peak, crop_border, input_order, test_y_channel)
    mse = float(np.mean((pu21_encode(x, variant) - pu21_encode(y, variant)) ** 2))
    return float('inf') if mse == 0 else 10 * math.log10(PU21_PEAK**2 / mse)


@METRIC_REGISTRY.register()
def calculate_pu21_ssim(
    img: np.ndarray,
    img2: np.ndarray,
    display_peak: float = DEFAULT_DISPLAY_PEAK,
    variant: str = 'banding_glare',
    crop_border: int = 0,
    input_order: str = 'HWC',
    test_y_channel: bool = False,
    **kwargs,
) -> float:
    """PU21-SSIM: SSIM (data range 256) between the PU21-encoded BT.709 luminances of both images.

    Args:
        img (np.ndarray): Prediction, (H, W, 3) float linear HDR (relative units), H and W >= 11.
        img2 (np.ndarray): Ground truth, same shape; its maximum is mapped to ``display_peak``.
        display_peak (float): cd/m^2 of the GT's maximum. Default: 1000.
        variant (str): PU21 variant, 'banding_glare' (default) or 'banding'.
        crop_border, input_order, test_y_channel: BasicSR options, accepted only as 0, 'HWC', False.

    Returns:
        float: SSIM of the encoded luminance.
    """
    x, y, _ = _absolute_pair('calculate_pu21_ssim', img, img2, display_peak, crop_border, input_order, test_y_channel)
    if min(x.shape[:2]) < 11:
        raise ValueError(
            f'calculate_pu21_ssim: SSIM needs images of at least 11x11 (its Gaussian window); got {x.shape[:2]}.'
        )
    # BasicSR's SSIM constants assume data range 255: rescale the encoded values from range 256 to 255.
    px, py = (pu21_encode(_luminance(a), variant)[..., None] * (255.0 / PU21_PEAK) for a in (x, y))
    return float(calculate_ssim(px, py, crop_border=0, input_order='HWC'))


def cvvdp_available() -> bool:
    """Whether the optional ``pycvvdp`` package (PyPI ``cvvdp``, the ``metrics`` extra) is installed."""
    return importlib.util.find_spec('pycvvdp') is not None


def metric_unavailable(metric_type: str) -> Optional[str]:
    """Why a registered metric cannot run in this environment, or None when it can.

    Args:
        metric_type (str): The metric's ``type`` in ``val.metrics``.

    Returns:
        str | None: A message naming what to install (only ``calculate_cvvdp`` has an optional dependency).
    """
    if metric_type == 'calculate_cvvdp' and not cvvdp_available():
        return f'calculate_cvvdp needs the cvvdp package, which is not installed; {CVVDP_INSTALL_HINT}.'
    return None


def _resolve_device(device: Optional[str]) -> torch.device:
    if device in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"calculate_cvvdp: device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}.") from error


@functools.lru_cache(maxsize=4)
def _cvvdp_metric(display_peak: float, device: str) -> Any:
    """One ColorVideoVDP instance per (peak, device): building it reads the package's calibration files."""
    import pycvvdp

    photometry = pycvvdp.vvdp_display_photo_eotf(
        display_peak, contrast=1_000_000, source_colorspace='BT.709-linear', E_ambient=10
    )
    return pycvvdp.cvvdp(
        display_name=CVVDP_DISPLAY, display_photometry=photometry, quiet=True, device=torch.device(device)
    )


@METRIC_REGISTRY.register()
def calculate_cvvdp(
    img: np.ndarray,
    img2: np.ndarray,
    display_peak: float = DEFAULT_DISPLAY_PEAK,
    device: Optional[str] = 'auto',
    crop_border: int = 0,
    input_order: str = 'HWC',
    test_y_channel: bool = False,
    **kwargs,
) -> float:
    """ColorVideoVDP quality in JOD (10 = no visible difference) of a prediction against its GT, as an image.

    Args:
        img (np.ndarray): Prediction, (H, W, 3) float linear HDR (relative units, BT.709 RGB).
        img2 (np.ndarray): Ground truth, same shape; its maximum is mapped to ``display_peak``.
        display_peak (float): Peak luminance of the HDR display model and cd/m^2 of the GT's maximum. Default: 1000.
        device (str): 'auto' (CUDA when available), 'cpu' or 'cuda[:N]'. Default: 'auto'.
        crop_border, input_order, test_y_channel: BasicSR options, accepted only as 0, 'HWC', False.

    Returns:
        float: JOD.

    Raises:
        ImportError: ``pycvvdp`` is not installed (the message says how to install it).
    """
    x, y, peak = _absolute_pair('calculate_cvvdp', img, img2, display_peak, crop_border, input_order, test_y_channel)
    reason = metric_unavailable('calculate_cvvdp')
    if reason:
        raise ImportError(reason)
    dev = _resolve_device(device)
    metric = _cvvdp_metric(peak, str(dev))
    test, reference = (torch.from_numpy(a.astype(np.float32)).to(dev) for a in (x, y))
    with torch.no_grad():
        jod, _ = metric.predict(test, reference, dim_order='HWC')
    return float(jod)
