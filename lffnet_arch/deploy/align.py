"""Global pre-alignment of a bracket to its reference frame (camera shake): MTB or ECC; the network handles the rest.

:func:`estimate_alignment` finds each frame's warp (from frames as they are: float32, or uint8 / uint16 converted a
few rows at a time) and :func:`warp_rows` applies one to a band of rows, reading and converting only the source
rows the band needs, so a tiled fusion never holds a full-size float copy of a frame; :func:`align_frames` does both
for whole frames. A band warped by :func:`warp_rows` equals the same rows of the whole warped frame.
"""

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple, Optional, Union

import cv2
import numpy as np

from lffnet_arch.choices import ALIGN_METHODS
from lffnet_arch.fileio.image import ldr_to_float

__all__ = ['ALIGN_METHODS', 'Warp', 'align_frames', 'estimate_alignment', 'frame_to_float', 'warp_rows']

_ECC_MOTIONS = {'translation': cv2.MOTION_TRANSLATION, 'euclidean': cv2.MOTION_EUCLIDEAN, 'affine': cv2.MOTION_AFFINE}
_ECC_MAX_SIDE = 1024  # ECC runs on a copy downscaled to this longest side; the warp is scaled back.

MIN_ALIGN_SIDE = 16
_STRIP_PIXELS = 1 << 22  # integer frames are converted this many pixels (rounded to whole rows) at a time


class Warp(NamedTuple):
    """One frame's global warp: ``matrix`` (2 x 3, float64) maps reference (output) pixels to frame pixels, as
    ``cv2.warpAffine`` takes it with ``WARP_INVERSE_MAP``; ``interpolation`` is ``cv2.INTER_NEAREST`` (MTB's whole
    pixels) or ``cv2.INTER_LINEAR`` (ECC)."""

    matrix: np.ndarray
    interpolation: int


def frame_to_float(frame: np.ndarray) -> np.ndarray:
    """A frame (or rows of one) as float32 in [0, 1]: uint8 / uint16 through :func:`ldr_to_float`, float frames as
    they are (no copy when already float32)."""
    if np.issubdtype(frame.dtype, np.floating):
        return np.asarray(frame, dtype=np.float32)
    return ldr_to_float(frame)


def _row_strips(frame: np.ndarray):
    """(start, stop) row ranges of about :data:`_STRIP_PIXELS` pixels covering ``frame``."""
    rows = max(1, _STRIP_PIXELS // max(1, frame.shape[1]))
    return [(top, min(top + rows, frame.shape[0])) for top in range(0, frame.shape[0], rows)]


def _luminance(frame: np.ndarray) -> np.ndarray:
    """float32 luminance (H, W) of an RGB frame: float frames at once, integer frames converted strip by strip (the
    same values, without a full-size float copy of the frame)."""
    if np.issubdtype(frame.dtype, np.floating):
        return cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    gray = np.empty(frame.shape[:2], np.float32)
    for top, bottom in _row_strips(frame):
        gray[top:bottom] = cv2.cvtColor(ldr_to_float(frame[top:bottom]), cv2.COLOR_RGB2GRAY)
    return gray


def _gray_codes(frame: np.ndarray) -> np.ndarray:
    """8-bit luminance codes of a frame, as MTB takes them."""
    codes = np.empty(frame.shape[:2], np.uint8)
    for top, bottom in _row_strips(frame):
        codes[top:bottom] = np.round(_luminance(frame[top:bottom]) * 255).astype(np.uint8)
    return codes


def _entry(method: str, converged: bool, shift=(None, None), rotation=None, note=None, reference=False) -> dict:
    """One frame's entry of ``align_frames(..., return_info=True)``."""
    dx, dy = shift
    return dict(reference=reference, method=method, converged=converged, dx=dx, dy=dy, rotation=rotation, note=note)


def _found(method: str, warp: np.ndarray, width: int, height: int) -> dict:
    """What one frame's alignment found: the warp from reference to frame coordinates (2 x 3) as the displacement
    of the image centre and a rotation."""
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    dx, dy = warp[:, :2].astype(np.float64) @ centre + warp[:, 2] - centre
    rotation = math.degrees(math.atan2(float(warp[1, 0]), float(warp[0, 0])))
    return _entry(method, True, (float(dx), float(dy)), rotation + 0.0)


def _unaligned(method: str, note: str) -> dict:
    return _entry(method, False, note=note)


def _reference_entry(method: str) -> dict:
    return _entry(method, True, (0.0, 0.0), 0.0, reference=True)


def _mtb_estimate(frames: list[np.ndarray], ref_idx: int) -> tuple[list[Optional[Warp]], list[dict]]:
    height, width = frames[0].shape[:2]
    mtb = cv2.createAlignMTB()
    # Each pyramid level halves the image; stop while the coarsest level keeps at least 16 pixels a side.
    mtb.setMaxBits(int(max(1, min(6, math.floor(math.log2(max(min(height, width), 32) / 16))))))
    reference = _gray_codes(frames[ref_idx])
    warps, found = [], []
    for i, frame in enumerate(frames):
        if i == ref_idx:
            warps.append(None)
            found.append(_reference_entry('mtb'))
            continue
        dx, dy = mtb.calculateShift(reference, _gray_codes(frame))
        # The frame is moved by (dx, dy): its content sat at (-dx, -dy) from the reference's.
        inverse = np.float64([[1, 0, -dx], [0, 1, -dy]])
        warps.append(Warp(inverse, cv2.INTER_NEAREST))
        found.append(_found('mtb', inverse, width, height))
    return warps, found


def _ecc_image(frame: np.ndarray, time: float, low: float, high: float, scale: float, gamma: float) -> np.ndarray:
    """Log radiance clipped to the range both frames of a pair expose well: comparable across exposures. Computed a
    strip of rows at a time (the same values as at once)."""
    image = np.empty(frame.shape[:2], np.float32)
    for top, bottom in _row_strips(frame):
        radiance = np.clip(_luminance(frame[top:bottom]) ** gamma / time, low, high)
        image[top:bottom] = np.log(radiance)
        del radiance
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def _ecc_estimate(
    frames: list[np.ndarray], times: np.ndarray, ref_idx: int, motion: str, gamma: float
) -> tuple[list[Optional[Warp]], list[dict]]:
    height, width = frames[0].shape[:2]
    scale = min(1.0, _ECC_MAX_SIDE / max(height, width))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    warps, found = [], []
    for i, frame in enumerate(frames):
        if i == ref_idx:
            warps.append(None)
            found.append(_reference_entry('ecc'))
            continue
        t_short, t_long = sorted((times[i], times[ref_idx]))
        # Saturation of the longer frame bounds the radiance from above, 8-bit quantisation of the shorter from below.
        low, high = (2 / 255) ** gamma / t_short, 0.95**gamma / t_long
        if not low < high:
            warnings.warn(
                f'ECC alignment skipped frame {i}: it shares no well-exposed range with the reference.', stacklevel=4
            )
            warps.append(None)
            found.append(_unaligned('ecc', 'skipped (no well-exposed range shared with the reference), left unaligned'))
            continue
        template = _ecc_image(frames[ref_idx], times[ref_idx], low, high, scale, gamma)
        moving = _ecc_image(frame, times[i], low, high, scale, gamma)
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(template, moving, warp, _ECC_MOTIONS[motion], criteria, None, 1)
        except cv2.error as error:
            warnings.warn(f'ECC alignment of frame {i} did not converge; frame left as it is ({error}).', stacklevel=4)
            warps.append(None)
            reason = (getattr(error, 'err', None) or 'OpenCV error').strip().rstrip('.')  # err: OpenCV's message alone
            found.append(_unaligned('ecc', f'did not converge ({reason}), left unaligned'))
            continue
        warp[:, 2] /= scale
        warps.append(Warp(warp.astype(np.float64), cv2.INTER_LINEAR))
        found.append(_found('ecc', warp, width, height))  # the warp maps reference pixels to frame pixels
    return warps, found


def warp_rows(frame: np.ndarray, warp: Optional[Warp], top: int, bottom: int) -> np.ndarray:
    """Rows ``top:bottom`` of ``frame`` warped onto the reference (:class:`Warp`; None: as it is), float32 (rows,
    W, 3) in [0, 1]. Only the source rows the band maps to (and two more on each side) are converted to float, and
    the result equals the same rows of the whole frame warped at once; uncovered borders repeat the edge pixels."""
    height, width = frame.shape[:2]
    if warp is None:
        return frame_to_float(frame[top:bottom])
    matrix = warp.matrix
    if top == 0 and bottom == height:  # the whole frame: exactly what warping it at once does
        source, shifted = frame_to_float(frame), matrix
    else:
        rows = [matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2] for x in (0, width - 1) for y in (top, bottom - 1)]
        low = min(max(math.floor(min(rows)) - 2, 0), height - 1)
        high = min(max(math.ceil(max(rows)) + 3, low + 1), height)
        source, shifted = frame_to_float(frame[low:high]), matrix.copy()
        shifted[0, 2] += matrix[0, 1] * top
        shifted[1, 2] += matrix[1, 1] * top - low
    return cv2.warpAffine(
        np.ascontiguousarray(source),
        shifted,
        (width, bottom - top),
        flags=warp.interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def estimate_alignment(
    frames: Sequence[np.ndarray],
    exposures: Sequence[float],
    ref_idx: int,
    method: str = 'mtb',
    ecc_motion: str = 'euclidean',
    gamma: float = 2.2,
) -> tuple[list[Optional[Warp]], list[dict]]:
    """Each frame's warp onto the reference, without warping anything: :func:`align_frames`' search on frames as
    they are (float32 in [0, 1], or uint8 / uint16, read a strip of rows at a time).

    Returns:
        tuple[list[Warp | None], list[dict]]: A :class:`Warp` per frame (None for the reference and frames left
        unaligned) and what was found, as :func:`align_frames` describes.
    """
    if method not in ALIGN_METHODS:
        raise ValueError(f'align must be one of {ALIGN_METHODS} or None, got {method!r}.')
    if ecc_motion not in _ECC_MOTIONS:
        raise ValueError(f'ecc_motion must be one of {tuple(_ECC_MOTIONS)}, got {ecc_motion!r}.')
    frames = [np.asarray(f) for f in frames]
    height, width = frames[ref_idx].shape[:2]
    if min(height, width) < MIN_ALIGN_SIDE:  # OpenCV's aligners fail on such sizes, MTB inside native code
        raise ValueError(
            f'Frames of {width} x {height} pixels are too small to align (at least {MIN_ALIGN_SIDE} pixels a side); '
            'pass --align none (align=None) for such brackets.'
        )
    if method == 'mtb':
        return _mtb_estimate(frames, ref_idx)
    return _ecc_estimate(frames, np.asarray(exposures, dtype=np.float64), ref_idx, ecc_motion, gamma)


def align_frames(
    frames: Sequence[np.ndarray],
    exposures: Sequence[float],
    ref_idx: int,
    method: str = 'mtb',
    ecc_motion: str = 'euclidean',
    gamma: float = 2.2,
    return_info: bool = False,
) -> Union[list[np.ndarray], tuple[list[np.ndarray], list[dict]]]:
    """Globally align every non-reference frame to the reference (camera shake); the network handles the rest.

    ``'mtb'``: median threshold bitmaps (``cv2.createAlignMTB``), integer translation, insensitive to exposure.
    ``'ecc'``: ``cv2.findTransformECC`` (``ecc_motion``: translation, euclidean or affine) on log radiance
    ``log(Y ** gamma / t)`` clipped to the range both frames expose well, so different exposures compare. Uncovered
    borders repeat the edge pixels.

    Args:
        frames (sequence of np.ndarray): T float32 RGB frames (H, W, 3) in [0, 1].
        exposures (sequence of float): Their exposure times (any unit).
        ref_idx (int): Index of the reference frame.
        method (str): ``'mtb'`` or ``'ecc'``. Default: 'mtb'.
        ecc_motion (str): ECC motion model. Default: 'euclidean'.
        gamma (float): Gamma of the LDR encoding. Default: 2.2.
        return_info (bool): Also return what was found for each frame. Default: False.

    Returns:
        list[np.ndarray]: The frames, non-reference ones warped onto the reference. With ``return_info``,
        (frames, info): ``info`` holds one dict per frame, in the order of ``frames``, with

        - ``reference`` (bool): the reference frame (zero shift and rotation);
        - ``method``: ``'mtb'`` or ``'ecc'``;
        - ``converged`` (bool): whether a warp was found; ECC can fail to converge or skip a frame that shares no
          well-exposed range with the reference, which is then left unaligned (MTB's search always ends);
        - ``dx``, ``dy`` (float, pixels): where the frame's content lay relative to the reference's, measured at the
          image centre (the point at (x, y) in the reference was at (x + dx, y + dy) in the frame; the warp moved
          it back); None when not converged;
        - ``rotation`` (float, degrees): the frame's rotation relative to the reference, positive clockwise as the
          image is displayed (y down); None when not converged;
        - ``note`` (str | None): for a frame not converged, why and what was done (``'... left unaligned'``).
    """
    frames = [np.asarray(f) for f in frames]
    warps, info = estimate_alignment(frames, exposures, ref_idx, method, ecc_motion, gamma)
    aligned = [
        np.ascontiguousarray(frame_to_float(f)) if w is None else warp_rows(f, w, 0, f.shape[0])
        for f, w in zip(frames, warps)
    ]
    return (aligned, info) if return_info else aligned
