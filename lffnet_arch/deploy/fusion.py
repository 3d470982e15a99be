"""Fusing an exposure bracket with a trained network, at any resolution (whole image or tiles).

Conventions (docs/design.md §10): frames are sorted by exposure time and the times divided by the shortest, so the
network sees t = 1 for the shortest frame as in training; the network input of frame i is cat(L_i, g(L_i) / t_i)
(:func:`lffnet_arch.hdr_input.network_input`), g the camera's inverse response: calibrated from the bracket itself
by default (:func:`lffnet_arch.response.resolve.resolve_response`), or given.
"""

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from lffnet_arch.archs import MEASURED_ARCHS, forward_bytes_per_pixel
from lffnet_arch.choices import PRECISION_NAMES
from lffnet_arch.deploy.align import align_frames
from lffnet_arch.fileio.image import ldr_to_float
from lffnet_arch.hdr_input import network_input
from lffnet_arch.response.curves import Response
from lffnet_arch.response.resolve import resolve_response
from lffnet_arch.tiling import auto_tile_size, module_device, tiled_forward

__all__ = ['MAX_EXPOSURE_RATIO', 'PRECISIONS', 'fuse']

PRECISIONS = dict(zip(PRECISION_NAMES, (None, torch.float16, torch.bfloat16)))
# Largest ratio of the longest to the shortest exposure time accepted: 2 ** 20, 20 stops, far beyond any bracket
# (Kalantari's span 4 stops); larger ratios come from wrong units or typos and overflow L ** gamma / t.
MAX_EXPOSURE_RATIO = 2.0**20


def _frame_to_float(frame: Any, index: int) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f'Frame {index}: expected an RGB array of shape (H, W, 3), got shape {arr.shape}.')
    if not np.issubdtype(arr.dtype, np.floating):
        return ldr_to_float(arr, source=f'{index} (float values in [0, 1] are accepted too)')
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise ValueError(
            f'Frame {index}: float frames must be finite and in [0, 1]; found values in '
            f'[{np.nanmin(arr):g}, {np.nanmax(arr):g}].'
        )
    return arr


def _check_bracket(frames: list[np.ndarray], times: np.ndarray, num_exposure: Optional[int]) -> None:
    if len(frames) < 2:
        raise ValueError(f'HDR fusion needs at least 2 frames of different exposure; got {len(frames)}.')
    if times.size != len(frames):
        raise ValueError(f'Got {times.size} exposure times for {len(frames)} frames; give one per frame.')
    if num_exposure is not None and len(frames) != num_exposure:
        raise ValueError(f'The network fuses num_exposure={num_exposure} frames; got {len(frames)}.')
    sizes = [f.shape[:2] for f in frames]
    if len(set(sizes)) > 1:
        found = ', '.join(f'frame {i}: {h}x{w}' for i, (h, w) in enumerate(sizes))
        raise ValueError(f'All frames must have the same size (H x W); found {found}.')
    if not (np.isfinite(times).all() and (times > 0).all()):
        raise ValueError(f'Exposure times must be finite and positive; got {times.tolist()}.')
    if np.unique(times).size != times.size:
        raise ValueError(f'Exposure times must differ; got duplicates in {times.tolist()}.')
    with np.errstate(over='ignore'):
        ratio = float(times.max() / times.min())
    if not (math.isfinite(ratio) and ratio <= MAX_EXPOSURE_RATIO):
        raise ValueError(
            f'Exposure times {times.tolist()} span a ratio of {ratio:g} between the longest and the shortest; '
            f'expected at most {MAX_EXPOSURE_RATIO:g} (20 stops). Give the times in one unit (seconds).'
        )


def _sorted_bracket(frames: Sequence[Any], exposures: Sequence[float], model: nn.Module, ref_idx: Optional[int]):
    """The checked bracket sorted by exposure, its times divided by the shortest, and the reference frame's index."""
    frames = [_frame_to_float(f, i) for i, f in enumerate(frames)]
    times = np.asarray(exposures, dtype=np.float64).ravel()
    _check_bracket(frames, times, getattr(model, 'num_exposure', None))
    count = len(frames)
    if ref_idx is not None and not 0 <= ref_idx < count:
        raise ValueError(f'ref_idx must be in [0, {count - 1}] for {count} frames, got {ref_idx}.')
    order = np.argsort(times, kind='stable')
    reference = ref_idx if ref_idx is not None else getattr(model, 'ref_idx', (count - 1) // 2)
    return [frames[i] for i in order], times[order] / times[order[0]], reference


@contextlib.contextmanager
def _reference(model: nn.Module, ref_idx: Optional[int]) -> Iterator[None]:
    """Run ``model`` with reference frame ``ref_idx`` (its own when None), restoring it afterwards."""
    if ref_idx is None or getattr(model, 'ref_idx', None) == ref_idx:
        yield
        return
    if not hasattr(model, 'ref_idx'):
        raise ValueError(f'{type(model).__name__} has no ref_idx attribute, so the reference frame cannot be chosen.')
    original = model.ref_idx
    model.ref_idx = ref_idx
    try:
        yield
    finally:
        model.ref_idx = original


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {tuple(PRECISIONS)}, got {precision!r}.')
    if PRECISIONS[precision] is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def _resolve_tile(tile_size: Union[None, int, str], model: nn.Module, device: torch.device) -> Optional[int]:
    if tile_size != 'auto':
        return tile_size
    arch = type(model).__name__
    bytes_per_pixel = forward_bytes_per_pixel(
        arch if arch in MEASURED_ARCHS else None,
        num_feat=getattr(model, 'num_feat', 64),
        num_exposure=getattr(model, 'num_exposure', 3),
    )
    return auto_tile_size(bytes_per_pixel, device=device)


def _align(frames: list, times: np.ndarray, reference: int, align: Optional[str], response: Response) -> tuple:
    """The frames globally aligned to the reference and what was found (:func:`align_frames`), or as they are and
    None when ``align`` is None."""
    if align is None:
        return frames, None
    return align_frames(frames, times, reference, align, gamma=response.gamma_value or 2.2, return_info=True)


def fuse(
    frames: Sequence[np.ndarray],
    exposures: Sequence[float],
    model: nn.Module,
    ref_idx: Optional[int] = None,
    tile_size: Union[None, int, str] = None,
    tile_overlap: int = 32,
    precision: str = 'fp32',
    gamma: Optional[float] = None,
    align: Optional[str] = None,
    progress: Any = None,
    response: Union[str, 'Response', None] = 'auto',
    return_response: bool = False,
) -> Union[np.ndarray, tuple]:
    """Fuse an exposure bracket into one linear HDR image.

    The frames are sorted by exposure time, the times divided by the shortest (t = 1 for the shortest frame, as in
    training), and the network input built as lq = cat(L, g(L) / t) per frame: (1, T, 6, H, W), with g the camera's
    inverse response, calibrated from the bracket by default.

    Args:
        frames (sequence of np.ndarray): T RGB frames (H, W, 3): float in [0, 1], or uint8 / uint16 (divided by 255
            / 65535).
        exposures (sequence of float): Exposure times in any one unit (seconds, or 2 ** EV), one per frame.
        model (nn.Module): Network mapping (1, T, 6, H, W) to (1, 3, H, W), e.g. from :func:`load_model`; its
            ``num_exposure`` must equal T.
        ref_idx (int, optional): Reference frame in the exposure-sorted order; the output is aligned with it.
            Default: the network's own ``ref_idx`` ((T - 1) // 2, the middle exposure, in the paper's setup). Another
            value runs the network with a reference it was not trained with.
        tile_size (int | 'auto', optional): Run tile by tile (:func:`~lffnet_arch.tiling.tiled_forward`) with
            this tile size, or one picked from the free memory with ``'auto'``; None runs the whole image at once.
        tile_overlap (int): Overlap of neighbouring tiles in pixels. Default: 32.
        precision (str): ``'fp32'``, or ``'fp16'`` / ``'bf16'`` with ``torch.autocast`` on the model's device (the
            RFFT blocks keep their FFTs in fp32). Default: 'fp32'.
        gamma (float, optional): Linearise with L ** gamma; the same as ``response=f'gamma:{gamma}'`` (which it
            overrides). Default: None.
        align (str, optional): Global pre-alignment to the reference, ``'mtb'`` or ``'ecc'``
            (:func:`align_frames`). Default: None.
        progress (callable | tqdm, optional): Tile progress, passed to ``tiled_forward``.
        response (str | Response): The inverse camera response: ``'auto'`` (calibrated from the frames, the
            default), ``'gamma:2.2'`` (the Kalantari protocol), ``'srgb'``, ``'linear'``, a response ``.json`` or a
            :class:`~lffnet_arch.response.Response` (see :func:`~lffnet_arch.response.resolve.resolve_response`).
        return_response (bool): Also return the response used and notes on the fusion (below). Default: False.

    Returns:
        np.ndarray: (H, W, 3) float32 linear HDR RGB, in [0, 1] in the units of the shortest exposure; with
        ``return_response``, (hdr, response, info): ``info`` says how the response was found (``source``, ...) and
        holds ``alignment``: None when ``align`` is None, else one dict per frame in exposure order (shift ``dx``,
        ``dy`` in pixels, ``rotation`` in degrees, ``converged``, ...; see :func:`align_frames`).

    Raises:
        ValueError: Fewer than 2 frames, frames of different sizes (named), non-RGB or out-of-range frames,
            duplicate, non-positive or non-finite exposure times or a longest-to-shortest ratio above
            :data:`MAX_EXPOSURE_RATIO`, as many exposures as frames not given, T different from the network's
            ``num_exposure``, an invalid ``ref_idx`` / ``precision`` / ``align``, or a non-finite network output.
    """
    frames, times, reference = _sorted_bracket(frames, exposures, model, ref_idx)
    if gamma is not None:
        response = Response.gamma(float(gamma))
    response, info = resolve_response(response, frames, times)
    frames, alignment = _align(frames, times, reference, align, response)

    lq = network_input(frames, times, response=response)  # (1, T, 6, H, W)
    device = module_device(model)
    tile = _resolve_tile(tile_size, model, device)
    with torch.no_grad(), _reference(model, ref_idx), _autocast(device, precision):
        if tile is None:
            out = model(lq.to(device))
        else:
            out = tiled_forward(model, lq, tile, tile_overlap, progress)
    hdr = np.ascontiguousarray(out[0].float().permute(1, 2, 0).cpu().numpy())
    finite = np.isfinite(hdr)
    if not finite.all():
        raise ValueError(
            f'The network output has {int((~finite).sum())} NaN/Inf values of {hdr.size}: its weights are probably '
            'broken (e.g. a run that diverged); nothing is written.'
        )
    return (hdr, response, {**info, 'alignment': alignment}) if return_response else hdr
