"""The Kalantari folder layout: listing, reading and validating multi-exposure scenes on disk.

A scene is a folder holding ``T`` LDR frames (8- or 16-bit TIFF / PNG / JPEG, ordered by file name), an exposure
file with one EV value per line in the same order, and a linear HDR ground truth (``HDRImg.hdr``). These plain
helpers are shared by :class:`~lffnet_arch.data.hdr_dataset.MultiExposureHDRDataset`, the data preparation
scripts, inference and the quality evaluation; nothing here is registered in BasicSR. The LMDB form of the same
scenes is :mod:`lffnet_arch.data.lmdb_codec`.

Arrays are RGB (H, W, 3); BGR exists only at the cv2 decode/encode boundary.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Union

import numpy as np

from lffnet_arch.fileio.heic import HEIC_EXTENSIONS

# read_ldr_raw and ldr_to_float are re-exported: the data scripts and the tests use them through this module.
from lffnet_arch.fileio.image import ldr_to_float, read_hdr, read_ldr_raw
from lffnet_arch.fileio.raw import RAW_EXTENSIONS

__all__ = [
    'FRAME_EXTENSIONS',
    'GT_MAX',
    'GT_NAME',
    'HDR_EXTENSIONS',
    'LDR_EXTENSIONS',
    'Scene',
    'SceneFiles',
    'ev_to_exposure',
    'find_gt',
    'find_scene_files',
    'ldr_to_float',
    'list_frames',
    'list_scenes',
    'read_exposure_file',
    'read_ldr_raw',
    'read_scene',
    'read_scene_files',
    'sample_names',
    'sanitize_name',
    'validate_gt',
    'warn_gt_above_one',
]

PathLike = Union[str, Path]
LDR_EXTENSIONS = ('.tif', '.tiff', '.png', '.jpg', '.jpeg')
# Every frame format inference reads (lffnet_arch.fileio.image.read_frame): the LDR formats of the data sets, HEIC/HEIF
# and camera RAW (their readers are optional extras). Training scenes take the LDR formats only.
FRAME_EXTENSIONS = LDR_EXTENSIONS + HEIC_EXTENSIONS + RAW_EXTENSIONS
HDR_EXTENSIONS = ('.hdr', '.exr')
GT_NAME = 'HDRImg.hdr'
# Largest ground-truth value accepted by default. Real linear radiance in any unit a data set uses (Kalantari's GT
# peaks near 1, relative-unit scenes such as Debevec's Memorial at a few hundred) stays far below it; values near
# RGBE's 1e38 limit come from broken files and make every loss overflow.
GT_MAX = 1e6

# Scenes whose GT above 1 was already reported, so each is warned about once per process.
_warned_gt_above_one = set()


@dataclass(frozen=True)
class Scene:
    """One multi-exposure scene as read from disk.

    Attributes:
        name (str): Scene folder name, sanitised by :func:`sanitize_name` (the dataset key / LMDB sample name).
        ldrs (list[np.ndarray]): T float32 RGB frames (H, W, 3) in [0, 1], in file-name order.
        exposures (np.ndarray): float32 (T,), exposure times t = 2 ** EV, increasing.
        gt (np.ndarray | None): float32 RGB (H, W, 3) linear HDR ground truth, None when not asked for.
        paths (list[Path]): The T frame files.
        gt_path (Path | None): The GT file, None when not asked for.
        evs (np.ndarray): float64 (T,), the EV values as the exposure file gives them.
        raw_ldrs (list[np.ndarray] | None): The frames' integers as decoded (uint8/uint16 RGB (H, W, 3), see
            ``lffnet_arch.fileio.image.read_ldr_raw``), only when ``read_scene(..., keep_raw=True)``; the data
            preparation scripts store these losslessly.
    """

    name: str
    ldrs: list[np.ndarray]
    exposures: np.ndarray
    gt: Optional[np.ndarray]
    paths: list[Path]
    gt_path: Optional[Path]
    evs: np.ndarray
    raw_ldrs: Optional[list[np.ndarray]] = None


def sanitize_name(name: str) -> str:
    """Sample name without dots, spaces or other characters that break LMDB keys or BasicSR's image names.

    Every run of characters outside ``[A-Za-z0-9_-]`` becomes one underscore.
    """
    clean = re.sub(r'[^A-Za-z0-9_-]+', '_', name).strip('_')
    if not clean:
        raise ValueError(f'Cannot make a sample name from {name!r}: it has no letters, digits, "-" or "_".')
    return clean


def _is_hidden(path: Path) -> bool:
    return path.name.startswith('.')


def list_scenes(root: PathLike) -> list[Path]:
    """Sorted scene folders of a Kalantari-layout root (every visible sub-folder is a scene).

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a folder.
        ValueError: ``root`` holds no scene folder, or holds a nested layout (``Test/EXTRA/<scene>``).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f'Scene root {root} does not exist or is not a folder; expected a folder of scenes '
            '(datasets/Kalantari/Training/<scene>/, see datasets/README.md).'
        )
    scenes = sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p))
    if not scenes:
        raise ValueError(
            f'Scene root {root} holds no scene folder; expected <root>/<scene>/ with LDR frames, '
            'an exposure file and HDRImg.hdr.'
        )
    for scene in scenes:
        entries = [p for p in scene.iterdir() if not _is_hidden(p)]
        if entries and all(p.is_dir() for p in entries):
            raise ValueError(
                f'{scene} holds only folders ({", ".join(sorted(p.name for p in entries)[:3])}...); '
                f'nested layouts such as Test/EXTRA and Test/PAPER must be flattened into {root}/<scene> '
                '(see datasets/README.md).'
            )
    return scenes


def list_frames(scene_dir: PathLike, extensions: Sequence[str] = FRAME_EXTENSIONS) -> list[Path]:
    """Frames of a folder sorted by file name, hidden files skipped: files whose extension (any case) is one of
    ``extensions``, by default :data:`FRAME_EXTENSIONS` (.tif .tiff .png .jpg .jpeg, .heic .heif and the camera RAW
    extensions .dng .cr2 .cr3 .nef .arw .raf .orf .rw2 .pef .srw)."""
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        raise FileNotFoundError(f'Scene folder not found: {scene_dir}')
    return sorted(
        (p for p in scene_dir.iterdir() if p.is_file() and not _is_hidden(p) and p.suffix.lower() in extensions),
        key=lambda p: p.name,
    )


def read_exposure_file(path: PathLike, num_frames: Optional[int] = None) -> np.ndarray:
    """EV values of a scene's frames, one per line in frame (file-name) order.

    Args:
        path: The exposure file (Kalantari's ``exposure.txt``); blank lines are ignored.
        num_frames: Expected number of values; None accepts any number.

    Returns:
        np.ndarray: float64 (T,), strictly increasing.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A line is not one finite number, the count differs from ``num_frames``, or the values do not
            increase strictly.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Exposure file not found: {path}; expected one EV value per line (e.g. 0, 2, 4).')
    values = []
    for lineno, line in enumerate(path.read_text(encoding='utf-8-sig', errors='replace').splitlines(), 1):
        token = line.strip()
        if not token:
            continue
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f'Exposure file {path}, line {lineno}: expected one finite EV value, found {token!r}.')
        values.append(value)
    if num_frames is not None and len(values) != num_frames:
        raise ValueError(f'Exposure file {path} lists {len(values)} EV values; expected {num_frames}, one per frame.')
    if not values:
        raise ValueError(f'Exposure file {path} lists no EV value; expected one per frame.')
    evs = np.asarray(values, dtype=np.float64)
    if np.any(np.diff(evs) <= 0):
        raise ValueError(
            f'Exposure file {path}: EV values {values} do not increase strictly; frames sorted by file '
            'name must go from the shortest to the longest exposure.'
        )
    return evs


def ev_to_exposure(evs: Sequence[float]) -> np.ndarray:
    """Exposure times t = 2 ** EV as float32 (T,), the one conversion used for disk and LMDB samples."""
    return np.power(2.0, np.asarray(evs, dtype=np.float64)).astype(np.float32)


def find_gt(scene_dir: PathLike) -> Path:
    """The scene's ground truth: ``HDRImg.hdr``, else its single ``*.hdr`` / ``*.exr`` file.

    Raises:
        FileNotFoundError: No HDR file in the scene.
        ValueError: Several candidate HDR files and none named ``HDRImg.hdr``.
    """
    scene_dir = Path(scene_dir)
    if (scene_dir / GT_NAME).is_file():
        return scene_dir / GT_NAME
    candidates = sorted(
        p for p in scene_dir.iterdir() if p.is_file() and not _is_hidden(p) and p.suffix.lower() in HDR_EXTENSIONS
    )
    if not candidates:
        raise FileNotFoundError(f'No ground truth in scene {scene_dir}: expected {GT_NAME} (or one *.hdr / *.exr).')
    if len(candidates) > 1:
        raise ValueError(
            f'Scene {scene_dir} has {len(candidates)} HDR files ({", ".join(p.name for p in candidates)}) '
            f'and no {GT_NAME}; expected exactly one ground truth.'
        )
    return candidates[0]


def validate_gt(gt: np.ndarray, scene: str, source: str, gt_max: float = GT_MAX) -> None:
    """Raise ValueError naming ``scene`` and ``source`` unless the GT is finite, non-negative and at most ``gt_max``."""
    finite = np.isfinite(gt)
    if not finite.all():
        raise ValueError(
            f'Ground truth {source} of scene {scene} has {int((~finite).sum())} NaN/Inf values; '
            'expected finite linear HDR values.'
        )
    if (gt < 0).any():
        raise ValueError(
            f'Ground truth {source} of scene {scene} has {int((gt < 0).sum())} negative values '
            f'(min {float(gt.min()):g}); expected non-negative linear HDR values.'
        )
    peak = float(gt.max()) if gt.size else 0.0
    if peak > gt_max:
        raise ValueError(
            f'Ground truth {source} of scene {scene} reaches {peak:g}, above gt_max = {gt_max:g}; a broken file, or a '
            'GT in other units: normalise it, or raise the dataset option gt_max.'
        )


def warn_gt_above_one(gt: np.ndarray, scene: str, source: str) -> None:
    """Log once per scene (BasicSR root logger) that its GT exceeds 1, which the sigmoid output cannot reach."""
    if scene in _warned_gt_above_one:
        return
    peak = float(gt.max()) if gt.size else 0.0
    if peak > 1:
        _warned_gt_above_one.add(scene)
        from basicsr.utils import get_root_logger

        get_root_logger().warning(
            f'Ground truth {source} of scene {scene} reaches {peak:g} > 1; it is used as it '
            'is, but the network output (sigmoid) cannot exceed 1.'
        )


def _check_same_size(shapes: dict[str, tuple[int, int]], scene: Path) -> None:
    if len(set(shapes.values())) > 1:
        found = ', '.join(f'{name} {h}x{w}' for name, (h, w) in shapes.items())
        raise ValueError(f'Scene {scene}: frames and ground truth must have the same size (H x W); found {found}.')


class SceneFiles(NamedTuple):
    """The files of one scene folder, found and checked without decoding any image (:func:`find_scene_files`).

    Attributes:
        scene_dir (Path): The scene folder.
        frames (list[Path]): The T frame files, in file-name order.
        evs (np.ndarray): float64 (T,), the EV values as the exposure file gives them.
        gt (Path | None): The GT file, None when not asked for.
    """

    scene_dir: Path
    frames: list[Path]
    evs: np.ndarray
    gt: Optional[Path]


def find_scene_files(
    scene_dir: PathLike, num_exposure: int, exposure_file: str = 'exposure.txt', with_gt: bool = True
) -> SceneFiles:
    """List a scene's frames, read its exposure file and find its GT; decodes no image.

    Raises:
        FileNotFoundError: Missing scene folder, exposure file or GT.
        ValueError: Wrong number of frames, HEIC or RAW frames, malformed or non-increasing exposures.
    """
    scene_dir = Path(scene_dir)
    paths = list_frames(scene_dir)
    others = [p.name for p in paths if p.suffix.lower() not in LDR_EXTENSIONS]
    if others:
        raise ValueError(
            f'Scene {scene_dir} holds HEIC or camera RAW frames ({", ".join(others)}); training and test scenes take '
            f'LDR frames ({"/".join(LDR_EXTENSIONS)}) only. Fuse such brackets with lffnet-inference, or convert them.'
        )
    if len(paths) != num_exposure:
        raise ValueError(
            f'Scene {scene_dir}: expected {num_exposure} LDR frames ({"/".join(LDR_EXTENSIONS)}), found '
            f'{len(paths)}: {[p.name for p in paths]}.'
        )
    evs = read_exposure_file(scene_dir / exposure_file, num_exposure)
    return SceneFiles(scene_dir, paths, evs, find_gt(scene_dir) if with_gt else None)


def read_scene_files(files: SceneFiles, keep_raw: bool = False, gt_max: float = GT_MAX) -> Scene:
    """Decode and validate the frames and GT that :func:`find_scene_files` found (see :func:`read_scene`)."""
    raw = [read_ldr_raw(p) for p in files.frames]
    shapes = {p.name: img.shape[:2] for p, img in zip(files.frames, raw)}
    gt = None
    if files.gt is not None:
        gt = read_hdr(files.gt)
        shapes[files.gt.name] = gt.shape[:2]
    _check_same_size(shapes, files.scene_dir)
    if gt is not None:
        validate_gt(gt, str(files.scene_dir), str(files.gt), gt_max)
        warn_gt_above_one(gt, str(files.scene_dir), str(files.gt))
    return Scene(
        name=sanitize_name(files.scene_dir.name),
        ldrs=[ldr_to_float(r, str(p)) for p, r in zip(files.frames, raw)],
        exposures=ev_to_exposure(files.evs),
        gt=gt,
        paths=files.frames,
        gt_path=files.gt,
        evs=files.evs,
        raw_ldrs=raw if keep_raw else None,
    )


def read_scene(
    scene_dir: PathLike,
    num_exposure: int,
    exposure_file: str = 'exposure.txt',
    with_gt: bool = True,
    keep_raw: bool = False,
    gt_max: float = GT_MAX,
) -> Scene:
    """Read and validate one scene.

    Args:
        scene_dir: The scene folder.
        num_exposure: Expected number of LDR frames T.
        exposure_file: Name of the exposure file inside the scene folder.
        with_gt: Read the ground truth too.
        keep_raw: Also keep the frames' integers (``Scene.raw_ldrs``) for lossless re-encoding.
        gt_max: Largest GT value accepted (:data:`GT_MAX` by default).

    Returns:
        Scene: frames float32 RGB in [0, 1], exposures t = 2 ** EV, GT float32 RGB (or None).

    Raises:
        FileNotFoundError: Missing scene folder, exposure file, frame or GT.
        ValueError: Wrong number of frames, malformed or non-increasing exposures, an undecodable, truncated or
            corrupt image (named), frames or GT of different sizes, NaN/Inf/negative GT or GT above ``gt_max``.
    """
    return read_scene_files(find_scene_files(scene_dir, num_exposure, exposure_file, with_gt), keep_raw, gt_max)


def sample_names(scene_dirs: Sequence[Path]) -> list[str]:
    """Sanitised sample names of scene folders; refuses two folders that give the same name."""
    owners = {}
    for scene in scene_dirs:
        name = sanitize_name(scene.name)
        if name in owners:
            raise ValueError(
                f'Scene folders {owners[name]} and {scene} both give the sample name {name!r}; rename one.'
            )
        owners[name] = scene
    return list(owners)
