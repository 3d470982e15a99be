"""A bracket made ready for calibration: codes per frame, exposure times checked, frames reduced (area averaging)
to at most ``max_side`` pixels a side and registered to the middle exposure (Euclidean ECC on histogram-matched gray
images, so exposure differences do not matter), with the pixels every frame covers.

Used by :mod:`lffnet_arch.response.calibrate`; the names are internal to the response package.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Preparation -----------------------------------------------------------------------------------------------------


@dataclass
class _Bracket:
    """A bracket reduced to what calibration reads, frames in ascending exposure, registered.

    Attributes:
        frames: (T, h, w, 3) float32 codes, reduced and 3 x 3 averaged (the samples' values); 2 (clipped) or -1
            (too dark, or outside the registered image) where the average's neighbourhood leaves the valid codes.
        rough: (h, w, 3) local variation of the codes, the largest over the frames (low = smooth).
        pixels: (T, h, w, 3) float32 codes of single pixels on the same grid (every ``factor``-th pixel), dithered
            over one quantisation step where the data are 8- or 16-bit, so that histograms are continuous.
        inside: (h, w) bool, where every registered frame holds image content.
        log_t: (T,) log2 exposure times, ascending.
        low, high: (3,) per channel, the codes between which an observation is valid (above the darkest code seen,
            below the brightest minus the clipping margin).
        factor: Reduction factor.
    """

    frames: np.ndarray
    rough: np.ndarray
    pixels: np.ndarray
    inside: np.ndarray
    log_t: np.ndarray
    low: np.ndarray
    high: np.ndarray
    factor: int


def _checked_frame(frame: np.ndarray, index: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f'calibrate_response: frame {index} must be RGB (H, W, 3), got shape {frame.shape}.')
    if not np.issubdtype(frame.dtype, np.integer) and not np.issubdtype(frame.dtype, np.floating):
        raise ValueError(f'calibrate_response: frame {index} has dtype {frame.dtype}; expected float in [0, 1].')
    return frame


def _as_codes(frame: np.ndarray, index: int) -> np.ndarray:
    frame = _checked_frame(frame, index)
    if np.issubdtype(frame.dtype, np.integer):
        codes = frame.astype(np.float32)
        codes /= np.iinfo(frame.dtype).max  # in place: one float copy of the frame, not two
        return codes
    return frame


def _exposure_times(exposures: Sequence[float], count: int) -> np.ndarray:
    times = np.asarray(exposures, dtype=np.float64).ravel()
    if count < 2:
        raise ValueError(f'calibrate_response needs at least 2 frames, got {count}.')
    if times.size != count:
        raise ValueError(f'calibrate_response: {count} frames but {times.size} exposure times.')
    if not (np.isfinite(times).all() and (times > 0).all()):
        raise ValueError(f'calibrate_response: exposure times must be finite and > 0, got {times.tolist()}.')
    if times.max() / times.min() < 1.05:
        raise ValueError(
            f'calibrate_response: the exposure times {times.tolist()} are (nearly) identical; frames of one '
            'exposure cannot determine a response. Give a bracket of different exposures.'
        )
    return times


def _quantisation_step(values: np.ndarray) -> float:
    """1 / 255 or 1 / 65535 when the values sit on that grid, else 0."""
    for levels in (255, 65535):
        if np.abs(values * levels - np.round(values * levels)).max() < 1e-3:
            return 1.0 / levels
    return 0.0


def _prepare(
    frames: Sequence[np.ndarray], exposures: Sequence[float], max_side: int, clip_margin: float, align: bool, seed: int
) -> _Bracket:
    times = _exposure_times(exposures, len(frames))
    frames = [_checked_frame(f, i) for i, f in enumerate(frames)]  # converted to codes one at a time, below
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f'calibrate_response: frames must have one size, got {sorted(shapes)}.')
    height, width = frames[0].shape[:2]
    if min(height, width) < 16:
        raise ValueError(f'calibrate_response: frames of {width} x {height} are too small (need 16 x 16).')
    order = np.argsort(times, kind='stable')
    factor = max(1, math.ceil(max(height, width) / max_side))
    size = (width // factor, height // factor)
    reduced, pixels = [], []
    for i in order:
        frame = _as_codes(frames[i], i)  # a float copy of one integer frame at a time, not of all
        small = frame if factor == 1 else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        reduced.append(np.asarray(small, dtype=np.float32))
        # A copy: a view of the subsampled pixels would keep the whole float frame alive.
        pixels.append(np.array(frame[::factor, ::factor][: size[1], : size[0]], dtype=np.float32))
        del frame, small  # before the next frame's codes are made
    reduced, pixels = np.clip(np.stack(reduced), 0.0, 1.0), np.clip(np.stack(pixels), 0.0, 1.0)
    if not (np.isfinite(reduced).all() and np.isfinite(pixels).all()):
        raise ValueError('calibrate_response: the frames hold NaN or infinite values.')
    step = _quantisation_step(pixels[:, :64, :64])
    low = pixels.min(axis=(0, 1, 2)) + max(step, 1e-3)
    high = pixels.max(axis=(0, 1, 2)) - clip_margin
    inside = np.ones(reduced.shape[1:3], bool)
    if align:
        for k, warp in enumerate(_align(reduced, low, high, (len(reduced) - 1) // 2)):
            if warp is not None:
                reduced[k], pixels[k] = _warp(reduced[k], warp), _warp(pixels[k], warp)
                inside &= _coverage(warp, size)
    if step:
        rng = np.random.default_rng(seed)
        pixels += rng.uniform(-step / 2, step / 2, pixels.shape).astype(np.float32)
    return _Bracket(
        _sample_values(reduced, inside, low, high),
        _roughness(reduced),
        pixels,
        inside,
        np.log2(times[order]),
        low,
        high,
        factor,
    )


def _sample_values(reduced: np.ndarray, inside: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """3 x 3 means of the codes; an average is an observation only where its whole neighbourhood is valid (a clipped
    neighbour would pull it), else it is marked 2 (clipped) or -1 (dark, or outside the registered image)."""
    kernel = np.ones((3, 3), np.uint8)
    values = np.stack([cv2.blur(f, (3, 3)) for f in reduced])
    for k, frame in enumerate(reduced):
        outside = (cv2.erode(frame, kernel) < low) | (cv2.dilate(frame, kernel) > high)
        values[k][outside] = np.where(frame[outside] > 0.5, 2.0, -1.0)
        values[k][~inside] = -1.0
    return values


def _roughness(reduced: np.ndarray) -> np.ndarray:
    rough = np.zeros(reduced.shape[1:], np.float32)
    for frame in reduced:
        mean = cv2.blur(frame, (7, 7))
        np.maximum(rough, np.sqrt(np.maximum(cv2.blur(frame * frame, (7, 7)) - mean * mean, 0.0)), out=rough)
    return rough


def _gray_match(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` mapped through the monotone curve that gives it ``target``'s histogram (exposure-invariant)."""
    levels = np.linspace(0.0, 1.0, 257)
    xs = np.maximum.accumulate(np.quantile(source, levels)) + levels * 1e-6
    return np.interp(source, xs, np.quantile(target, levels)).astype(np.float32)


def _align(frames: np.ndarray, low: np.ndarray, high: np.ndarray, reference: int) -> list:
    """Euclidean warps (2 x 3, OpenCV's inverse-map convention) registering every frame on the reference frame,
    by ECC on histogram-matched gray images. None for the reference, and wherever ECC fails, does not correlate
    better than no warp, or lands on an implausible shake (over 3 degrees or 5% of the frame; moving objects can
    pull it there)."""
    gray = frames.mean(axis=3)
    usable = ((frames >= low) & (frames <= high)).all(axis=3)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-4)
    limit = 0.05 * max(frames.shape[1:3]) + 2.0
    warps = []
    for k in range(len(frames)):
        mask = (usable[k] & usable[reference]).astype(np.uint8)
        if k == reference or mask.sum() < 64:
            warps.append(None)
            continue
        source = _gray_match(gray[k], gray[reference])
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            still = cv2.computeECC(gray[reference], source, mask)
            score, warp = cv2.findTransformECC(gray[reference], source, warp, cv2.MOTION_EUCLIDEAN, criteria, mask, 5)
        except cv2.error:
            warps.append(None)
            continue
        plausible = abs(float(warp[1, 0])) <= math.sin(math.radians(3.0)) and np.abs(warp[:, 2]).max() <= limit
        warps.append(warp if plausible and score > still else None)
    return warps


def _warp(image: np.ndarray, warp: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(image, warp, (width, height), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def _coverage(warp: np.ndarray, size: tuple) -> np.ndarray:
    """Where the warped frame holds image content (not the replicated border), one pixel in."""
    ones = np.ones((size[1], size[0]), np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    covered = cv2.warpAffine(ones, warp, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return cv2.erode(covered, np.ones((3, 3), np.uint8)) > 0.999
