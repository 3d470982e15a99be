"""Exposure fusion (Mertens, Kautz and Van Reeth 2007) in strips of rows, in memory bounded by the strip size.

The arithmetic is that of OpenCV's ``MergeMertens`` with the weights ``cv2.createMergeMertens()`` takes by default
(read from it: contrast and saturation to the power 1 and well-exposedness to the power 0, i.e. left out, in
OpenCV 4 and 5): the same weights, normalised over the exposures, the same Gaussian pyramids of the
weights and Laplacian pyramids of the images (``cv2.pyrDown`` / ``cv2.pyrUp``, as many levels as OpenCV takes), the
same sums in the same order and the same collapse. Only the order of the work differs:

1. Every strip of rows (with a halo of rows above and below) computes its weights and the Gaussian pyramids of its
   images and weights down to :data:`BASE_LEVEL`; the strip's own rows of that level are kept, for the whole image
   1 / 4 ** BASE_LEVEL of its pixels.
2. The levels from :data:`BASE_LEVEL` to the coarsest are fused as OpenCV fuses them, on those small images, and
   collapsed down to :data:`BASE_LEVEL`.
3. Every strip again computes its finer levels, adds the collapsed coarse image (its rows of it, upsampled level by
   level) and yields its own rows of the result.

The halos hold every row that a strip's own rows depend on through the pyramids, so each output row is computed
from the same values as in one whole-image pass: the result equals OpenCV's to float precision (the tests compare),
while the memory is that of one strip (about 150 bytes a pixel of it) plus the base-level images.
"""

from collections.abc import Callable, Iterator

import cv2
import numpy as np

__all__ = ['BASE_LEVEL', 'mertens_levels', 'mertens_strips']

BASE_LEVEL = 3  # the strips' pyramids reach this level; coarser levels are fused whole (1 / 64 of the pixels)
HALO_A = 4 << BASE_LEVEL  # rows around a strip for its base-level Gaussians (they depend on 2 ** (k + 1) rows)
HALO_B = 8 << BASE_LEVEL  # rows around a strip for its finer levels and their collapse
_SCALE = np.float32(1.0 / 255.0)
_THIRD = np.float32(1.0 / 3.0)
_WELL_EXPOSED = np.float32(-1.0 / 0.08)  # -(x - 0.5) ** 2 / (2 * 0.2 ** 2)
_FLOOR = np.float32(1e-12)
_DEFAULT = cv2.createMergeMertens()
EXPONENTS = (_DEFAULT.getContrastWeight(), _DEFAULT.getSaturationWeight(), _DEFAULT.getExposureWeight())

Render = Callable[[int, int], list]


def mertens_levels(height: int, width: int) -> int:
    """The pyramid's coarsest level as OpenCV computes it: floor(logf(min(W, H)) / logf(2)) in float32."""
    return int(np.float32(np.log(np.float32(min(height, width)))) / np.float32(np.log(np.float32(2.0))))


def _as_float(code: np.ndarray) -> np.ndarray:
    return code.astype(np.float32) * _SCALE  # convertTo(CV_32F, 1 / 255): one rounding of the product


def _power(values: np.ndarray, exponent: float) -> np.ndarray:
    """``cv2.pow`` as MergeMertens applies it: x ** 1 is x, x ** 0 is 1."""
    if exponent == 1:
        return values
    return np.ones_like(values) if exponent == 0 else cv2.pow(values, float(exponent))


def _raw_weight(image: np.ndarray) -> np.ndarray:
    """Contrast ** wc x saturation ** ws x well-exposedness ** we of one float32 BGR image, + 1e-12 (the exponents
    :data:`EXPONENTS` of OpenCV's default MergeMertens)."""
    contrast_exp, saturation_exp, exposure_exp = EXPONENTS
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # OpenCV's order: channel 0 weighted as red
    weight = _power(np.abs(cv2.Laplacian(gray, cv2.CV_32F)), contrast_exp)
    channels = cv2.split(image)
    mean = (channels[0] + channels[1] + channels[2]) * _THIRD
    saturation = np.zeros_like(mean)
    for channel in channels:
        deviation = channel - mean
        saturation += deviation * deviation
    weight = weight * _power(np.sqrt(saturation), saturation_exp)
    if exposure_exp != 0:
        exposedness = np.ones_like(mean)
        for channel in channels:
            centred = channel - np.float32(0.5)
            exposedness *= cv2.exp(centred * centred * _WELL_EXPOSED)
        weight *= _power(exposedness, exposure_exp)
    weight += _FLOOR
    return weight


def _weights(codes: list) -> list:
    """The normalised weights of one strip's exposures (uint8 BGR)."""
    weights = [_raw_weight(_as_float(code)) for code in codes]
    total = np.zeros_like(weights[0])
    for weight in weights:
        total += weight
    for weight in weights:
        weight /= total
    return weights


def _down(image: np.ndarray, levels: int) -> list:
    pyramid = [image]
    for _ in range(levels):
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    return pyramid


def _up(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    return cv2.pyrUp(image, dstsize=(like.shape[1], like.shape[0]))


def _weighted_laplacians(codes: list, weights: list, levels: int, coarsest_too: bool) -> list:
    """Sum over the exposures of their Laplacian pyramids (levels 0 .. ``levels`` - 1, and the Gaussian at
    ``levels`` when ``coarsest_too``) weighted by their weights' Gaussian pyramids, summed in OpenCV's order."""
    sums = []
    for code, weight in zip(codes, weights):
        images = _down(code if code.dtype == np.float32 else _as_float(code), levels)
        gauss = _down(weight, levels)
        for level in range(levels + coarsest_too):
            layer = images[level] - _up(images[level + 1], images[level]) if level < levels else images[level]
            layer *= gauss[level][..., None]
            if len(sums) <= level:
                sums.append(layer)
            else:
                sums[level] += layer
    return sums


def _collapse(sums: list, coarse: np.ndarray) -> np.ndarray:
    for level in range(len(sums) - 1, -1, -1):
        coarse = sums[level] + _up(coarse, sums[level])
    return coarse


def _strips(height: int, width: int, halo: int, max_pixels: int, step: int) -> Iterator[tuple]:
    """(top, bottom, ext_top, ext_bottom) of strips whose own rows cover the image, tops on multiples of ``step``,
    each extended by ``halo`` rows where the image goes on."""
    rows = max(step, (max_pixels // max(width, 1) - 2 * halo) // step * step)
    if rows >= height:
        rows = height
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        yield top, bottom, max(0, top - halo), min(height, bottom + halo)


def mertens_strips(
    render: Render, height: int, width: int, max_pixels: int = 1 << 21
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Exposure fusion of the 8-bit exposures that ``render(top, bottom)`` gives for rows ``top:bottom`` (a list of
    uint8 BGR (rows, W, 3) arrays, the same list for the same rows), strip by strip.

    Args:
        render (callable): ``(top, bottom) -> [uint8 (bottom - top, W, 3), ...]``, one per exposure.
        height (int): Image height.
        width (int): Image width.
        max_pixels (int): Pixels of a strip with its halo (its working memory is about 150 bytes each); a strip
            has at least 8 rows of its own. Default: 2 ** 21.

    Yields:
        (top, bottom, rows): float32 BGR rows ``top:bottom`` of the fused image (OpenCV's ``MergeMertens`` result,
        unclipped), top to bottom.
    """
    levels = mertens_levels(height, width)
    base = min(BASE_LEVEL, levels)
    step = 1 << base
    coarse_codes, coarse_weights = [], []
    for top, bottom, ext_top, ext_bottom in _strips(height, width, HALO_A, max_pixels, step):
        codes = render(ext_top, ext_bottom)
        weights = _weights(codes)
        first, last = (top - ext_top) >> base, -((ext_top - bottom) >> base)  # own rows at the base level
        for index, (code, weight) in enumerate(zip(codes, weights)):
            image, gauss = _down(_as_float(code), base)[-1], _down(weight, base)[-1]
            if index == len(coarse_codes):
                coarse_codes.append([]), coarse_weights.append([])
            coarse_codes[index].append(image[first:last]), coarse_weights[index].append(gauss[first:last])
        del codes, weights
    coarse_codes = [np.concatenate(parts) for parts in coarse_codes]
    coarse_weights = [np.concatenate(parts) for parts in coarse_weights]
    sums = _weighted_laplacians(coarse_codes, coarse_weights, levels - base, coarsest_too=True)
    del coarse_codes, coarse_weights
    coarse = _collapse(sums[:-1], sums[-1])  # the fused image at the base level
    del sums
    for top, bottom, ext_top, ext_bottom in _strips(height, width, HALO_B, max_pixels, step):
        codes = render(ext_top, ext_bottom)
        sums = _weighted_laplacians(codes, _weights(codes), base, coarsest_too=False)
        del codes
        first, rows = ext_top >> base, -((ext_top - ext_bottom) >> base)  # the strip's rows at the base level
        fused = _collapse(sums, coarse[first : first + rows])
        yield top, bottom, fused[top - ext_top : bottom - ext_top]
