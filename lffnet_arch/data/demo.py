"""Synthetic demo set in the Kalantari layout, generated offline from photographs bundled with scikit-image.

The quick start trains a narrow network on CPU right after installation, with nothing to download: this module
writes a small data set that the HDR dataset reads exactly like Kalantari's (ARCHITECTURE.md §8)::

    root/Training/demo_000/ldr_0.tif, ldr_1.tif, ldr_2.tif, exposure.txt, HDRImg.hdr
    root/Test/demo_000/...
    root/demo_set.json        (written last: the set is complete only when it is there)

Each scene is built as a linear radiance map from photographs (inverse gamma 2.2): a lit room with a shadow whose
median is 2 ** -12.5 to 2 ** -13.5 of the maximum, a window onto a bright outdoor view, small lamps at the maximum
(at least 12 stops in all at sizes of 64 x 96 and above), and a textured object that moves between frames. Three
frames are rendered through the camera response of the dataset convention (§1): sensor signal s = radiance * t with
t = 2 ** EV and the shortest frame t = 1, shot and read noise, clipping at 1, L = s ** (1 / 2.2), 16-bit
quantisation. The non-reference frames also get a small sub-pixel camera shift. The radiance is scaled so that its
maximum is 1; the ground truth is the reference (medium) frame's radiance, in [0, 1]. So on unsaturated static
pixels ``L_ref ** 2.2 / t_ref`` equals the ground truth up to noise, while where the reference frame is clipped only
the short frame holds the answer.

The same arguments give the same bytes with the same NumPy and OpenCV builds.
"""

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
import skimage.data
from tqdm import tqdm

from lffnet_arch.data.scene_io import GT_NAME
from lffnet_arch.utils.file_util import atomic_path
from lffnet_arch.utils.hdr_util import imwrite_atomic, write_hdr

__all__ = ['DemoScene', 'demo_set_complete', 'ensure_demo_set', 'generate_demo_set', 'synthesize_scene', 'write_scene']

PathLike = Union[str, os.PathLike]

GAMMA = 2.2
REF_IDX = 1
FRAME_NAMES = ('ldr_0.tif', 'ldr_1.tif', 'ldr_2.tif')
EXPOSURE_NAME = 'exposure.txt'
MARKER_NAME = 'demo_set.json'
SCENE_PREFIX = 'demo_'
SPLITS = ('Training', 'Test')
# Bump whenever the generated pixels change, so ensure_demo_set regenerates an outdated set.
FORMAT_VERSION = 1

EV_CHOICES = ((0.0, 2.0, 4.0), (0.0, 3.0, 6.0))
SHOT_NOISE = 4e-6  # variance per unit of signal: a full well of 250k electrons
READ_NOISE = 1e-5  # standard deviation, in units of full scale
MIN_CAMERA_SHIFT, MAX_CAMERA_SHIFT = 1.0, 3.0  # pixels, non-reference frames only
MARGIN = 8  # canvas border so that shifted frames never sample outside the scene
MIN_SIZE = 32

# Only images shipped inside the scikit-image wheel (skimage/data/), so nothing is fetched from the network.
BACKGROUNDS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera', 'motorcycle', 'coins')
OUTDOOR_VIEWS = ('rocket', 'astronaut', 'motorcycle', 'coffee', 'chelsea')
TEXTURES = ('brick', 'gravel', 'grass', 'chelsea', 'astronaut', 'coffee', 'moon')


@dataclass
class DemoScene:
    """One synthetic scene, all arrays RGB.

    Attributes:
        ldrs: (T, H, W, 3) uint16 LDR frames, short to long; frame ``REF_IDX`` is the reference.
        exposures: T exposure values (EV, stops relative to the shortest frame, which has EV 0).
        gt: (H, W, 3) float32 linear HDR radiance in [0, 1], aligned with the reference frame.
        object_masks: (T, H, W) bool, where the moving object covers each frame's pixels (each frame's own image
            coordinates, so camera shift included).
    """

    ldrs: np.ndarray
    exposures: tuple
    gt: np.ndarray
    object_masks: np.ndarray

    @property
    def motion_mask(self) -> np.ndarray:
        """(H, W) bool, True where the moving object is in any frame; elsewhere the scene is static."""
        return self.object_masks.any(axis=0)


@cache
def _photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as read-only float32 (h, w, 3) or (h, w), gamma-encoded in [0, 1]."""
    img = skimage.data.stereo_motorcycle()[0] if name == 'motorcycle' else getattr(skimage.data, name)()
    img = np.asarray(img, dtype=np.float32) / 255.0
    img.setflags(write=False)
    return img


def _photo_crop(rng: np.random.Generator, names: Sequence[str], height: int, width: int) -> np.ndarray:
    """Random crop of a random photograph, resized to (height, width), RGB, gamma-encoded in [0, 1]."""
    img = _photo(names[rng.integers(len(names))])
    ih, iw = img.shape[:2]
    crop_h = min(ih, iw * height / width) * rng.uniform(0.55, 1.0)
    crop_w = crop_h * width / height
    top = int(rng.integers(0, ih - int(crop_h) + 1))
    left = int(rng.integers(0, iw - int(crop_w) + 1))
    crop = img[top : top + int(crop_h), left : left + int(crop_w)]
    interp = cv2.INTER_AREA if crop.shape[0] >= height else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (width, height), interpolation=interp)
    if crop.ndim == 2:
        tint = rng.uniform(0.7, 1.0, 3).astype(np.float32)
        crop = crop[..., None] * (tint / tint.max())
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.clip(crop, 0, 1)


def _linear(img: np.ndarray, floor: float = 0.01) -> np.ndarray:
    """Inverse gamma; the floor keeps black paint from having zero reflectance."""
    return np.maximum(img**GAMMA, floor).astype(np.float32)


def _smooth_field(rng: np.random.Generator, height: int, width: int, std: float) -> np.ndarray:
    grid = rng.normal(0.0, std, (3, 4)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _window_box(rng: np.random.Generator, height: int, width: int) -> tuple:
    """(top, left, h, w) of a window inside the visible part of the canvas."""
    wh = max(8, int(height * rng.uniform(0.3, 0.5)))
    ww = max(8, int(width * rng.uniform(0.2, 0.35)))
    return MARGIN + int(rng.integers(0, height - wh + 1)), MARGIN + int(rng.integers(0, width - ww + 1)), wh, ww


def _room_light(rng: np.random.Generator, reflectance: np.ndarray, window: tuple) -> np.ndarray:
    """Canvas irradiance (hc, wc, 3): a warm light and a soft-edged bluish shadow.

    The shadow's depth is set so that the median radiance in it is 2 ** -12.5 to 2 ** -13.5, about 12 to 13 stops
    below the lamps, whatever the photograph's brightness there.
    """
    hc, wc = reflectance.shape[:2]
    height, width = hc - 2 * MARGIN, wc - 2 * MARGIN
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:hc, 0:wc].astype(np.float32)
    proj = xx * np.cos(theta) + yy * np.sin(theta)
    # The shadow's share is set on the visible wall around the window, so that every scene has a dark region.
    wall = np.zeros((hc, wc), bool)
    wall[MARGIN : MARGIN + height, MARGIN : MARGIN + width] = True
    top, left, wh, ww = window
    wall[top : top + wh, left : left + ww] = False
    threshold = np.quantile(proj[wall], rng.uniform(0.2, 0.35))
    shadow = 1.0 / (1.0 + np.exp((proj - threshold) / rng.uniform(1.0, 4.0)))
    log2_lit = rng.uniform(-3.3, -2.3) + _smooth_field(rng, hc, wc, 0.35)
    core = wall & (shadow > 0.5)
    median = np.median(np.log2(reflectance.mean(axis=2)[core]) + log2_lit[core]) if core.any() else -5.0
    log2_light = log2_lit - (median + rng.uniform(12.5, 13.5)) * shadow
    warm = np.array([1.0, rng.uniform(0.85, 0.95), rng.uniform(0.7, 0.85)], np.float32)
    cool = np.array([rng.uniform(0.7, 0.85), rng.uniform(0.85, 0.95), 1.0], np.float32)
    tint = warm * (1 - shadow[..., None]) + cool * shadow[..., None]
    return np.exp2(log2_light)[..., None] * tint


def _add_window(rng: np.random.Generator, radiance: np.ndarray, window: tuple) -> None:
    """Replace a framed rectangle with a bright outdoor view (clipped in the reference frame)."""
    top, left, wh, ww = window
    view = _linear(_photo_crop(rng, OUTDOOR_VIEWS, wh, ww), floor=0.0)
    view = view / max(float(np.percentile(view.max(axis=2), 95)), 1e-3)
    view = rng.uniform(0.7, 0.95) * (0.5 + 0.5 * np.clip(view, 0, 1))
    bar = max(1, min(wh, ww) // 16)
    keep = np.zeros((wh, ww), bool)  # window frame and mullions keep the room's radiance
    keep[:bar], keep[-bar:], keep[:, :bar], keep[:, -bar:] = True, True, True, True
    keep[wh // 2 - bar // 2 : wh // 2 - bar // 2 + bar] = True
    keep[:, ww // 2 - bar // 2 : ww // 2 - bar // 2 + bar] = True
    region = radiance[top : top + wh, left : left + ww]
    region[~keep] = view[~keep]


def _lamps(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Canvas radiance of one to three small warm light sources with a glow; their cores hold the maximum."""
    hc, wc = height + 2 * MARGIN, width + 2 * MARGIN
    radiance = np.zeros((hc, wc, 3), np.float32)
    yy, xx = np.mgrid[0:hc, 0:wc].astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        radius = rng.uniform(1.5, 3.5) * max(1.0, min(height, width) / 128)
        cy = MARGIN + rng.uniform(radius + 1, height - radius - 1)
        cx = MARGIN + rng.uniform(radius + 1, width - radius - 1)
        dist = np.hypot(yy - cy, xx - cx)
        profile = np.clip(radius + 0.5 - dist, 0, 1) + 0.05 * np.exp(-((dist / (2 * radius)) ** 2))
        colour = np.array([1.0, rng.uniform(0.8, 0.95), rng.uniform(0.55, 0.8)], np.float32)
        radiance += profile[..., None] * colour
    return radiance


def _moving_object(rng: np.random.Generator, height: int, width: int) -> tuple:
    """A textured ellipse: its reflectance (oh, ow, 3), soft alpha (oh, ow) and three top-left canvas positions."""
    semi_h = max(4, int(min(height, width) * rng.uniform(0.12, 0.2)))
    semi_w = max(4, int(semi_h * rng.uniform(0.8, 1.5)))
    oh, ow = 2 * semi_h + 3, 2 * semi_w + 3
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
    rho = np.hypot((yy - oh // 2) / semi_h, (xx - ow // 2) / semi_w)
    alpha = np.clip((1 - rho) * min(semi_h, semi_w) + 0.5, 0, 1)
    reflectance = np.minimum(_linear(_photo_crop(rng, TEXTURES, oh, ow)) * np.exp2(rng.uniform(0, 1.5)), 1)
    step = min(height, width) * rng.uniform(0.06, 0.12)
    direction = rng.uniform(0, 2 * np.pi)
    velocity = step * np.array([np.sin(direction), np.cos(direction)])
    ref_pos = np.array([rng.uniform(0, height - oh), rng.uniform(0, width - ow)]) + MARGIN
    positions = []
    for i in range(len(FRAME_NAMES)):
        pos = ref_pos + (i - REF_IDX) * velocity * (rng.uniform(0.7, 1.3) if i != REF_IDX else 1.0)
        pos = np.clip(np.round(pos), 0, [height + 2 * MARGIN - oh, width + 2 * MARGIN - ow])
        positions.append(pos.astype(int))
    return reflectance, alpha, positions


def _camera_shift(rng: np.random.Generator) -> np.ndarray:
    """Sub-pixel (dy, dx) of a non-reference frame, MIN_CAMERA_SHIFT to MAX_CAMERA_SHIFT pixels long."""
    angle = rng.uniform(0, 2 * np.pi)
    return rng.uniform(MIN_CAMERA_SHIFT, MAX_CAMERA_SHIFT) * np.array([np.sin(angle), np.cos(angle)])


def _view(canvas: np.ndarray, height: int, width: int, shift: np.ndarray) -> np.ndarray:
    """The (height, width) window of a canvas at offset MARGIN + shift (sub-pixel, bilinear)."""
    if not shift.any():
        return canvas[MARGIN : MARGIN + height, MARGIN : MARGIN + width].copy()
    matrix = np.array([[1, 0, -(MARGIN + shift[1])], [0, 1, -(MARGIN + shift[0])]], np.float64)
    return cv2.warpAffine(canvas, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _expose(rng: np.random.Generator, radiance: np.ndarray, exposure_time: float) -> np.ndarray:
    """Camera response of the dataset convention: noisy signal, clipping, gamma 1 / 2.2, 16-bit quantisation."""
    signal = radiance.astype(np.float64) * exposure_time
    noisy = signal + np.sqrt(SHOT_NOISE * signal + READ_NOISE**2) * rng.standard_normal(signal.shape)
    ldr = np.clip(noisy, 0, 1) ** (1 / GAMMA)
    return np.round(ldr * 65535).astype(np.uint16)


def synthesize_scene(size: Sequence[int] = (128, 192), seed: Union[int, Sequence[int]] = 0) -> DemoScene:
    """Build one synthetic three-exposure scene.

    Args:
        size: (H, W) of the frames, each at least 32.
        seed: seed of NumPy's default generator (an int or a sequence of ints); equal seeds give equal scenes.

    Returns:
        The scene: LDR frames (3, H, W, 3) uint16, EVs, GT (H, W, 3) in [0, 1] and the object masks (3, H, W).
    """
    height, width = _check_size(size)
    rng = np.random.default_rng(seed)
    hc, wc = height + 2 * MARGIN, width + 2 * MARGIN
    exposures = EV_CHOICES[rng.integers(len(EV_CHOICES))]

    window = _window_box(rng, height, width)
    reflectance = _linear(_photo_crop(rng, BACKGROUNDS, hc, wc))
    light = _room_light(rng, reflectance, window)
    background = reflectance * light
    _add_window(rng, background, window)
    lamps = _lamps(rng, height, width)
    obj_reflectance, obj_alpha, positions = _moving_object(rng, height, width)

    canvases, alphas = [], []
    oh, ow = obj_alpha.shape
    for top, left in positions:
        alpha = np.zeros((hc, wc), np.float32)
        alpha[top : top + oh, left : left + ow] = obj_alpha
        canvas = background.copy()
        region = canvas[top : top + oh, left : left + ow]
        # The object is lit by the room's light where it stands, shadow included.
        obj_radiance = obj_reflectance * light[top : top + oh, left : left + ow]
        region[:] = region * (1 - obj_alpha[..., None]) + obj_radiance * obj_alpha[..., None]
        canvases.append(canvas + lamps)  # lamps hang in front, so the object never hides the brightest light
        alphas.append(alpha)
    peak = max(float(c.max()) for c in canvases)

    ldrs, object_masks, gt = [], [], None
    for i, (canvas, alpha) in enumerate(zip(canvases, alphas)):
        shift = np.zeros(2) if i == REF_IDX else _camera_shift(rng)
        radiance = np.clip(_view(canvas / peak, height, width, shift), 0, 1)
        object_masks.append(_view(alpha, height, width, shift) > 1e-3)
        if i == REF_IDX:
            gt = radiance.astype(np.float32)
        ldrs.append(_expose(rng, radiance, 2.0 ** exposures[i]))
    return DemoScene(ldrs=np.stack(ldrs), exposures=tuple(exposures), gt=gt, object_masks=np.stack(object_masks))


def write_scene(folder: PathLike, scene: DemoScene) -> None:
    """Write a scene in Kalantari's layout: ``ldr_<i>.tif`` (16-bit), ``exposure.txt`` and ``HDRImg.hdr``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, ldr in zip(FRAME_NAMES, scene.ldrs):
        imwrite_atomic(folder / name, np.ascontiguousarray(ldr[..., ::-1]))
    (folder / EXPOSURE_NAME).write_text(''.join(f'{ev:g}\n' for ev in scene.exposures))
    write_hdr(folder / GT_NAME, scene.gt)


def _check_size(size: Sequence[int]) -> tuple:
    if len(size) != 2 or any(int(s) != s or s < MIN_SIZE for s in size):
        raise ValueError(f'Demo scene size must be (H, W), two integers >= {MIN_SIZE}; got {tuple(size)}.')
    return int(size[0]), int(size[1])


def _parameters(num_train: int, num_val: int, size: Sequence[int], seed: int) -> dict:
    for name, value, low in (('num_train', num_train, 1), ('num_val', num_val, 1), ('seed', seed, 0)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f'{name} must be an integer >= {low}; got {value!r}.')
    height, width = _check_size(size)
    return {
        'format_version': FORMAT_VERSION,
        'num_train': int(num_train),
        'num_val': int(num_val),
        'size': [height, width],
        'seed': int(seed),
    }


def _scene_folders(root: Path, params: dict) -> list:
    counts = (params['num_train'], params['num_val'])
    return [root / split / f'{SCENE_PREFIX}{i:03d}' for split, count in zip(SPLITS, counts) for i in range(count)]


def demo_set_complete(
    root: PathLike, num_train: int = 16, num_val: int = 3, size: Sequence[int] = (128, 192), seed: int = 0
) -> bool:
    """Whether ``root`` holds a finished demo set made with exactly these arguments by this generator version."""
    root = Path(root)
    params = _parameters(num_train, num_val, size, seed)
    try:
        recorded = json.loads((root / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    if recorded != params:
        return False
    names = (*FRAME_NAMES, EXPOSURE_NAME, GT_NAME)
    return all((folder / name).is_file() for folder in _scene_folders(root, params) for name in names)


def _clear(root: Path, overwrite: bool) -> None:
    """Make room for a new set: refuse without ``overwrite``, and never delete what the generator did not write."""
    marker = root / MARKER_NAME
    occupied = [root / split for split in SPLITS if (root / split).is_dir() and any((root / split).iterdir())]
    if not occupied and not marker.exists():
        return
    if not overwrite:
        raise FileExistsError(
            f'{root} already holds a data set ({MARKER_NAME} or non-empty {"/".join(SPLITS)}); '
            'pass overwrite=True (--overwrite) to replace it.'
        )
    for split_dir in occupied:
        foreign = [p.name for p in split_dir.iterdir() if not (p.is_dir() and p.name.startswith(SCENE_PREFIX))]
        if foreign:
            raise FileExistsError(
                f'Refusing to overwrite {split_dir}: it holds {foreign[0]!r}, which is not a demo '
                f'scene (expected only {SCENE_PREFIX}* folders). Remove it yourself if intended.'
            )
    # The marker goes first, so an interrupted clean-up is never taken for a complete set.
    marker.unlink(missing_ok=True)
    for split_dir in occupied:
        shutil.rmtree(split_dir)


def generate_demo_set(
    root: PathLike,
    num_train: int = 16,
    num_val: int = 3,
    size: Sequence[int] = (128, 192),
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write a synthetic demo set in Kalantari's layout under ``root``.

    Scene ``i`` of a split depends only on (seed, split, i) and the size, so the same arguments give the same
    bytes. The marker ``demo_set.json`` is written last; a set without it is incomplete.

    Args:
        root: Output folder; ``root/Training`` and ``root/Test`` are created in it.
        num_train: Number of training scenes.
        num_val: Number of test scenes.
        size: (H, W) of every frame, each at least 32.
        seed: Non-negative integer seed.
        overwrite: Replace an existing demo set under ``root`` (folders other than demo scenes are never deleted).
        progress: Show a tqdm progress bar.

    Returns:
        ``root`` as a Path.

    Raises:
        FileExistsError: ``root`` already holds a data set and ``overwrite`` is False, or it holds files that the
            generator did not write.
        ValueError: A count, the size or the seed is out of range.
    """
    root = Path(root)
    params = _parameters(num_train, num_val, size, seed)
    _clear(root, overwrite)
    folders = _scene_folders(root, params)
    for folder in tqdm(folders, desc='Demo scenes', unit='scene', disable=not progress):
        split_idx, index = SPLITS.index(folder.parent.name), int(folder.name[len(SCENE_PREFIX) :])
        write_scene(folder, synthesize_scene(params['size'], seed=(params['seed'], split_idx, index)))
    with atomic_path(root / MARKER_NAME) as tmp:
        tmp.write_text(json.dumps(params, indent=2) + '\n')
    return root


def ensure_demo_set(root: PathLike, **kwargs: Any) -> Path:
    """Generate the demo set under ``root`` unless a complete one with the same arguments is already there.

    A missing, interrupted or differently parameterised demo set is (re)generated; folders that are not demo scenes
    are never deleted (``FileExistsError``). Keyword arguments are those of :func:`generate_demo_set`, without
    ``overwrite``.
    """
    if 'overwrite' in kwargs:
        raise TypeError('ensure_demo_set() decides on overwriting itself; call generate_demo_set() to force it.')
    progress = kwargs.pop('progress', False)
    if demo_set_complete(root, **kwargs):
        return Path(root)
    return generate_demo_set(root, overwrite=True, progress=progress, **kwargs)
