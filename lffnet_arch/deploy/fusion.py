"""Fusing an exposure bracket with a trained network, at any resolution (whole image or tiles).

Conventions (docs/design.md §10): frames are sorted by exposure time and the times divided by the shortest, so the
network sees t = 1 for the shortest frame as in training; the network input of frame i is cat(L_i, g(L_i) / t_i)
(:func:`lffnet_arch.hdr_input.network_input`), g the camera's inverse response: calibrated from the bracket itself
by default (:func:`lffnet_arch.response.resolve.resolve_response`), or given.

Memory: the frames stay as they are given (uint8 / uint16, or float32); a tiled fusion builds each tile's input from
them when the tile runs (:class:`~lffnet_arch.deploy.stream.TileInputs`) and blends the tiles into one preallocated
(H, W, 3) float32 image (:func:`~lffnet_arch.tiling.tiled_forward_streamed`). With ``max_memory`` the tile is the
largest that the bound leaves room for after the frames and the output (:func:`~lffnet_arch.deploy.budget.plan_tile`).
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
from lffnet_arch.deploy.align import estimate_alignment
from lffnet_arch.deploy.budget import plan_strip_rows, plan_tile, strip_fixed_bytes
from lffnet_arch.deploy.stream import TileInputs
from lffnet_arch.fileio.image import check_ldr_dtype
from lffnet_arch.response.curves import Response
from lffnet_arch.response.resolve import resolve_response
from lffnet_arch.strips import column_block_for, strip_forward, strip_plan, supports_strips
from lffnet_arch.threads import cpu_flags
from lffnet_arch.tiling import auto_tile_size, module_device, tile_positions, tiled_forward_streamed

__all__ = ['MAX_EXPOSURE_RATIO', 'PRECISIONS', 'cpu_has_bf16', 'fuse', 'resolve_precision']

PRECISIONS = dict(zip(PRECISION_NAMES, (None, torch.float16, torch.bfloat16)))
# Largest ratio of the longest to the shortest exposure time accepted: 2 ** 20, 20 stops, far beyond any bracket
# (Kalantari's span 4 stops); larger ratios come from wrong units or typos and overflow L ** gamma / t.
MAX_EXPOSURE_RATIO = 2.0**20


def _compact_frame(frame: Any, index: int) -> np.ndarray:
    """A frame checked and kept as compact as it comes: uint8 / uint16 as they are, float frames as float32 (no copy
    when they are float32 already), checked to be finite and in [0, 1] without a full-size temporary."""
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f'Frame {index}: expected an RGB array of shape (H, W, 3), got shape {arr.shape}.')
    if not np.issubdtype(arr.dtype, np.floating):
        check_ldr_dtype(arr.dtype, f'{index} (float values in [0, 1] are accepted too)')
        return arr
    arr = arr.astype(np.float32, copy=False)
    low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)  # NaN propagates to both
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 1:
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
    frames = [_compact_frame(f, i) for i, f in enumerate(frames)]
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


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX-512 BF16 or AMX tiles), from its flags (False where they cannot be
    read)."""
    return bool({'avx512_bf16', 'amx_bf16'} & cpu_flags())


def resolve_precision(precision: str, device: Union[str, torch.device]) -> tuple[str, str]:
    """The precision to run with and why: ``'auto'`` is ``'bf16'`` on a CPU with bf16 instructions (the fastest
    route measured there whose output stays within 0.1 dB PSNR-mu of fp32, docs/benchmark.md) and ``'fp32'``
    elsewhere; any other name is kept."""
    if precision != 'auto':
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be "auto" or one of {tuple(PRECISIONS)}, got {precision!r}.')
        return precision, 'asked for'
    if torch.device(device).type == 'cpu' and cpu_has_bf16():
        return 'bf16', 'auto: this CPU has bf16 instructions'
    if torch.device(device).type == 'cpu':
        return 'fp32', 'auto: this CPU has no bf16 instructions'
    return 'fp32', 'auto: fp32 off the CPU'


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {tuple(PRECISIONS)}, got {precision!r}.')
    if PRECISIONS[precision] is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def _forward_bytes_per_pixel(model: nn.Module) -> float:
    arch = type(model).__name__
    return forward_bytes_per_pixel(
        arch if arch in MEASURED_ARCHS else None,
        num_feat=getattr(model, 'num_feat', 64),
        num_exposure=getattr(model, 'num_exposure', 3),
    )


def _resolve_tile(
    tile_size: Union[None, int, str],
    max_memory: Optional[int],
    model: nn.Module,
    frames: list,
    tile_overlap: int,
) -> tuple:
    """How to run: ``(tile, strip_rows)``, both None for the whole image at once. A given tile size is kept; with
    ``max_memory``, None and ``'auto'`` take the exact strip-wise pass with the most rows the bound allows
    (:func:`plan_strip_rows`) for the networks it supports, else the largest tile (:func:`plan_tile`); ``'auto'``
    without a bound sizes a tile from the free memory (:func:`auto_tile_size`)."""
    if isinstance(tile_size, (int, np.integer)) and not isinstance(tile_size, bool):
        tile_positions(1, int(tile_size), tile_overlap)  # checks the size and the overlap
        return int(tile_size), None
    if tile_size not in (None, 'auto'):
        raise ValueError(f'tile_size must be a positive integer, "auto" or None, got {tile_size!r}.')
    if max_memory is None:
        if tile_size is None:
            return None, None
        return auto_tile_size(_forward_bytes_per_pixel(model), device=module_device(model)), None
    height, width = frames[0].shape[:2]
    frame_bytes = sum(frame.nbytes for frame in frames)
    if supports_strips(model):
        halo = strip_plan(model)['halo']
        bpp = _forward_bytes_per_pixel(model)
        rows = plan_strip_rows(max_memory, height, width, frame_bytes, len(frames), bpp, halo)
        return None, (None if rows >= height else rows)
    tile = plan_tile(max_memory, height, width, frame_bytes, len(frames), _forward_bytes_per_pixel(model), tile_overlap)
    return (None if tile >= height and tile >= width else tile), None


def _alignment(frames: list, times: np.ndarray, reference: int, align: Optional[str], response: Response) -> tuple:
    """Each frame's warp onto the reference and what was found (:func:`estimate_alignment`), or no warps and None
    when ``align`` is None."""
    if align is None:
        return None, None
    return estimate_alignment(frames, times, reference, align, gamma=response.gamma_value or 2.2)


def _forward(
    model: nn.Module,
    inputs: TileInputs,
    tile: Optional[int],
    overlap: int,
    progress: Any,
    strip_rows: Optional[int] = None,
    scratch_dir: Optional[str] = None,
    max_memory: Optional[int] = None,
    precision: str = 'fp32',
) -> np.ndarray:
    """The network's (H, W, 3) float32 output: the whole image at once (``tile`` and ``strip_rows`` None), strip by
    strip (exact), or tile by tile into one preallocated image, each tile's input made from the frames when it
    runs."""
    height, width = inputs.height, inputs.width
    if tile is not None or strip_rows is not None:
        hdr = np.zeros((height, width, 3), np.float32)
        if strip_rows is not None:
            # What the bound leaves after the frames and the output image, as for the strips.
            left = (max_memory or 0) - sum(frame.nbytes for frame in inputs.frames) - strip_fixed_bytes(height, width)
            block = column_block_for(getattr(model, 'num_feat', 64), height, left // 2)  # half: allocator slack
            storage = torch.bfloat16 if precision == 'bf16' else torch.float32  # bf16 convs give bf16 maps anyway
            strip_forward(model, inputs, height, width, strip_rows, hdr, scratch_dir, block, progress, storage)
        else:
            tiled_forward_streamed(model, inputs, height, width, tile, overlap, progress, out=hdr)
        inputs.release()
        return hdr
    lq = inputs(0, 0, height, width)  # (1, T, 6, H, W)
    inputs.release()
    out = model(lq.to(module_device(model)))
    del lq
    return np.ascontiguousarray(out[0].float().permute(1, 2, 0).cpu().numpy())


def _check_finite(hdr: np.ndarray) -> None:
    """Refuse an output with NaN or Inf values (counted a strip at a time: no full-size mask)."""
    if math.isfinite(float(hdr.min())) and math.isfinite(float(hdr.max())):
        return
    bad = sum(int((~np.isfinite(hdr[top : top + 256])).sum()) for top in range(0, hdr.shape[0], 256))
    raise ValueError(
        f'The network output has {bad} NaN/Inf values of {hdr.size}: its weights are probably broken (e.g. a run '
        'that diverged); nothing is written.'
    )


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
    max_memory: Optional[int] = None,
    scratch_dir: Optional[str] = None,
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
        tile_size (int | 'auto', optional): Run tile by tile (:func:`~lffnet_arch.tiling.tiled_forward_streamed`)
            with this tile size; None runs the whole image at once. With ``max_memory``, None and ``'auto'`` take
            the largest tile the bound allows; ``'auto'`` without ``max_memory`` picks one from the free memory
            (:func:`~lffnet_arch.tiling.auto_tile_size`, kept for compatibility).
        tile_overlap (int): Overlap of neighbouring tiles in pixels. Default: 32.
        precision (str): ``'fp32'``, or ``'fp16'`` / ``'bf16'`` with ``torch.autocast`` on the model's device (the
            RFFT blocks keep their FFTs in fp32). Default: 'fp32'.
        gamma (float, optional): Linearise with L ** gamma; the same as ``response=f'gamma:{gamma}'`` (which it
            overrides). Default: None.
        align (str, optional): Global pre-alignment to the reference, ``'mtb'`` or ``'ecc'``
            (:func:`align_frames`). Default: None.
        progress (callable | tqdm, optional): Tile progress, passed to ``tiled_forward_streamed``.
        response (str | Response): The inverse camera response: ``'auto'`` (calibrated from the frames, the
            default), ``'gamma:2.2'`` (the Kalantari protocol), ``'srgb'``, ``'linear'``, a response ``.json`` or a
            :class:`~lffnet_arch.response.Response` (see :func:`~lffnet_arch.response.resolve.resolve_response`).
        return_response (bool): Also return the response used and notes on the fusion (below). Default: False.
        max_memory (int, optional): Bytes for the frames as given (integers stay integers), the float32 output and
            the tiles' working memory together (:func:`~lffnet_arch.deploy.budget.plan_tile`; the interpreter and
            the model are the caller's to count): the largest tile that fits, or the whole image. Default: None.

    Returns:
        np.ndarray: (H, W, 3) float32 linear HDR RGB, in [0, 1] in the units of the shortest exposure; with
        ``return_response``, (hdr, response, info): ``info`` says how the response was found (``source``, ...) and
        holds ``alignment``: None when ``align`` is None, else one dict per frame in exposure order (shift ``dx``,
        ``dy`` in pixels, ``rotation`` in degrees, ``converged``, ...; see :func:`align_frames`), and ``tile``: the
        tile side used, None when the whole image ran at once.

    Raises:
        ValueError: Fewer than 2 frames, frames of different sizes (named), non-RGB or out-of-range frames,
            duplicate, non-positive or non-finite exposure times or a longest-to-shortest ratio above
            :data:`MAX_EXPOSURE_RATIO`, as many exposures as frames not given, T different from the network's
            ``num_exposure``, an invalid ``ref_idx`` / ``precision`` / ``align`` / ``tile_size``, or a non-finite
            network output.
        MemoryBoundError: ``max_memory`` leaves no room for the smallest tile (a ValueError naming ``max_memory``
            and the minimum, which it carries as ``minimum``).
    """
    frames, times, reference = _sorted_bracket(frames, exposures, model, ref_idx)
    tile, strip_rows = _resolve_tile(tile_size, max_memory, model, frames, tile_overlap)
    if gamma is not None:
        response = Response.gamma(float(gamma))
    response, info = resolve_response(response, frames, times)
    warps, alignment = _alignment(frames, times, reference, align, response)
    inputs = TileInputs(frames, times, response, warps)
    height, width = frames[0].shape[:2]
    tile = None if tile is None or (tile >= height and tile >= width) else tile  # one tile is the whole image
    with torch.no_grad(), _reference(model, ref_idx), _autocast(module_device(model), precision):
        hdr = _forward(model, inputs, tile, tile_overlap, progress, strip_rows, scratch_dir, max_memory, precision)
    _check_finite(hdr)
    notes = {**info, 'alignment': alignment, 'tile': tile, 'strip_rows': strip_rows}
    return (hdr, response, notes) if return_response else hdr
