"""Helpers of ``scripts/benchmark.py``: conv MAC counting, parameter counts, memory and speed probes, and the
classical multi-exposure merges (reference frame, OpenCV's Debevec and Mertens) that the quality table lists beside
the networks.

MAC convention (docs/design.md §5): multiply-accumulates of every convolution for one frame triple (batch 1),
bias additions, activations and the FFTs excluded; the 1x1 convolutions of the RFFT frequency branches run on the
H x (W // 2 + 1) bins of ``rfft2`` and are counted there. :func:`count_conv_macs` counts them with forward hooks on a
copy of the network moved to the ``meta`` device, so any size is counted exactly without computing anything.

The classical merges work on RGB arrays (H, W, 3) of LDR values in [0, 1]; BGR exists only inside the OpenCV calls.
"""

import copy
import math
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import cv2
import numpy as np
import torch
from torch import nn

from lffnet_arch.archs.doconv import DOConv2d
from lffnet_arch.archs.rfft import RFFTBlock

__all__ = [
    'REFERENCE_GMACS',
    'MacCount',
    'count_conv_macs',
    'count_parameters',
    'current_rss_bytes',
    'fit_scale',
    'linearize_display',
    'matmul_gflops',
    'merge_debevec',
    'merge_debevec_calibrated',
    'merge_mertens',
    'peak_rss_bytes',
    'reference_frame_hdr',
    'time_calls',
    'time_interleaved',
    'well_exposed_mask',
]

# Conv GMACs at 1000 x 1500 of the paper's configurations, as docs/design.md §5 quotes them.
REFERENCE_GMACS = {'AHDRNet': 2170, 'LFFNet': 1382, 'LFFNet without frequency-branch convs': 1308}

_CONV_TYPES = (nn.Conv2d, DOConv2d)


@dataclass
class MacCount:
    """Conv multiply-accumulates of one forward pass.

    Attributes:
        total (int): All convolutions, frequency-branch 1x1 convs included.
        frequency (int): The part spent in the 1x1 convs of RFFT frequency branches (on the rfft2 bins).
        by_layer (dict[str, int]): MACs per conv module name (a module called twice is summed).
    """

    total: int = 0
    frequency: int = 0
    by_layer: dict = field(default_factory=dict)

    @property
    def spatial(self) -> int:
        """MACs of the convolutions on pixels (``total - frequency``)."""
        return self.total - self.frequency


def count_parameters(net: nn.Module) -> int:
    """``sum(p.numel() for p in net.parameters())`` (buffers such as DO-Conv's D_diag are not parameters)."""
    return sum(p.numel() for p in net.parameters())


def _frequency_convs(net: nn.Module) -> set:
    ids = set()
    for module in net.modules():
        if isinstance(module, RFFTBlock):
            ids.update(id(m) for m in module.frequency.modules())
    return ids


def count_conv_macs(net: nn.Module, height: int, width: int, batch: int = 1) -> MacCount:
    """Count conv MACs of ``net`` on a (batch, T, C_in, height, width) input, on meta tensors.

    A conv producing (B, C_out, h, w) with ``C_in / groups`` input channels per group and a kh x kw kernel costs
    ``B * C_out * h * w * C_in / groups * kh * kw`` MACs. ``nn.Conv2d`` and ``DOConv2d`` (which folds into one plain
    conv) are counted; the network itself is not touched (a deep copy runs on the ``meta`` device).

    Args:
        net (nn.Module): Network mapping (B, T, C_in, H, W) to (B, 3, H, W); T and C_in are read from its
            ``num_exposure`` and ``num_in_ch`` attributes (default 3 and 6).
        height (int): Image height H.
        width (int): Image width W.
        batch (int): Batch size B. Default: 1 (one frame triple, the §5 convention).

    Returns:
        MacCount: Total, frequency-branch and per-layer MACs.
    """
    if height < 1 or width < 1 or batch < 1:
        raise ValueError(f'count_conv_macs: height, width and batch must be positive, got {height}, {width}, {batch}.')
    meta_net = copy.deepcopy(net).to('meta')
    frequency_ids = _frequency_convs(meta_net)
    count = MacCount()
    handles = []

    def make_hook(name: str, module: nn.Module) -> Callable:
        per_output = module.in_channels // getattr(module, 'groups', 1) * math.prod(module.kernel_size)

        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            macs = output.numel() * per_output
            count.total += macs
            count.by_layer[name] = count.by_layer.get(name, 0) + macs
            if id(module) in frequency_ids:
                count.frequency += macs

        return hook

    for name, module in meta_net.named_modules():
        if isinstance(module, _CONV_TYPES):
            handles.append(module.register_forward_hook(make_hook(name, module)))
    lq = torch.empty(batch, getattr(net, 'num_exposure', 3), getattr(net, 'num_in_ch', 6), height, width, device='meta')
    try:
        with torch.no_grad():
            meta_net(lq)
    finally:
        for handle in handles:
            handle.remove()
    return count


# ---------------------------------------------------------------- memory and speed


def peak_rss_bytes() -> int:
    """Peak resident set size of this process's own address space so far, in bytes.

    On Linux this is ``VmHWM`` of ``/proc/self/status``, which starts afresh at ``execve``. ``getrusage``'s
    ``ru_maxrss`` does not: the kernel carries it across ``execve``, so a subprocess started by a large parent
    reports the parent's memory (its peak so far when started with ``vfork``, as Python's ``subprocess`` does on
    Linux). Elsewhere (macOS) ``ru_maxrss`` is used.
    """
    try:
        with open('/proc/self/status', encoding='ascii') as file:
            for line in file:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == 'darwin' else peak * 1024)  # macOS reports bytes, Linux kilobytes


def current_rss_bytes() -> Optional[int]:
    """Current resident set size of this process in bytes (Linux ``/proc/self/statm``), else None."""
    try:
        with open('/proc/self/statm', encoding='ascii') as file:
            pages = int(file.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf('SC_PAGE_SIZE')


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_calls(
    fn: Callable[[], object],
    runs: int,
    warmup: int = 0,
    device: Union[str, torch.device] = 'cpu',
    progress: Optional[Callable[[int], None]] = None,
) -> list:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones (CUDA synchronised).

    Args:
        fn (callable): The work, called without arguments.
        runs (int): Timed calls, >= 1.
        warmup (int): Untimed calls first. Default: 0.
        device (str | torch.device): Where ``fn`` computes; CUDA work is synchronised around every call.
        progress (callable, optional): Called with 1 after every call (warm-up included), e.g. ``tqdm.update``.

    Returns:
        list[float]: The ``runs`` durations in seconds.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f'time_calls: runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}.')
    device = torch.device(device)
    times = []
    for index in range(warmup + runs):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        if index >= warmup:
            times.append(time.perf_counter() - start)
        if progress is not None:
            progress(1)
    return times


def time_interleaved(
    fns: dict,
    runs: int,
    warmup: int = 0,
    device: Union[str, torch.device] = 'cpu',
    progress: Optional[Callable[[int], None]] = None,
) -> dict:
    """Like :func:`time_calls` for several functions taking turns: round r calls each of them once, in order.

    A change in machine load (a shared machine) then hits every function alike, so per-round ratios stay fair.

    Returns:
        dict: name -> list of ``runs`` durations in seconds (the ``warmup`` rounds are not timed).
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f'time_interleaved: runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}.')
    times = {name: [] for name in fns}
    for index in range(warmup + runs):
        for name, fn in fns.items():
            seconds = time_calls(fn, runs=1, device=device, progress=progress)[0]
            if index >= warmup:
                times[name].append(seconds)
    return times


def matmul_gflops(size: int = 2048, runs: int = 5, device: Union[str, torch.device] = 'cpu') -> float:
    """The machine's fp32 matrix-multiply rate: 2 size^3 / the best time of ``torch.mm`` of two size x size matrices.

    The best of ``runs`` (after one warm-up) rather than the median, so that other work on a shared machine lowers
    the estimate as little as possible: it stands for what the hardware can do.

    Args:
        size (int): Matrix side. Default: 2048.
        runs (int): Timed products. Default: 5.
        device (str | torch.device): Where to multiply. Default: 'cpu'.

    Returns:
        float: GFLOP/s (1e9 floating-point operations per second).
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=generator).to(device)
    b = torch.rand(size, size, generator=generator).to(device)
    with torch.inference_mode():
        seconds = min(time_calls(lambda: torch.mm(a, b), runs, warmup=1, device=device))
    return 2 * size**3 / seconds / 1e9


# ---------------------------------------------------------------- classical merges


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


def reference_frame_hdr(
    ldrs: Sequence[np.ndarray], exposures: Sequence[float], ref_idx: int, gamma: float = 2.2
) -> np.ndarray:
    """The reference frame alone in the HDR domain, L_ref ** gamma / t_ref (the network's own HDR-domain input).

    Args:
        ldrs (sequence of np.ndarray): T RGB frames (H, W, 3) in [0, 1].
        exposures (sequence of float): Exposure times t_i in the GT's units (t = 2 ** EV in Kalantari's data).
        ref_idx (int): Reference frame index.
        gamma (float): LDR gamma. Default: 2.2.

    Returns:
        np.ndarray: (H, W, 3) float32 linear HDR.
    """
    times = _check_bracket(ldrs, exposures, 'reference_frame_hdr')
    if not 0 <= ref_idx < len(ldrs):
        raise ValueError(f'reference_frame_hdr: ref_idx must be in [0, {len(ldrs) - 1}], got {ref_idx}.')
    ldr = np.asarray(ldrs[ref_idx], dtype=np.float64)
    return (ldr**gamma / times[ref_idx]).astype(np.float32)


def well_exposed_mask(ldr: np.ndarray, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """(H, W) bool: pixels whose three LDR channels all lie strictly between ``low`` and ``high``."""
    ldr = np.asarray(ldr)
    return np.all((ldr > low) & (ldr < high), axis=2)


def fit_scale(image: np.ndarray, target: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Least-squares factor s minimising ``sum((s * image - target) ** 2)`` over the masked pixels.

    Args:
        image (np.ndarray): (H, W, C) values to scale.
        target (np.ndarray): (H, W, C) values to match.
        mask (np.ndarray, optional): (H, W) bool; all pixels when None.

    Returns:
        float: s, or 1.0 when no pixel is selected or ``image`` is zero there.
    """
    image = np.asarray(image, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if mask is not None:
        image, target = image[mask], target[mask]
    denominator = float(np.sum(image * image))
    if image.size == 0 or denominator <= 0:
        return 1.0
    return float(np.sum(image * target)) / denominator


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
