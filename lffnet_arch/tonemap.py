"""Previews of linear HDR images: a choice of tone mappers, and the per-scene comparison picture.

Tone mappers (``TONEMAPPERS``), each applied after dividing the image by a high percentile (99.5 by default) so dim
and bright results are compared on the same footing:

- ``mulaw``: the mu-law curve of the losses and metrics, T(x) = log(1 + 5000 x) / log(1 + 5000) on [0, 1]
  (the project's long-standing preview).
- ``reinhard``: OpenCV's ``TonemapReinhard`` (Reinhard and Devlin 2005), global, gamma 2.2.
- ``drago``: OpenCV's ``TonemapDrago`` (Drago et al. 2003), logarithmic, bias 0.85, gamma 2.2.
- ``mantiuk``: OpenCV's ``TonemapMantiuk`` (Mantiuk et al. 2006), local contrast, scale 0.7, gamma 2.2.
- ``fusion``: exposure fusion (Mertens et al. 2007) of virtual exposures of the image, 3 stops under to 6 over,
  each clipped and sRGB-encoded as a camera would render it.

``fusion`` is the default of the previews (inference ``--tonemap``, validation ``val.tonemap``): side by side with
Drago, Reinhard and Mantiuk on real brackets (a person before a snowy window, Debevec's Memorial church) and on CC0 /
BSD radiance maps (``docs/images/preview_comparison.jpg``), it kept the most local contrast and the clearest shadows
with natural colour, where Drago looked flat and hazy, Reinhard washed bright scenes out and Mantiuk looked flat; on a
sunset it renders the sky next to the sun paler than Drago does. ``drago`` was the default before.

OpenCV's operators adapt to the statistics of what they are given, so images that must be compared (a prediction
and its GT) are tone-mapped together, side by side in one call (:func:`tonemap_together`).

Memory: ``mulaw`` and ``fusion`` read the HDR image a strip of rows at a time and write only the 8-bit preview, so
besides it they need a few strips' worth (``fusion`` runs exposure fusion in strips,
:mod:`lffnet_arch.exposure_fusion`, with the same arithmetic as OpenCV's ``MergeMertens``); the percentile is
found exactly by two passes of histograms over the strips. ``reinhard``, ``drago`` and ``mantiuk`` run OpenCV's
operators on the whole image and hold several float copies of it.
"""

import contextlib
import functools
import math
from collections.abc import Sequence
from typing import Optional

import cv2
import numpy as np

from lffnet_arch.choices import DEFAULT_TONEMAPPER, TONEMAPPERS
from lffnet_arch.exposure_fusion import mertens_strips
from lffnet_arch.hdr_input import MU, mu_law
from lffnet_arch.response.families import srgb_encode

__all__ = [
    'DEFAULT_TONEMAPPER',
    'TONEMAPPERS',
    'check_tonemapper',
    'comparison_image',
    'error_map',
    'tonemap',
    'tonemap_together',
]

DEFAULT_PERCENTILE = 99.5
ERROR_MAX = 0.1  # the error map's colour scale: 0 .. 0.1 of the mu-law range


def check_tonemapper(method: str, option: str = 'tonemap') -> str:
    """Return ``method`` if it names a tone mapper, else raise ``ValueError`` naming ``option``."""
    if method not in TONEMAPPERS:
        raise ValueError(f'{option} must be one of {", ".join(TONEMAPPERS)}; got {method!r}.')
    return method


STRIP_PIXELS = 1 << 21  # pixels of a strip of rows that the strip-wise tone mappers read at a time


def _checked(hdr: np.ndarray) -> np.ndarray:
    hdr = np.asarray(hdr)
    if hdr.ndim != 3 or hdr.shape[2] != 3:
        raise ValueError(f'Tone mapping expects an RGB image (H, W, 3); got shape {hdr.shape}.')
    return hdr


def _clean(hdr: np.ndarray) -> np.ndarray:
    """float32 copy with NaN, +inf and negative values set to 0."""
    hdr = np.asarray(_checked(hdr), dtype=np.float32)
    return np.nan_to_num(hdr, nan=0.0, posinf=0.0).clip(0, None)


def _row_ranges(height: int, width: int, pixels: int = STRIP_PIXELS) -> list:
    rows = max(1, pixels // max(1, width))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def _float_bits(values: np.ndarray) -> np.ndarray:
    """The uint32 bit patterns of cleaned (non-negative) float32 values, which sort as the values do (-0 as 0)."""
    return values.ravel().view(np.uint32) & np.uint32(0x7FFFFFFF)


def _order_statistics(hdr: np.ndarray, ranks: Sequence[int]) -> dict:
    """The values of the given 0-based ranks among the cleaned values of ``hdr`` (as :func:`_clean` makes them), by
    two passes of 65536-bin histograms over strips of rows (the upper, then the lower 16 bits): exact, with no
    full-size copy."""
    strips = _row_ranges(*hdr.shape[:2])
    upper = np.zeros(1 << 16, np.int64)
    for top, bottom in strips:
        upper += np.bincount(_float_bits(_clean(hdr[top:bottom])) >> 16, minlength=1 << 16)
    cumulative = np.cumsum(upper)
    buckets = {rank: int(np.searchsorted(cumulative, rank, side='right')) for rank in ranks}
    lower = {bucket: np.zeros(1 << 16, np.int64) for bucket in set(buckets.values())}
    for top, bottom in strips:
        bits = _float_bits(_clean(hdr[top:bottom]))
        high = bits >> 16
        for bucket, counts in lower.items():
            counts += np.bincount(bits[high == bucket] & np.uint32(0xFFFF), minlength=1 << 16)
    values = {}
    for rank, bucket in buckets.items():
        before = int(cumulative[bucket - 1]) if bucket else 0
        low = int(np.searchsorted(np.cumsum(lower[bucket]), rank - before, side='right'))
        values[rank] = float(np.uint32((bucket << 16) | low).view(np.float32))
    return values


def _percentile(hdr: np.ndarray, percentile: float) -> float:
    """``np.percentile`` (linear interpolation) of the cleaned values of ``hdr``, without copying them."""
    count = hdr.size
    if count == 0:
        return 0.0
    quantile = percentile / 100.0
    position = count * quantile + (1.0 - quantile) - 1.0  # NumPy's virtual index for the linear method
    below = min(max(math.floor(position), 0), count - 1)
    above = min(below + 1, count - 1)
    values = _order_statistics(hdr, sorted({below, above}))
    low, high, fraction = np.float32(values[below]), np.float32(values[above]), np.float32(position - below)
    difference = high - low  # NumPy's lerp, in the values' float32
    return float(high - difference * (1 - fraction) if fraction >= 0.5 else low + difference * fraction)


@contextlib.contextmanager
def _opencv_warnings_off():
    """OpenCV's log level at errors only, restored after."""
    logging = getattr(getattr(cv2, 'utils', None), 'logging', None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def _opencv_operator(method: str) -> 'cv2.Tonemap':
    if method == 'reinhard':
        return cv2.createTonemapReinhard(gamma=2.2, intensity=0.0, light_adapt=1.0, color_adapt=0.0)
    if method == 'drago':
        return cv2.createTonemapDrago(gamma=2.2, saturation=1.0, bias=0.85)
    return cv2.createTonemapMantiuk(gamma=2.2, scale=0.7, saturation=1.0)


# Virtual exposures of the fusion preview, in stops relative to the image scaled so that its high percentile is 1.
FUSION_STOPS = (-3.0, -1.5, 0.0, 1.5, 3.0, 4.5, 6.0)


SRGB_TABLE_SIZE = 1 << 18  # entries of the 8-bit sRGB table over [0, 1]: at most 1 code from the formula


@functools.lru_cache(maxsize=1)
def _srgb_table() -> np.ndarray:
    return np.round(srgb_encode(np.linspace(0.0, 1.0, SRGB_TABLE_SIZE)) * 255).astype(np.uint8)


def _virtual_exposures(normalised: np.ndarray) -> list:
    """The 8-bit BGR virtual exposures of :data:`FUSION_STOPS` of a normalised image (or rows of one), each made
    8-bit before the next is rendered (one float and one index array at a time). The sRGB encoding is a table
    lookup, several times faster than the formula and at most one code from it."""
    table, last = _srgb_table(), SRGB_TABLE_SIZE - 1
    bgr = np.ascontiguousarray(normalised[..., ::-1], dtype=np.float32)
    scaled, index = np.empty_like(bgr), np.empty(bgr.shape, np.int32)
    exposures = []
    for stop in FUSION_STOPS:
        np.multiply(bgr, np.float32(2.0**stop * last), out=scaled)
        np.clip(scaled, 0, last, out=scaled)
        index[...] = np.rint(scaled, out=scaled)
        exposures.append(table[index])
    return exposures


def _virtual_exposure_fusion(normalised: np.ndarray) -> np.ndarray:
    """Exposure fusion (Mertens et al.) of virtual exposures of the image: each stop of :data:`FUSION_STOPS` is the
    image scaled by 2 ** stop, clipped and sRGB-encoded, as a camera would have rendered it; the fusion keeps, at
    every pixel, the well-exposed, contrasted and saturated parts. Local contrast and clean shadows, natural colour
    (no tone curve acts on the chroma), and no halo-prone global operator.

    The whole image at once through OpenCV's ``MergeMertens`` (several float copies of it): the reference that
    :func:`tonemap`'s strip-wise fusion reproduces."""
    fused = cv2.createMergeMertens().process(_virtual_exposures(normalised))[..., ::-1]
    return np.clip(fused, 0, 1)


def _normalised_rows(hdr: np.ndarray, top: int, bottom: int, scale: float) -> np.ndarray:
    rows = _clean(hdr[top:bottom])
    return rows / scale if scale > 0 else rows


def _to_8bit(display: np.ndarray) -> np.ndarray:
    return np.round(np.clip(display, 0, 1) * 255).astype(np.uint8)


def _tonemap_strips(hdr: np.ndarray, method: str, scale: float, mu: float) -> np.ndarray:
    """``mulaw`` or ``fusion`` a strip of rows at a time, into the 8-bit preview."""
    height, width = hdr.shape[:2]
    preview = np.empty((height, width, 3), np.uint8)
    if method == 'mulaw':
        for top, bottom in _row_ranges(height, width):
            preview[top:bottom] = _to_8bit(mu_law(_normalised_rows(hdr, top, bottom, scale).clip(0, 1), mu))
        return preview

    def render(top: int, bottom: int) -> list:
        return _virtual_exposures(_normalised_rows(hdr, top, bottom, scale))

    for top, bottom, fused in mertens_strips(render, height, width, STRIP_PIXELS):
        preview[top:bottom] = _to_8bit(np.clip(fused[..., ::-1], 0, 1))
    return preview


def tonemap(
    hdr: np.ndarray,
    method: str = 'mulaw',
    percentile: float = DEFAULT_PERCENTILE,
    scale: Optional[float] = None,
    mu: float = MU,
) -> np.ndarray:
    """8-bit RGB preview of a linear HDR image.

    Args:
        hdr (np.ndarray): Linear RGB (H, W, 3); NaN, +inf and negative values are shown black.
        method (str): One of ``TONEMAPPERS``. Default: 'mulaw'.
        percentile (float): The image is divided by this percentile of its values first. Default: 99.5.
        scale (float, optional): Divide by this instead (e.g. the GT's percentile, to show several images alike).
        mu (float): Mu-law compression of 'mulaw'. Default: 5000.

    Returns:
        np.ndarray: uint8 RGB (H, W, 3).

    Raises:
        ValueError: Unknown ``method`` or not an (H, W, 3) image.
    """
    check_tonemapper(method)
    hdr = _checked(hdr)
    if scale is None:
        scale = _percentile(hdr, percentile)
    if method in ('mulaw', 'fusion'):
        return _tonemap_strips(hdr, method, scale, mu)
    normalised = _normalised_rows(hdr, 0, hdr.shape[0], scale)
    # OpenCV works on BGR float32; a tiny floor keeps the log-based operators away from log(0).
    bgr = np.ascontiguousarray(normalised[..., ::-1] + 1e-6, dtype=np.float32)
    del normalised
    with _opencv_warnings_off():  # OpenCV's Drago warns about its own MatExpr use (once a process)
        display = np.nan_to_num(_opencv_operator(method).process(bgr)[..., ::-1], nan=0.0)
    return _to_8bit(display)


def tonemap_together(
    images: Sequence[np.ndarray], method: str = 'mulaw', reference: int = -1, percentile: float = DEFAULT_PERCENTILE
) -> list:
    """Tone-map images of one size alike: normalised by ``images[reference]``'s percentile and, for OpenCV's
    adaptive operators, processed side by side in one call so they share one adaptation (``fusion`` renders the same
    virtual exposures of each and fuses each on its own).

    Returns:
        list[np.ndarray]: uint8 RGB images, in the order given.
    """
    cleaned = [_clean(image) for image in images]
    shapes = {image.shape for image in cleaned}
    if len(shapes) != 1:
        raise ValueError(f'tonemap_together expects images of one size; got {sorted(shapes)}.')
    scale = float(np.percentile(cleaned[reference], percentile))
    scale = scale if scale > 0 else 1.0
    if method == 'fusion':  # the same virtual exposures for all; each fused on its own (no blending across images)
        return [tonemap(image, method, scale=scale) for image in cleaned]
    strip = tonemap(np.concatenate(cleaned, axis=1), method, scale=scale)
    return np.split(strip, len(cleaned), axis=1)


def error_map(prediction: np.ndarray, gt: np.ndarray, error_max: float = ERROR_MAX) -> np.ndarray:
    """Colour map (inferno) of |T(clip(pred)) - T(clip(gt))| averaged over channels, 0 .. ``error_max`` (T mu-law).

    The scale is fixed, not per image, so maps of different scenes and iterations compare. Returns uint8 RGB.
    """
    diff = np.abs(mu_law(_clean(prediction).clip(0, 1)) - mu_law(_clean(gt).clip(0, 1))).mean(axis=2)
    levels = np.round(np.clip(diff / error_max, 0, 1) * 255).astype(np.uint8)
    return cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)[..., ::-1]


def _panel(image: np.ndarray, label: str, zoom: int, band: int) -> np.ndarray:
    image = np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)
    canvas = np.zeros((image.shape[0] + band, image.shape[1], 3), np.uint8)
    canvas[band:] = image
    scale = band / 40
    cv2.putText(canvas, label, (4, band - 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def comparison_image(
    ldrs: Sequence[np.ndarray],
    prediction: np.ndarray,
    gt: np.ndarray,
    method: str = 'mulaw',
    prediction_label: str = 'prediction',
    error_max: float = ERROR_MAX,
    min_width: int = 256,
) -> np.ndarray:
    """One picture of a scene: the input frames (top row, as captured), then the prediction and the GT tone-mapped
    alike (:func:`tonemap_together`, normalised by the GT) and the error map (:func:`error_map`).

    Args:
        ldrs (sequence of np.ndarray): The T input frames, float RGB (H, W, 3) in [0, 1] (display-referred).
        prediction (np.ndarray): Linear HDR (H, W, 3).
        gt (np.ndarray): Linear HDR ground truth (H, W, 3).
        method (str): Tone mapper, one of ``TONEMAPPERS``. Default: 'mulaw'.
        prediction_label (str): Caption of the prediction (e.g. with its PSNR). Default: 'prediction'.
        error_max (float): Top of the error map's scale. Default: 0.1.
        min_width (int): Small images are enlarged by an integer factor (nearest) to at least this panel width,
            so captions fit. Default: 256.

    Returns:
        np.ndarray: uint8 RGB picture, max(T, 3) panels wide and two rows high.
    """
    check_tonemapper(method, 'comparison tone mapper')
    height, width = gt.shape[:2]
    for index, frame in enumerate([*ldrs, prediction]):
        if frame.shape != gt.shape:
            raise ValueError(f'comparison_image: image {index} has shape {frame.shape}, the GT {gt.shape}.')
    zoom = max(1, -(-min_width // width))
    band = 24
    shown_pred, shown_gt = tonemap_together([prediction, gt], method)
    inputs = [np.round(np.clip(np.asarray(f, np.float32), 0, 1) * 255).astype(np.uint8) for f in ldrs]
    top = [_panel(f, f'input {i + 1}', zoom, band) for i, f in enumerate(inputs)]
    bottom = [
        _panel(shown_pred, f'{prediction_label} ({method})', zoom, band),
        _panel(shown_gt, f'GT ({method})', zoom, band),
        _panel(error_map(prediction, gt, error_max), f'|T(pred)-T(GT)|, 0-{error_max:g}', zoom, band),
    ]
    columns = max(len(top), len(bottom))
    blank = np.zeros((height * zoom + band, width * zoom, 3), np.uint8)
    rows = [np.concatenate(row + [blank] * (columns - len(row)), axis=1) for row in (top, bottom)]
    return np.concatenate(rows, axis=0)


def methods_picture(
    ldrs: Sequence[np.ndarray], results: Sequence[tuple], gt: np.ndarray, method: str = 'mulaw', min_width: int = 256
) -> np.ndarray:
    """The input frames (top row, as captured) above several methods' results and the GT, all tone-mapped alike
    (:func:`tonemap_together`, normalised by the GT).

    Args:
        ldrs (sequence of np.ndarray): The T input frames, float RGB (H, W, 3) in [0, 1].
        results (sequence of (str, np.ndarray)): Caption and linear HDR (H, W, 3) of each method, in the GT's scale.
        gt (np.ndarray): Linear HDR ground truth (H, W, 3).
        method (str): Tone mapper, one of ``TONEMAPPERS``. Default: 'mulaw'.
        min_width (int): Small images are enlarged by an integer factor to at least this panel width. Default: 256.

    Returns:
        np.ndarray: uint8 RGB picture, two rows.
    """
    check_tonemapper(method, 'picture tone mapper')
    height, width = gt.shape[:2]
    for label, image in results:
        if image.shape != gt.shape:
            raise ValueError(f'methods_picture: {label} has shape {image.shape}, the GT {gt.shape}.')
    zoom, band = max(1, -(-min_width // width)), 24
    shown = tonemap_together([image for _, image in results] + [gt], method)
    inputs = [np.round(np.clip(np.asarray(f, np.float32), 0, 1) * 255).astype(np.uint8) for f in ldrs]
    top = [_panel(f, f'input {i + 1}', zoom, band) for i, f in enumerate(inputs)]
    bottom = [_panel(image, label, zoom, band) for image, (label, _) in zip(shown, results)]
    bottom.append(_panel(shown[-1], f'GT ({method})', zoom, band))
    columns = max(len(top), len(bottom))
    blank = np.zeros((height * zoom + band, width * zoom, 3), np.uint8)
    rows = [np.concatenate(row + [blank] * (columns - len(row)), axis=1) for row in (top, bottom)]
    return np.concatenate(rows, axis=0)
