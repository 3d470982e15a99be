"""Tiled inference: run an HDR fusion network on images of any size with memory bounded by the tile size.

The image is covered by overlapping tiles of one size; tiles at the right and bottom borders are shifted inward so
every tile has the full size whenever the image is larger than the tile. Each tile's output is weighted by a window
that ramps up smoothly (raised cosine) over the overlap on every side that has a neighbouring tile and is flat
elsewhere; the weighted outputs are summed and divided by the summed weights. The weights therefore form a
partition of unity, the pixels near a tile's edge (where zero padding disturbs the convolutions) count least, and
no seam is visible. With a tile covering the whole image the result equals one whole-image forward pass exactly.

A network that sees its whole input (an FFT, as in RFFT blocks) gives a tiled result that differs from a whole-image
one everywhere inside a tile, not only at its seams (it sees less context; docs/benchmark.md, *Tiling error*); a
network with a local receptive field agrees closely away from the borders.

:func:`tiled_forward` takes the whole network input; :func:`tiled_forward_streamed` asks for each tile's input as it
needs it and accumulates into one preallocated (H, W, C) float32 image, so the full-resolution input never exists
(what bounded-memory inference uses, ``lffnet_arch.deploy.fusion.fuse(max_memory=...)``). Both give the same result
to float precision. A tile size from a memory bound comes from :func:`lffnet_arch.deploy.budget.plan_tile`;
:func:`auto_tile_size` sizes one from the free memory instead (``fuse(tile_size='auto')`` without a bound).
"""

import math
import os
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch import nn

__all__ = [
    'auto_tile_size',
    'available_memory',
    'blend_window',
    'module_device',
    'tile_positions',
    'tiled_forward',
    'tiled_forward_streamed',
]

ProgressLike = Union[Callable[[int, int], Any], Any]


def tile_positions(size: int, tile_size: int, tile_overlap: int) -> list[int]:
    """Start offsets of the tiles along one dimension.

    Consecutive tiles start ``tile_size - tile_overlap`` apart; the last tile is shifted inward so it ends at the
    border. When ``size <= tile_size`` there is a single tile at 0 (it is then ``size`` long).

    Args:
        size (int): Image length in this dimension.
        tile_size (int): Tile length.
        tile_overlap (int): Minimum overlap of consecutive tiles, in [0, tile_size).

    Returns:
        list[int]: Increasing start offsets; every tile lies inside ``[0, size)``.
    """
    _check_tiling(tile_size, tile_overlap)
    if size <= tile_size:
        return [0]
    stride = tile_size - tile_overlap
    return list(range(0, size - tile_size, stride)) + [size - tile_size]


def blend_window(length: int, ramp: int, rise: bool, fall: bool, device: Optional[torch.device] = None) -> torch.Tensor:
    """1-D blending weights of one tile: a raised-cosine ramp of ``ramp`` samples at the rising and falling sides.

    The ramp values are strictly positive (sampled at half-integer positions), so every pixel keeps a non-zero total
    weight; sides without a neighbour (``rise`` / ``fall`` False) stay at 1 up to the image border.

    Args:
        length (int): Tile length.
        ramp (int): Ramp length (the tile overlap); clipped to ``length // 2``.
        rise (bool): Ramp up at the start (there is a tile before this one).
        fall (bool): Ramp down at the end (there is a tile after this one).
        device (torch.device, optional): Device of the result.

    Returns:
        Tensor: (length,) float32 weights in (0, 1].
    """
    window = torch.ones(length, dtype=torch.float32, device=device)
    ramp = min(ramp, length // 2)
    if ramp > 0:
        positions = (torch.arange(ramp, dtype=torch.float32, device=device) + 0.5) / ramp
        up = 0.5 - 0.5 * torch.cos(math.pi * positions)
        if rise:
            window[:ramp] = up
        if fall:
            window[length - ramp :] = up.flip(0)
    return window


def _check_tiling(tile_size: int, tile_overlap: int) -> None:
    if int(tile_size) != tile_size or tile_size < 1:
        raise ValueError(f'tile_size must be a positive integer, got {tile_size!r}.')
    if int(tile_overlap) != tile_overlap or not 0 <= tile_overlap < tile_size:
        raise ValueError(f'tile_overlap must be an integer in [0, tile_size={tile_size}), got {tile_overlap!r}.')


def _report(progress: Optional[ProgressLike], done: int, total: int) -> None:
    if progress is None:
        return
    if hasattr(progress, 'update'):
        if done == 0 and getattr(progress, 'total', None) is None:
            progress.total = total
        if done > 0:
            progress.update(1)
    elif done > 0:
        progress(done, total)


def module_device(net: nn.Module, default: Union[str, torch.device] = 'cpu') -> torch.device:
    """The device of ``net``'s first parameter, or ``default`` for a network without parameters."""
    param = next(net.parameters(), None)
    return param.device if param is not None else torch.device(default)


@torch.no_grad()
def tiled_forward(
    net: nn.Module, lq: torch.Tensor, tile_size: int, tile_overlap: int = 32, progress: Optional[ProgressLike] = None
) -> torch.Tensor:
    """Run ``net`` tile by tile and blend the tiles' outputs with smooth weights.

    Only one tile is on the network's device at a time, so the peak memory of the forward passes is that of one
    ``tile_size`` x ``tile_size`` tile whatever the image size; ``lq`` and the result stay on ``lq``'s device (keep
    a large image on the CPU and the network on the GPU). Runs under ``torch.no_grad()``; wrap the call in
    ``torch.autocast`` for half precision.

    Args:
        net (nn.Module): Maps (B, T, 6, h, w) to (B, 3, h, w) for any tile size h x w.
        lq (Tensor): (B, T, 6, H, W) network input, LDR and HDR-domain in [0, 1].
        tile_size (int): Tile height and width; a dimension smaller than it gets a single tile of its own length.
        tile_overlap (int): Minimum overlap of neighbouring tiles in pixels, in [0, tile_size). Default: 32.
        progress (callable | tqdm, optional): Tile progress. An object with ``update`` (e.g. ``tqdm``) gets
            ``update(1)`` after every tile (and ``total`` set when it is None); another callable is called as
            ``progress(tiles_done, tiles_total)``.

    Returns:
        Tensor: (B, 3, H, W) float32 on ``lq``'s device, linear HDR in [0, 1].
    """
    _check_tiling(tile_size, tile_overlap)
    if lq.dim() != 5:
        raise ValueError(f'lq must have shape (B, T, C, H, W), got shape {tuple(lq.shape)}.')
    height, width = lq.shape[-2:]
    tops = tile_positions(height, tile_size, tile_overlap)
    lefts = tile_positions(width, tile_size, tile_overlap)
    total = len(tops) * len(lefts)
    net_device = module_device(net, lq.device)
    output = weight_sum = None
    _report(progress, 0, total)
    for row, top in enumerate(tops):
        tile_h = min(tile_size, height)
        weight_y = blend_window(tile_h, tile_overlap, row > 0, row < len(tops) - 1, lq.device)
        for col, left in enumerate(lefts):
            tile_w = min(tile_size, width)
            weight_x = blend_window(tile_w, tile_overlap, col > 0, col < len(lefts) - 1, lq.device)
            tile = lq[..., top : top + tile_h, left : left + tile_w].to(net_device)
            out = net(tile).float().to(lq.device)
            if output is None:
                output = torch.zeros(out.shape[0], out.shape[1], height, width, device=lq.device)
                weight_sum = torch.zeros(1, 1, height, width, device=lq.device)
            weight = weight_y[:, None] * weight_x[None, :]
            output[..., top : top + tile_h, left : left + tile_w] += out * weight
            weight_sum[..., top : top + tile_h, left : left + tile_w] += weight
            _report(progress, row * len(lefts) + col + 1, total)
    return output / weight_sum


@torch.no_grad()
def tiled_forward_streamed(
    net: nn.Module,
    make_input: Callable[[int, int, int, int], torch.Tensor],
    height: int,
    width: int,
    tile_size: int,
    tile_overlap: int = 32,
    progress: Optional[ProgressLike] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """:func:`tiled_forward` without the full network input: each tile's input comes from ``make_input(top, left,
    tile_h, tile_w)`` (a (1, T, C, tile_h, tile_w) tensor), tiles run row by row (so a caller can build each row of
    tiles from the rows it covers), and the blended outputs accumulate in one (H, W, C) float32 array.

    The tiles, their order, the blending windows and the weighted sums are those of :func:`tiled_forward`; the
    normalisation divides by the product of the per-axis window sums (the same weights, summed separably), so the
    result equals ``tiled_forward(net, full_input, ...)[0]`` transposed to (H, W, C) to float precision. Rows are
    normalised as soon as no later tile reaches them.

    Args:
        net (nn.Module): Maps (1, T, C, h, w) to (1, C_out, h, w).
        make_input (callable): ``(top, left, tile_h, tile_w) -> Tensor`` on any device.
        height (int): Image height H.
        width (int): Image width W.
        tile_size (int): Tile height and width (a dimension smaller than it gets one tile of its own length).
        tile_overlap (int): Minimum overlap of neighbouring tiles, in [0, tile_size). Default: 32.
        progress (callable | tqdm, optional): As for :func:`tiled_forward`.
        out (np.ndarray, optional): A zero-filled (H, W, C_out) float32 array to accumulate into; allocated at the
            first tile when None.

    Returns:
        np.ndarray: (H, W, C_out) float32 (``out`` when given).
    """
    _check_tiling(tile_size, tile_overlap)
    tops, lefts = tile_positions(height, tile_size, tile_overlap), tile_positions(width, tile_size, tile_overlap)
    tile_h, tile_w = min(tile_size, height), min(tile_size, width)
    rows = [blend_window(tile_h, tile_overlap, r > 0, r < len(tops) - 1) for r in range(len(tops))]
    cols = [blend_window(tile_w, tile_overlap, c > 0, c < len(lefts) - 1) for c in range(len(lefts))]
    sum_y, sum_x = np.zeros(height, np.float32), np.zeros(width, np.float32)
    for top, window in zip(tops, rows):
        sum_y[top : top + tile_h] += window.numpy()
    for left, window in zip(lefts, cols):
        sum_x[left : left + tile_w] += window.numpy()
    net_device = module_device(net)
    total = len(tops) * len(lefts)
    _report(progress, 0, total)
    normalised = 0  # rows above this are final and divided by their weight sums
    for row, top in enumerate(tops):
        for col, left in enumerate(lefts):
            tile = make_input(top, left, tile_h, tile_w).to(net_device)
            result = net(tile).float()[0].cpu()
            del tile
            if out is None:
                out = np.zeros((height, width, result.shape[0]), np.float32)
            weight = rows[row][:, None] * cols[col][None, :]
            out[top : top + tile_h, left : left + tile_w] += (result * weight).permute(1, 2, 0).numpy()
            del result
            _report(progress, row * len(lefts) + col + 1, total)
        final = tops[row + 1] if row + 1 < len(tops) else height  # no later tile reaches the rows above it
        finished = out[normalised:final]
        finished /= (sum_y[normalised:final, None] * sum_x[None, :])[..., None]
        normalised = final
    return out


def available_memory(device: Union[str, torch.device] = 'cpu') -> Optional[int]:
    """Free memory for a forward pass in bytes, or None when it cannot be read.

    CUDA: ``torch.cuda.mem_get_info`` (free device memory). CPU: ``MemAvailable`` of ``/proc/meminfo`` (Linux).

    Args:
        device (str | torch.device): Where the network runs.

    Returns:
        int | None: Bytes available.
    """
    device = torch.device(device)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != 'cpu' or not os.path.isfile('/proc/meminfo'):
        return None
    with open('/proc/meminfo', encoding='ascii') as file:
        for line in file:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    return None


def auto_tile_size(
    bytes_per_pixel: float,
    device: Union[str, torch.device] = 'cpu',
    memory_fraction: float = 0.5,
    min_tile: int = 64,
    max_tile: int = 4096,
    multiple: int = 32,
    default: int = 512,
) -> int:
    """Pick a square tile size whose forward pass fits into a fraction of the available memory.

    Estimated peak memory of a tile: ``tile ** 2 * bytes_per_pixel``; the networks' own figures come from
    :func:`lffnet_arch.archs.forward_bytes_per_pixel`. The size is rounded down to a multiple of ``multiple`` and
    clipped to ``[min_tile, max_tile]``.

    Args:
        bytes_per_pixel (float): Estimated peak memory of one forward pass per input pixel, in bytes (> 0).
        device (str | torch.device): Where the network runs. Default: 'cpu'.
        memory_fraction (float): Share of the available memory a tile may use, in (0, 1]. Default: 0.5.
        min_tile (int): Smallest tile. Default: 64.
        max_tile (int): Largest tile. Default: 4096.
        multiple (int): Round the tile down to a multiple of this. Default: 32.
        default (int): Returned when the available memory cannot be read (not Linux, no CUDA). Default: 512.

    Returns:
        int: Tile size in pixels.
    """
    if not 0 < memory_fraction <= 1:
        raise ValueError(f'memory_fraction must be in (0, 1], got {memory_fraction}.')
    if not bytes_per_pixel > 0:
        raise ValueError(f'bytes_per_pixel must be > 0, got {bytes_per_pixel}.')
    free = available_memory(device)
    if free is None:
        return default
    tile = int(math.sqrt(free * memory_fraction / bytes_per_pixel)) // multiple * multiple
    return max(min_tile, min(max_tile, tile))
