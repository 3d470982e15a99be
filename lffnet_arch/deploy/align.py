"""Global pre-alignment of a bracket to its reference frame (camera shake): MTB or ECC; the network handles the rest."""

import math
import warnings
from collections.abc import Sequence
from typing import Union

import cv2
import numpy as np

from lffnet_arch.choices import ALIGN_METHODS

__all__ = ['ALIGN_METHODS', 'align_frames']

_ECC_MOTIONS = {'translation': cv2.MOTION_TRANSLATION, 'euclidean': cv2.MOTION_EUCLIDEAN, 'affine': cv2.MOTION_AFFINE}
_ECC_MAX_SIDE = 1024  # ECC runs on a copy downscaled to this longest side; the warp is scaled back.

MIN_ALIGN_SIDE = 16


def _luminance(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.float32), cv2.COLOR_RGB2GRAY)


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


def _mtb_align(frames: list[np.ndarray], ref_idx: int) -> tuple[list[np.ndarray], list[dict]]:
    height, width = frames[0].shape[:2]
    mtb = cv2.createAlignMTB()
    # Each pyramid level halves the image; stop while the coarsest level keeps at least 16 pixels a side.
    mtb.setMaxBits(int(max(1, min(6, math.floor(math.log2(max(min(height, width), 32) / 16))))))
    grays = [np.round(_luminance(f) * 255).astype(np.uint8) for f in frames]
    aligned, found = [], []
    for i, frame in enumerate(frames):
        if i == ref_idx:
            aligned.append(frame)
            found.append(_reference_entry('mtb'))
            continue
        dx, dy = mtb.calculateShift(grays[ref_idx], grays[i])
        warp = np.float32([[1, 0, dx], [0, 1, dy]])
        aligned.append(
            cv2.warpAffine(frame, warp, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        )
        # The frame is moved by (dx, dy): its content sat at (-dx, -dy) from the reference's.
        found.append(_found('mtb', np.float64([[1, 0, -dx], [0, 1, -dy]]), width, height))
    return aligned, found


def _ecc_image(frame: np.ndarray, time: float, low: float, high: float, scale: float, gamma: float) -> np.ndarray:
    """Log radiance clipped to the range both frames of a pair expose well: comparable across exposures."""
    radiance = np.clip(_luminance(frame) ** gamma / time, low, high)
    image = np.log(radiance).astype(np.float32)
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def _ecc_align(
    frames: list[np.ndarray], times: np.ndarray, ref_idx: int, motion: str, gamma: float
) -> tuple[list[np.ndarray], list[dict]]:
    height, width = frames[0].shape[:2]
    scale = min(1.0, _ECC_MAX_SIDE / max(height, width))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    aligned, found = [], []
    for i, frame in enumerate(frames):
        if i == ref_idx:
            aligned.append(frame)
            found.append(_reference_entry('ecc'))
            continue
        t_short, t_long = sorted((times[i], times[ref_idx]))
        # Saturation of the longer frame bounds the radiance from above, 8-bit quantisation of the shorter from below.
        low, high = (2 / 255) ** gamma / t_short, 0.95**gamma / t_long
        if not low < high:
            warnings.warn(
                f'ECC alignment skipped frame {i}: it shares no well-exposed range with the reference.', stacklevel=3
            )
            aligned.append(frame)
            found.append(_unaligned('ecc', 'skipped (no well-exposed range shared with the reference), left unaligned'))
            continue
        template = _ecc_image(frames[ref_idx], times[ref_idx], low, high, scale, gamma)
        moving = _ecc_image(frame, times[i], low, high, scale, gamma)
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(template, moving, warp, _ECC_MOTIONS[motion], criteria, None, 1)
        except cv2.error as error:
            warnings.warn(f'ECC alignment of frame {i} did not converge; frame left as it is ({error}).', stacklevel=3)
            aligned.append(frame)
            reason = (getattr(error, 'err', None) or 'OpenCV error').strip().rstrip('.')  # err: OpenCV's message alone
            found.append(_unaligned('ecc', f'did not converge ({reason}), left unaligned'))
            continue
        warp[:, 2] /= scale
        aligned.append(
            cv2.warpAffine(
                frame,
                warp,
                (width, height),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
        )
        found.append(_found('ecc', warp, width, height))  # the warp maps reference pixels to frame pixels
    return aligned, found


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
    if method not in ALIGN_METHODS:
        raise ValueError(f'align must be one of {ALIGN_METHODS} or None, got {method!r}.')
    if ecc_motion not in _ECC_MOTIONS:
        raise ValueError(f'ecc_motion must be one of {tuple(_ECC_MOTIONS)}, got {ecc_motion!r}.')
    frames = [np.ascontiguousarray(f, dtype=np.float32) for f in frames]
    height, width = frames[ref_idx].shape[:2]
    if min(height, width) < MIN_ALIGN_SIDE:  # OpenCV's aligners fail on such sizes, MTB inside native code
        raise ValueError(
            f'Frames of {width} x {height} pixels are too small to align (at least {MIN_ALIGN_SIDE} pixels a side); '
            'pass --align none (align=None) for such brackets.'
        )
    if method == 'mtb':
        aligned, info = _mtb_align(frames, ref_idx)
    else:
        aligned, info = _ecc_align(frames, np.asarray(exposures, dtype=np.float64), ref_idx, ecc_motion, gamma)
    return (aligned, info) if return_info else aligned
