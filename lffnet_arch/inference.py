"""HDR fusion of a user's own exposure brackets, at any resolution: library API and the ``lffnet-inference`` command.

Typical use::

    from lffnet_arch.inference import fuse, load_model, read_bracket

    net = load_model('LFFNet.pth', opt='options/test/LFFNet/test_LFFNet_Kalantari.yml', device='cuda')
    frames, times = read_bracket('my_bracket/')          # exposure times in seconds
    hdr = fuse(frames, times, net, tile_size=512)        # (H, W, 3) float32 linear HDR

Conventions (docs/design.md §10): frames are sorted by exposure time and the times divided by the shortest, so the
network sees t = 1 for the shortest frame as in training; the network input of frame i is cat(L_i, L_i ** gamma /
t_i). Exposure times come from, in this order of priority: explicit values, an ``exposure.txt`` next to the frames
(EV values, t = 2 ** EV, as in Kalantari's data set), the frames' EXIF ``ExposureTime``.
"""

import argparse
import contextlib
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from lffnet_arch.data.scene_io import list_frames, read_exposure_file
from lffnet_arch.utils.checkpoint import OptionsLike, load_network
from lffnet_arch.utils.file_util import remove_stale_temporaries
from lffnet_arch.utils.hdr_util import (
    imwrite_atomic,
    ldr_to_float,
    network_input,
    read_ldr,
    write_hdr,
)
from lffnet_arch.utils.tiling import BYTES_PER_PIXEL, auto_tile_size, module_device, tiled_forward
from lffnet_arch.utils.tonemap import DEFAULT_TONEMAPPER, TONEMAPPERS, tonemap

__all__ = [
    'ALIGN_METHODS',
    'PRECISIONS',
    'align_frames',
    'fuse',
    'load_model',
    'main',
    'read_bracket',
    'read_exif_exposure',
]

PathLike = Union[str, os.PathLike]
PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
ALIGN_METHODS = ('mtb', 'ecc')
# Largest ratio of the longest to the shortest exposure time accepted: 2 ** 20, 20 stops, far beyond any bracket
# (Kalantari's span 4 stops); larger ratios come from wrong units or typos and overflow L ** gamma / t.
MAX_EXPOSURE_RATIO = 2.0**20
EXIF_IFD = 0x8769
EXIF_EXPOSURE_TIME = 33434
_ECC_MOTIONS = {'translation': cv2.MOTION_TRANSLATION, 'euclidean': cv2.MOTION_EUCLIDEAN, 'affine': cv2.MOTION_AFFINE}
_ECC_MAX_SIDE = 1024  # ECC runs on a copy downscaled to this longest side; the warp is scaled back.

# ---------------------------------------------------------------- loading a network


def load_model(
    checkpoint: PathLike,
    opt: OptionsLike = None,
    arch: Optional[str] = None,
    device: Union[str, torch.device] = 'cpu',
    **arch_kwargs: Any,
) -> nn.Module:
    """Build the network of a checkpoint and load its weights strictly; see ``utils.checkpoint.load_network``.

    Args:
        checkpoint (str | PathLike): BasicSR checkpoint (``{'params': ..., 'params_ema': ...}``; ``params_ema`` is
            used when present) or a bare state dict. Loaded with ``torch.load(weights_only=True)``.
        opt (str | PathLike | dict, optional): Options YAML whose ``network_g`` section (read with the safe YAML
            loader) gives the architecture and its options, or that section as a dict.
        arch (str, optional): Registered architecture name (e.g. ``'LFFNet'``, ``'AHDRNet'``), built with its default
            (the paper's) configuration, when ``opt`` is not given. Without ``opt`` and ``arch``, the options are
            inferred from the checkpoint's key names and shapes (LFFNet and AHDRNet).
        device (str | torch.device): Where the network goes. Default: 'cpu'.
        **arch_kwargs: Architecture options overriding the others (e.g. ``num_feat=64``, ``doconv='none'``).

    Returns:
        nn.Module: The network in eval mode on ``device``, in contiguous memory format; channels_last is 1.3x faster
        for whole 1000 x 1500 images on CPU (``scripts/benchmark.py``): ``net.to(memory_format=torch.channels_last)``
        opts in.

    Raises:
        FileNotFoundError: Missing checkpoint or options file.
        KeyError: No ``network_g`` / ``type`` in ``opt``, or options that cannot be inferred from the weights.
        ValueError: Unknown architecture or options, or the checkpoint does not fit the network; the message lists
            a few missing and unexpected keys and shape mismatches, and says how to load DO-Conv / folded weights.
    """
    net, _ = load_network(checkpoint, opt, arch=arch, device=device, **arch_kwargs)
    return net


# ---------------------------------------------------------------- reading a bracket


def _rational_to_float(value: Any) -> Optional[float]:
    if isinstance(value, tuple):
        if len(value) == 2:
            value = value[0] / value[1] if value[1] else math.nan
        elif len(value) == 1:
            value = value[0]
    try:
        value = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def read_exif_exposure(path: PathLike) -> Optional[float]:
    """EXIF ``ExposureTime`` (tag 33434, in the Exif IFD 0x8769 or the base IFD) of a JPEG or TIFF, in seconds.

    Returns:
        float | None: The exposure time, or None when the file has none (or PIL cannot parse its header).
    """
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            value = exif.get_ifd(EXIF_IFD).get(EXIF_EXPOSURE_TIME, exif.get(EXIF_EXPOSURE_TIME))
    except (OSError, ValueError, SyntaxError):
        return None
    return None if value is None else _rational_to_float(value)


def _bracket_paths(paths_or_folder: Union[PathLike, Sequence[PathLike]]) -> tuple[list[Path], Optional[Path]]:
    """Frame files and the folder whose exposure file describes them (None when the files are a partial list)."""
    if isinstance(paths_or_folder, (str, os.PathLike)):
        paths_or_folder = [paths_or_folder]
    paths = [Path(p) for p in paths_or_folder]
    if len(paths) == 1 and paths[0].is_dir():
        frames = list_frames(paths[0])
        if not frames:
            raise ValueError(f'No LDR frames (.tif .tiff .png .jpg .jpeg) in {paths[0]}.')
        return frames, paths[0]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f'Frame file not found: {path}')
    parents = {p.resolve().parent for p in paths}
    if len(parents) == 1:
        folder = parents.pop()
        if {p.resolve() for p in list_frames(folder)} == {p.resolve() for p in paths}:
            return sorted(paths, key=lambda p: p.name), folder
    return paths, None


def read_bracket(
    paths_or_folder: Union[PathLike, Sequence[PathLike]],
    exposures: Optional[Sequence[float]] = None,
    exposure_file: str = 'exposure.txt',
) -> tuple[list[np.ndarray], np.ndarray]:
    """Read the LDR frames of one bracket and their exposure times.

    Exposure times, in order of priority: ``exposures`` (seconds, or any unit, in the order of the frames
    returned); ``exposure_file`` in the frames' folder (one EV per line in file-name order, t = 2 ** EV; used when
    the frames are that folder's complete frame list); each frame's EXIF ``ExposureTime`` (JPEG, TIFF).

    Args:
        paths_or_folder (str | PathLike | sequence): A folder holding the frames (.tif .tiff .png .jpg .jpeg, sorted
            by file name) or the frame files (kept in the given order unless they are a folder's complete list).
        exposures (sequence of float, optional): Exposure times, one per frame.
        exposure_file (str): Name of the EV file looked for in the folder. Default: 'exposure.txt'.

    Returns:
        tuple[list[np.ndarray], np.ndarray]: T float32 RGB frames (H, W, 3) in [0, 1] and float64 (T,) exposure
        times, in the same (file) order; :func:`fuse` sorts them by exposure.

    Raises:
        FileNotFoundError: A frame file or the folder is missing.
        ValueError: Fewer than two frames, an unreadable frame (named), a malformed exposure file, or no exposure
            times available (the message says how to give them).
    """
    paths, folder = _bracket_paths(paths_or_folder)
    if len(paths) < 2:
        raise ValueError(
            f'A bracket needs at least 2 frames of different exposure; found {len(paths)}: {[str(p) for p in paths]}.'
        )
    frames = [read_ldr(p) for p in paths]
    if exposures is not None:
        times = np.asarray(exposures, dtype=np.float64).ravel()
        if times.size != len(paths):
            raise ValueError(
                f'Got {times.size} exposure times for {len(paths)} frames '
                f'({", ".join(p.name for p in paths)}); give one per frame.'
            )
        return frames, times
    if folder is not None and (folder / exposure_file).is_file():
        return frames, np.power(2.0, read_exposure_file(folder / exposure_file, len(paths)))
    exif = [read_exif_exposure(p) for p in paths]
    lacking = [p.name for p, t in zip(paths, exif) if t is None]
    if lacking:
        where = f'{folder}' if folder is not None else "the frames' folder"
        raise ValueError(
            f'No exposure times for {", ".join(p.name for p in paths)}: no EXIF ExposureTime in '
            f'{", ".join(lacking)} and no {exposure_file} in {where}. Give them in seconds, one per '
            f'frame in file-name order (--exposures 0.01 0.04 0.16 on the command line, exposures= in '
            f'Python), or write an {exposure_file} with one EV value per line next to the frames.'
        )
    return frames, np.asarray(exif, dtype=np.float64)


# ---------------------------------------------------------------- global pre-alignment


def _luminance(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.float32), cv2.COLOR_RGB2GRAY)


def _mtb_align(frames: list[np.ndarray], ref_idx: int) -> list[np.ndarray]:
    height, width = frames[0].shape[:2]
    mtb = cv2.createAlignMTB()
    # Each pyramid level halves the image; stop while the coarsest level keeps at least 16 pixels a side.
    mtb.setMaxBits(int(max(1, min(6, math.floor(math.log2(max(min(height, width), 32) / 16))))))
    grays = [np.round(_luminance(f) * 255).astype(np.uint8) for f in frames]
    aligned = []
    for i, frame in enumerate(frames):
        if i == ref_idx:
            aligned.append(frame)
            continue
        dx, dy = mtb.calculateShift(grays[ref_idx], grays[i])
        warp = np.float32([[1, 0, dx], [0, 1, dy]])
        aligned.append(
            cv2.warpAffine(frame, warp, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        )
    return aligned


def _ecc_image(frame: np.ndarray, time: float, low: float, high: float, scale: float, gamma: float) -> np.ndarray:
    """Log radiance clipped to the range both frames of a pair expose well: comparable across exposures."""
    radiance = np.clip(_luminance(frame) ** gamma / time, low, high)
    image = np.log(radiance).astype(np.float32)
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def _ecc_align(
    frames: list[np.ndarray], times: np.ndarray, ref_idx: int, motion: str, gamma: float
) -> list[np.ndarray]:
    height, width = frames[0].shape[:2]
    scale = min(1.0, _ECC_MAX_SIDE / max(height, width))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    aligned = []
    for i, frame in enumerate(frames):
        if i == ref_idx:
            aligned.append(frame)
            continue
        t_short, t_long = sorted((times[i], times[ref_idx]))
        # Saturation of the longer frame bounds the radiance from above, 8-bit quantisation of the shorter from below.
        low, high = (2 / 255) ** gamma / t_short, 0.95**gamma / t_long
        if not low < high:
            warnings.warn(
                f'ECC alignment skipped frame {i}: it shares no well-exposed range with the reference.', stacklevel=3
            )
            aligned.append(frame)
            continue
        template = _ecc_image(frames[ref_idx], times[ref_idx], low, high, scale, gamma)
        moving = _ecc_image(frame, times[i], low, high, scale, gamma)
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(template, moving, warp, _ECC_MOTIONS[motion], criteria, None, 1)
        except cv2.error as error:
            warnings.warn(f'ECC alignment of frame {i} did not converge; frame left as it is ({error}).', stacklevel=3)
            aligned.append(frame)
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
    return aligned


def align_frames(
    frames: Sequence[np.ndarray],
    exposures: Sequence[float],
    ref_idx: int,
    method: str = 'mtb',
    ecc_motion: str = 'euclidean',
    gamma: float = 2.2,
) -> list[np.ndarray]:
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

    Returns:
        list[np.ndarray]: The frames, non-reference ones warped onto the reference.
    """
    if method not in ALIGN_METHODS:
        raise ValueError(f'align must be one of {ALIGN_METHODS} or None, got {method!r}.')
    if ecc_motion not in _ECC_MOTIONS:
        raise ValueError(f'ecc_motion must be one of {tuple(_ECC_MOTIONS)}, got {ecc_motion!r}.')
    frames = [np.ascontiguousarray(f, dtype=np.float32) for f in frames]
    if method == 'mtb':
        return _mtb_align(frames, ref_idx)
    return _ecc_align(frames, np.asarray(exposures, dtype=np.float64), ref_idx, ecc_motion, gamma)


# ---------------------------------------------------------------- fusion


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
    conv_first = getattr(model, 'conv_first', None)
    arch = type(model).__name__
    return auto_tile_size(
        num_feat=getattr(conv_first, 'out_channels', 64),
        device=device,
        arch=arch if arch in BYTES_PER_PIXEL else None,
        num_exposure=getattr(model, 'num_exposure', 3),
    )


def fuse(
    frames: Sequence[np.ndarray],
    exposures: Sequence[float],
    model: nn.Module,
    ref_idx: Optional[int] = None,
    tile_size: Union[None, int, str] = None,
    tile_overlap: int = 32,
    precision: str = 'fp32',
    gamma: float = 2.2,
    align: Optional[str] = None,
    progress: Any = None,
) -> np.ndarray:
    """Fuse an exposure bracket into one linear HDR image.

    The frames are sorted by exposure time, the times divided by the shortest (t = 1 for the shortest frame, as in
    training), and the network input built as lq = cat(L, L ** gamma / t) per frame: (1, T, 6, H, W).

    Args:
        frames (sequence of np.ndarray): T RGB frames (H, W, 3): float in [0, 1], or uint8 / uint16 (divided by 255
            / 65535).
        exposures (sequence of float): Exposure times in any one unit (seconds, or 2 ** EV), one per frame.
        model (nn.Module): Network mapping (1, T, 6, H, W) to (1, 3, H, W), e.g. from :func:`load_model`; its
            ``num_exposure`` must equal T.
        ref_idx (int, optional): Reference frame in the exposure-sorted order; the output is aligned with it.
            Default: the network's own ``ref_idx`` ((T - 1) // 2, the middle exposure, in the paper's setup). Another
            value runs the network with a reference it was not trained with.
        tile_size (int | 'auto', optional): Run tile by tile (:func:`~lffnet_arch.utils.tiling.tiled_forward`) with
            this tile size, or one picked from the free memory with ``'auto'``; None runs the whole image at once.
        tile_overlap (int): Overlap of neighbouring tiles in pixels. Default: 32.
        precision (str): ``'fp32'``, or ``'fp16'`` / ``'bf16'`` with ``torch.autocast`` on the model's device (the
            RFFT blocks keep their FFTs in fp32). Default: 'fp32'.
        gamma (float): Gamma of the LDR-to-HDR-domain mapping. Default: 2.2.
        align (str, optional): Global pre-alignment to the reference, ``'mtb'`` or ``'ecc'``
            (:func:`align_frames`). Default: None.
        progress (callable | tqdm, optional): Tile progress, passed to ``tiled_forward``.

    Returns:
        np.ndarray: (H, W, 3) float32 linear HDR RGB, in [0, 1] in the units of the shortest exposure.

    Raises:
        ValueError: Fewer than 2 frames, frames of different sizes (named), non-RGB or out-of-range frames,
            duplicate, non-positive or non-finite exposure times or a longest-to-shortest ratio above
            :data:`MAX_EXPOSURE_RATIO`, as many exposures as frames not given, T different from the network's
            ``num_exposure``, an invalid ``ref_idx`` / ``precision`` / ``align``, or a non-finite network output.
    """
    frames = [_frame_to_float(f, i) for i, f in enumerate(frames)]
    times = np.asarray(exposures, dtype=np.float64).ravel()
    num_exposure = getattr(model, 'num_exposure', None)
    _check_bracket(frames, times, num_exposure)
    count = len(frames)
    if ref_idx is not None and not 0 <= ref_idx < count:
        raise ValueError(f'ref_idx must be in [0, {count - 1}] for {count} frames, got {ref_idx}.')
    order = np.argsort(times, kind='stable')
    frames = [frames[i] for i in order]
    times = times[order] / times[order[0]]
    reference = ref_idx if ref_idx is not None else getattr(model, 'ref_idx', (count - 1) // 2)
    if align is not None:
        frames = align_frames(frames, times, reference, align, gamma=gamma)

    lq = network_input(frames, times, gamma)  # (1, T, 6, H, W)
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
    return hdr


# ---------------------------------------------------------------- command line


def _tile_arg(value: str) -> Union[int, str]:
    if value == 'auto':
        return value
    try:
        tile = int(value)
    except ValueError:
        tile = 0
    if tile < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer or "auto", got {value!r}')
    return tile


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` and ``--opt`` | ``--arch``: what :func:`load_model` takes, for every command that loads one."""
    parser.add_argument('--checkpoint', required=True, help='network weights (.pth, BasicSR format)')
    network = parser.add_mutually_exclusive_group()
    network.add_argument('--opt', help='options YAML whose network_g describes the network')
    network.add_argument(
        '--arch',
        help="registered architecture (LFFNet, AHDRNet, ...) with its default, the paper's, "
        'configuration (default: options inferred from the checkpoint)',
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``lffnet-inference`` / ``scripts/inference_hdr.py`` argument parser."""
    parser = argparse.ArgumentParser(
        description='Fuse exposure brackets into linear HDR images (<name>.hdr, <name>.exr '
        'and a tonemapped <name>.png preview).'
    )
    parser.add_argument(
        '--input',
        nargs='+',
        required=True,
        help='a folder holding one bracket, the frame files of one bracket, or a folder of bracket '
        'folders (each one scene)',
    )
    parser.add_argument('--output', required=True, help='output folder')
    add_network_arguments(parser)
    parser.add_argument(
        '--exposures',
        nargs='+',
        type=float,
        help='exposure times in seconds, one per frame in file-name order (default: exposure.txt '
        'in the bracket folder, else EXIF ExposureTime)',
    )
    parser.add_argument(
        '--ref', type=int, help="reference frame in exposure order (default: the network's, the middle one)"
    )
    parser.add_argument(
        '--tile',
        type=_tile_arg,
        help='tile size for bounded memory, or "auto" to pick one from free memory (default: whole image)',
    )
    parser.add_argument('--tile_overlap', type=int, default=32, help='tile overlap in pixels (default: 32)')
    parser.add_argument('--precision', choices=tuple(PRECISIONS), default='fp32', help='default: fp32')
    parser.add_argument('--align', choices=ALIGN_METHODS, help='global pre-alignment of the frames (default: none)')
    parser.add_argument('--gamma', type=float, default=2.2, help='LDR gamma (default: 2.2)')
    parser.add_argument(
        '--tonemap',
        choices=TONEMAPPERS,
        default=DEFAULT_TONEMAPPER,
        help='tone mapper of the .png preview (default: %(default)s)',
    )
    parser.add_argument('--device', help='cpu, cuda or cuda:N (default: cuda when available, else cpu)')
    parser.add_argument('--overwrite', action='store_true', help='replace existing output files')
    return parser


def find_brackets(inputs: Sequence[str]) -> list[tuple[str, Union[Path, list[Path]]]]:
    """(name, folder or frame files) of every bracket named by ``--input``: one folder of frames, the frame files of
    one bracket, or folders of bracket folders; raises ValueError for names that would collide."""
    paths = [Path(p) for p in inputs]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f'--input not found: {", ".join(missing)}')
    if all(p.is_file() for p in paths):
        return [(paths[0].resolve().parent.name or 'hdr', paths)]
    if not all(p.is_dir() for p in paths):
        raise ValueError('--input takes either frame files of one bracket or folders, not both.')
    scenes = []
    for folder in paths:
        if list_frames(folder):
            scenes.append((folder.resolve().name, folder))
            continue
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith('.'))
        found = [(p.name, p) for p in subfolders if list_frames(p)]
        if not found:
            raise ValueError(f'No LDR frames (.tif .tiff .png .jpg .jpeg) in {folder} or its sub-folders.')
        scenes.extend(found)
    names = [name for name, _ in scenes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'Several scenes are named {duplicates}; their outputs would collide. Process them apart.')
    return scenes


def _output_paths(output: Path, name: str) -> list[Path]:
    suffixes = ['.hdr', '.exr', '.png']
    return [output / f'{name}{suffix}' for suffix in suffixes]


def _resolve_device(device: Optional[str]) -> torch.device:
    if device is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; use --device cpu.')
    return device


def check_output_folder(output: Path) -> None:
    """Make sure ``output`` is a writable folder, or can be created as one, before any work is done.

    Nothing is created: the check writes and removes a temporary file in ``output`` or in its nearest existing
    ancestor, where the folder would be created.

    Raises:
        ValueError: ``output`` is a file, lies under a file, or cannot be written to or created.
    """
    existing = next(p for p in [output, *output.absolute().parents] if p.exists())
    if not existing.is_dir():
        where = 'is a file' if existing == output else f'lies under {existing}, which is a file'
        raise ValueError(f'--output {output} {where}; expected a folder.')
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f'--output {output}: cannot write in {existing} ({error.strerror or error}).') from error


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    scenes = find_brackets(args.input)
    output = Path(args.output)
    check_output_folder(output)
    for path, pid in remove_stale_temporaries(output):
        warnings.warn(f'Removed {path}, left by an interrupted run (process {pid}, no longer running).', stacklevel=2)
    outputs = {name: _output_paths(output, name) for name, _ in scenes}
    existing = [str(p) for paths in outputs.values() for p in paths if p.exists()]
    if existing and not args.overwrite:
        parser.error(
            f'output exists ({", ".join(existing[:5])}{", ..." if len(existing) > 5 else ""}); pass '
            '--overwrite to replace it.'
        )
    device = _resolve_device(args.device)
    model = load_model(args.checkpoint, opt=args.opt, arch=args.arch, device=device)
    for name, source in scenes:
        count = len(source) if isinstance(source, list) else len(list_frames(source))
        if count != model.num_exposure:
            raise ValueError(f'Scene {name}: {count} frames, but the network fuses num_exposure={model.num_exposure}.')
    for name, source in tqdm(scenes, desc='scenes', unit='scene', disable=len(scenes) < 2):
        frames, times = read_bracket(source, args.exposures)
        tiles = tqdm(desc=f'{name} tiles', unit='tile', leave=False) if args.tile else None
        try:
            hdr = fuse(
                frames,
                times,
                model,
                ref_idx=args.ref,
                tile_size=args.tile,
                tile_overlap=args.tile_overlap,
                precision=args.precision,
                gamma=args.gamma,
                align=args.align,
                progress=tiles,
            )
        finally:
            if tiles is not None:
                tiles.close()
        # Without --overwrite each file is finished exclusively: a concurrent run that wrote it first is not replaced.
        for path in outputs[name]:
            if path.suffix == '.png':
                imwrite_atomic(
                    path, np.ascontiguousarray(tonemap(hdr, args.tonemap)[..., ::-1]), overwrite=args.overwrite
                )
            else:
                write_hdr(path, hdr, overwrite=args.overwrite)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``lffnet-inference``); returns the exit status.

    Examples::

        lffnet-inference --input my_bracket/ --output results/ --checkpoint LFFNet.pth --exposures 0.01 0.04 0.16
        lffnet-inference --input scenes/ --output results/ --checkpoint LFFNet.pth \\
            --opt options/test/LFFNet/test_LFFNet_Kalantari.yml --tile 512
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _run(args, parser)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f'error: {message}', file=sys.stderr)
        return 1
    return 0
