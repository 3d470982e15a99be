"""Classical multi-exposure merges (OpenCV's Debevec and Mertens) that the quality evaluation lists beside the
networks, and the exposure-matching helpers they need. Knows no network.

The merges work on RGB arrays (H, W, 3) of LDR values in [0, 1]; BGR exists only inside the OpenCV calls.
"""

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    'linearize_display',
    'merge_debevec',
    'merge_debevec_calibrated',
    'merge_mertens',
]


def _check_bracket(ldrs: Sequence[np.ndarray], exposures: Sequence[float], name: str) -> np.ndarray:
    times = np.asarray(exposures, dtype=np.float64).ravel()
    if len(ldrs) < 2 or times.size != len(ldrs):
        raise ValueError(
            f'{name}: expected at least 2 LDR frames and one exposure time per frame; got {len(ldrs)} '
            f'frames and {times.size} times.'
        )
    shapes = {np.asarray(ldr).shape for ldr in ldrs}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
        raise ValueError(f'{name}: expected RGB frames (H, W, 3) of one size; got shapes {sorted(shapes)}.')
    if not (np.isfinite(times).all() and (times > 0).all()):
        raise ValueError(f'{name}: exposure times must be finite and positive; got {times.tolist()}.')
    return times


def _gamma_response(levels: int, gamma: float) -> np.ndarray:
    """OpenCV camera response (levels, 1, 3) float32: pixel value z -> relative exposure (z / max) ** gamma."""
    z = np.arange(levels, dtype=np.float64)
    z[0] = 0.5  # log(0) would make black pixels -inf; half a code value keeps them finite
    response = (z / (levels - 1)) ** gamma
    return np.repeat(response.astype(np.float32)[:, None, None], 3, axis=2)


def merge_debevec(ldrs: Sequence[np.ndarray], exposures: Sequence[float], gamma: float = 2.2) -> tuple:
    """OpenCV's ``MergeDebevec`` with the known response of the data (L ** gamma) and the exposure times.

    Radiance is the triangle-weighted geometric mean of L_i ** gamma / t_i, so it comes out in the units of the
    exposure times (the GT's, for t = 2 ** EV). Frames are merged as 16-bit integers where OpenCV supports it
    (OpenCV 5), else as 8-bit (OpenCV 4.x accepts only 8-bit input).

    Args:
        ldrs (sequence of np.ndarray): T RGB frames (H, W, 3) in [0, 1].
        exposures (sequence of float): Exposure times t_i.
        gamma (float): The LDR encoding gamma. Default: 2.2.

    Returns:
        tuple[np.ndarray, int]: (H, W, 3) float32 linear RGB radiance, and the bit depth that was merged (16 or 8).
    """
    times = _check_bracket(ldrs, exposures, 'merge_debevec').astype(np.float32)
    merge = cv2.createMergeDebevec()
    for bits, dtype in ((16, np.uint16), (8, np.uint8)):
        levels = 2**bits
        frames = [np.round(np.clip(ldr, 0, 1)[..., ::-1] * (levels - 1)).astype(dtype) for ldr in ldrs]
        try:
            hdr = merge.process(frames, times.copy(), _gamma_response(levels, gamma))
        except cv2.error:
            if bits == 8:
                raise
            continue
        return np.ascontiguousarray(hdr[..., ::-1], dtype=np.float32), bits
    raise AssertionError('unreachable')  # the 8-bit attempt either returns or raises


def merge_debevec_calibrated(ldrs: Sequence[np.ndarray], exposures: Sequence[float]) -> np.ndarray:
    """OpenCV's ``CalibrateDebevec`` on the frames themselves, then ``MergeDebevec`` with that response.

    The classical pipeline for a bracket of unknown camera response (for example JPEGs through a camera's tone
    curve). OpenCV calibrates 8-bit images only, so the frames are rounded to 8 bits. The recovered response is
    known up to a factor, so the radiance has an arbitrary scale: score it after fitting one global scale.

    Args:
        ldrs (sequence of np.ndarray): T RGB frames (H, W, 3) in [0, 1].
        exposures (sequence of float): Exposure times t_i.

    Returns:
        np.ndarray: (H, W, 3) float32 linear RGB radiance, relative scale.
    """
    times = _check_bracket(ldrs, exposures, 'merge_debevec_calibrated').astype(np.float32)
    frames = [np.round(np.clip(ldr, 0, 1)[..., ::-1] * 255).astype(np.uint8) for ldr in ldrs]
    response = cv2.createCalibrateDebevec().process(frames, times.copy())
    hdr = cv2.createMergeDebevec().process(frames, times.copy(), response)
    return np.ascontiguousarray(hdr[..., ::-1], dtype=np.float32)


def merge_mertens(ldrs: Sequence[np.ndarray]) -> np.ndarray:
    """OpenCV's ``MergeMertens`` exposure fusion: a display-referred (gamma-encoded) image, not radiance.

    Frames are passed as float32 on OpenCV's 0-255 scale, so 16-bit precision is kept.

    Args:
        ldrs (sequence of np.ndarray): T RGB frames (H, W, 3) in [0, 1].

    Returns:
        np.ndarray: (H, W, 3) float32 RGB, about [0, 1] (the Laplacian blend can overshoot slightly).
    """
    _check_bracket(ldrs, np.ones(len(ldrs)), 'merge_mertens')
    frames = [np.ascontiguousarray(np.clip(ldr, 0, 1)[..., ::-1] * 255, dtype=np.float32) for ldr in ldrs]
    fused = cv2.createMergeMertens().process(frames)
    return np.ascontiguousarray(fused[..., ::-1], dtype=np.float32)


def linearize_display(image: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """Undo a display gamma: ``clip(image, 0, 1) ** gamma`` (float32), e.g. for Mertens fusion before HDR metrics."""
    return (np.clip(np.asarray(image, dtype=np.float64), 0, 1) ** gamma).astype(np.float32)
