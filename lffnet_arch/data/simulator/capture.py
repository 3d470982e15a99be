"""Capture simulator: real radiance in, realistic exposure brackets out, the ground truth aligned to the reference.

One bracket is made from a crop of a radiance map (a linear HDR photograph, :mod:`lffnet_arch.data.simulator.radiance`):

1. **Scene.** A crop (random scale, flip and 90-degree rotation) plus moving objects: patches cut from other
   radiance maps under soft elliptical masks, each brighter or darker than the background around it by a random
   number of stops, moving on a line (with jitter) from frame to frame and occluding what is behind them.
2. **Camera motion** (handheld): every non-reference frame sees the scene through a small random rotation and
   translation about the crop's centre; the reference frame does not move.
3. **Exposure ladder.** T frames ``stops`` apart; the reference frame is metered so that the log-average luminance
   of its crop lands at a random ``key_level`` of the sensor's full scale. EVs are written relative to the
   shortest frame (EV 0, t = 1), as the networks expect.
4. **Sensor.** Linear signal = radiance x exposure (full scale 1), plus optional veiling glare (``flare``: a
   fraction of the frame's mean signal, the light the lens scatters); shot noise (variance ``shot_noise`` x signal)
   and read noise (standard deviation ``read_noise``) are added in this linear domain; the raw value then clips at
   full scale, per channel, exactly where a sensor saturates, before any tone curve.
5. **Camera response** (the in-camera rendering): a pure gamma, the sRGB curve, or ``filmic`` (sRGB followed by an
   S-shaped contrast curve that adds the toe and shoulder of in-camera JPEG rendering), then an optional pedestal
   (``black_level``: lifted blacks of some renderings and of film scans).
6. **Encoding.** 16-bit or 8-bit quantisation, then optional JPEG compression (8-bit only).

The ground truth is the reference frame's scene radiance in the units of the shortest frame's sensor signal
(so ``L ** 2.2 / t`` of an unclipped, noise-free gamma-2.2 frame equals it), clipped to [0, 1], the range of the
networks' output: values above 1 would saturate even the shortest frame.

Every random draw of a bracket comes from one NumPy generator seeded with ``(seed, epoch, index)``, so a bracket is
the same in any process, with any number of data-loader workers, and after a resume.

Two styles are predefined (:data:`STYLES`); every knob of :class:`CaptureSettings` can be overridden on top of a
style. ``kalantari``: a tripod, gamma 2.2, 16-bit TIFF-like frames 2 or 3 stops apart, low noise (the Kalantari
2017 protocol). ``handheld``: a phone or compact camera: 1 to 3 stops, JPEG at quality 75-97 through a random
tone curve, more noise, camera shake, up to 2% veiling glare and a black pedestal of up to 0.06.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Optional

import cv2
import numpy as np

from lffnet_arch.data.simulator.radiance import RadianceMap
from lffnet_arch.schema import did_you_mean

__all__ = [
    'STYLES',
    'Bracket',
    'CaptureSettings',
    'camera_response',
    'canvas_size',
    'settings_for_style',
    'simulate_bracket',
]

RESPONSES = ('gamma', 'srgb', 'filmic')
MAX_FRAMES = 16
MAX_LADDER_STOPS = 20  # the widest exposure ratio inference accepts is 2 ** 20
# (low bound, high bound, integers, low bound excluded) of every (low, high) option.
PAIR_RANGES = {
    'stops': (0, 10, False, True),
    'key_level': (0, 0.99, False, True),  # below full scale
    'gamma': (0, 10, False, True),
    'contrast': (0, 10, False, True),
    'shot_noise': (0, 1, False, True),
    'read_noise': (0, 1, False, True),
    'object_size': (0, 1, False, True),  # a fraction of the scene crop's side
    'scale': (0, 64, False, True),
    'num_objects': (0, 16, True, False),
    'object_speed': (0, 1, False, False),
    'object_stops': (-10, 10, False, False),
    'flare': (0, 0.5, False, False),
    'black_level': (0, 0.5, False, False),
    'jpeg_quality': (1, 100, True, False),
}
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass(frozen=True)
class CaptureSettings:
    """The simulator's knobs. Pairs ``(low, high)`` are drawn uniformly per bracket (log-uniformly where noted).

    Attributes:
        num_exposure: Frames per bracket T.
        ref_idx: Reference frame; None means (T - 1) // 2.
        stops: Stops between consecutive frames, (low, high); Kalantari's 2 or 3 is ``stop_choices``.
        stop_choices: If given, the spacing is one of these instead of drawn from ``stops``.
        key_level: Sensor level (fraction of full scale) of the reference crop's log-average luminance, log-uniform.
        responses: Tone-curve families to choose from: 'gamma', 'srgb', 'filmic'.
        gamma: Gamma of the 'gamma' response, (low, high).
        contrast: Strength of the 'filmic' S-curve, (low, high); 1 is no S-curve.
        shot_noise: Shot-noise variance per unit of signal (1 / full-well electrons), log-uniform.
        read_noise: Read-noise standard deviation in units of full scale, log-uniform.
        bit_depth: 8 or 16.
        jpeg_quality: (low, high) JPEG quality, or None for no compression (8-bit only).
        max_rotation: Largest camera rotation of a non-reference frame, degrees.
        max_translation: Largest camera translation of a non-reference frame, pixels.
        num_objects: (low, high) moving objects per bracket, inclusive.
        object_size: (low, high) object diameter as a fraction of the scene crop's side (the frames plus the margin
            that camera motion needs, see :func:`canvas_size`).
        object_speed: (low, high) object displacement per frame, as a fraction of the same side.
        object_stops: (low, high) object brightness relative to the background, in stops.
        scale: (low, high) downscaling of the radiance map before cropping, log-uniform (1 = native pixels).
        flare: (low, high) veiling glare: light scattered by the lens, added uniformly to each frame's linear signal
            as this fraction of the frame's mean (unclipped) signal per channel; it lifts dark regions of long
            exposures. (0, 0) for none.
        black_level: (low, high) pedestal of the encoded values, y -> b + (1 - b) y after the tone curve (lifted
            blacks of some camera renderings and of film scans). (0, 0) for none.
    """

    num_exposure: int = 3
    ref_idx: Optional[int] = None
    stops: tuple = (1.0, 3.0)
    stop_choices: Optional[tuple] = None
    key_level: tuple = (0.05, 0.4)
    responses: tuple = RESPONSES
    gamma: tuple = (1.8, 2.6)
    contrast: tuple = (1.0, 1.8)
    shot_noise: tuple = (1e-5, 1e-3)
    read_noise: tuple = (2e-4, 3e-3)
    bit_depth: int = 8
    jpeg_quality: Optional[tuple] = (75, 97)
    max_rotation: float = 1.0
    max_translation: float = 4.0
    num_objects: tuple = (0, 2)
    object_size: tuple = (0.15, 0.45)
    object_speed: tuple = (0.03, 0.12)
    object_stops: tuple = (-3.0, 3.0)
    scale: tuple = (1.0, 2.0)
    flare: tuple = (0.0, 0.0)
    black_level: tuple = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ('num_exposure', 'bit_depth'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f'Capture option {name} must be an integer, got {value!r}.')
        if not 2 <= self.num_exposure <= MAX_FRAMES:
            raise ValueError(f'Capture option num_exposure must be in [2, {MAX_FRAMES}], got {self.num_exposure}.')
        if self.ref_idx is not None and (isinstance(self.ref_idx, bool) or not isinstance(self.ref_idx, int)):
            raise ValueError(f'Capture option ref_idx must be an integer or ~, got {self.ref_idx!r}.')
        ref = self.reference
        if not 0 <= ref < self.num_exposure:
            raise ValueError(f'Capture option ref_idx must be in [0, {self.num_exposure}), got {ref}.')
        if self.bit_depth not in (8, 16):
            raise ValueError(f'Capture option bit_depth must be 8 or 16, got {self.bit_depth}.')
        if self.jpeg_quality is not None and self.bit_depth != 8:
            raise ValueError('Capture option jpeg_quality needs bit_depth 8 (JPEG is an 8-bit format); set it to ~.')
        unknown = set(self.responses) - set(RESPONSES) if isinstance(self.responses, tuple) else {self.responses}
        if not self.responses or unknown:
            raise ValueError(f'Capture option responses must be a non-empty list of {RESPONSES}, got {self.responses}.')
        self._check_pairs()
        if self.stop_choices is not None:
            choices = self.stop_choices
            if not isinstance(choices, tuple) or not choices or not all(_number(c) and c > 0 for c in choices):
                raise ValueError(f'Capture option stop_choices must be a list of positive stops, got {choices!r}.')
        for name in ('max_rotation', 'max_translation'):
            value = getattr(self, name)
            if not _number(value) or value < 0:
                raise ValueError(f'Capture option {name} must be a number >= 0, got {value!r}.')
        widest = max(self.stop_choices) if self.stop_choices is not None else self.stops[1]
        if widest * (self.num_exposure - 1) > MAX_LADDER_STOPS:
            raise ValueError(
                f'Capture options stops / stop_choices and num_exposure: a ladder of {self.num_exposure} frames up '
                f'to {widest:g} stops apart spans {widest * (self.num_exposure - 1):g} stops; at most '
                f'{MAX_LADDER_STOPS} (an exposure ratio of 2^{MAX_LADDER_STOPS}, the most inference accepts).'
            )

    def _check_pairs(self) -> None:
        """Every (low, high) option: two numbers (integers where noted) with low <= high, within its range."""
        for name, (low_bound, high_bound, integer, open_low) in PAIR_RANGES.items():
            value = getattr(self, name)
            if name == 'jpeg_quality' and value is None:
                continue
            ok = isinstance(value, tuple) and len(value) == 2 and all(_number(v) for v in value)
            ok = ok and (not integer or all(float(v).is_integer() for v in value))
            ok = ok and (value[0] > low_bound if open_low else value[0] >= low_bound) and value[0] <= value[1]
            if not ok or value[1] > high_bound:
                kind = 'integers' if integer else 'numbers'
                low_rule = f'{low_bound} < low' if open_low else f'{low_bound} <= low'
                raise ValueError(
                    f'Capture option {name} must be (low, high), {kind} with {low_rule} <= high <= {high_bound}, '
                    f'got {value!r}.'
                )

    @property
    def reference(self) -> int:
        return (self.num_exposure - 1) // 2 if self.ref_idx is None else int(self.ref_idx)


STYLES = {
    'kalantari': dict(
        stop_choices=(2.0, 3.0),
        responses=('gamma',),
        gamma=(2.2, 2.2),
        shot_noise=(4e-6, 4e-5),
        read_noise=(1e-4, 1e-3),
        bit_depth=16,
        jpeg_quality=None,
        max_rotation=0.0,
        max_translation=0.0,
        num_objects=(1, 2),
    ),
    'handheld': dict(
        stops=(1.0, 3.0),
        responses=('srgb', 'filmic', 'gamma'),
        bit_depth=8,
        jpeg_quality=(75, 97),
        max_rotation=1.0,
        max_translation=4.0,
        num_objects=(0, 2),
        flare=(0.0, 0.02),
        black_level=(0.0, 0.06),
    ),
}


def settings_for_style(style: str, overrides: Optional[Mapping[str, Any]] = None) -> CaptureSettings:
    """The settings of a predefined style (:data:`STYLES`) with ``overrides`` on top (lists become tuples).

    Raises:
        ValueError: An unknown style or option name.
    """
    if style not in STYLES:
        raise ValueError(f'Unknown capture style {style!r}; expected one of {sorted(STYLES)}.')
    names = {f.name for f in fields(CaptureSettings)}
    values = dict(STYLES[style])
    for key, value in (overrides or {}).items():
        if key not in names:
            hint = did_you_mean(key, sorted(names)) or f'; expected one of {sorted(names)}'
            raise ValueError(f'Unknown capture option {key!r} for style {style!r}{hint}.')
        values[key] = tuple(value) if isinstance(value, list) else value
    return replace(CaptureSettings(), **values)


@dataclass
class Bracket:
    """One simulated capture, all arrays RGB.

    Attributes:
        ldrs: (T, H, W, 3) uint8 or uint16 frames, short to long, as the camera would store them (JPEG decoded).
        evs: (T,) float64 exposure values, EV 0 for the shortest frame.
        gt: (H, W, 3) float32 linear HDR in [0, 1] aligned with the reference frame.
        jpeg: T encoded JPEG files when the style compresses, else None.
        info: What was drawn (photograph, response, noise, ...), for logs and tests.
    """

    ldrs: np.ndarray
    evs: np.ndarray
    gt: np.ndarray
    jpeg: Optional[list]
    info: dict


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _uniform(rng: np.random.Generator, pair: Sequence[float]) -> float:
    return float(rng.uniform(pair[0], pair[1])) if pair[1] > pair[0] else float(pair[0])


def _log_uniform(rng: np.random.Generator, pair: Sequence[float]) -> float:
    return float(math.exp(_uniform(rng, (math.log(pair[0]), math.log(pair[1])))))


def _srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


def camera_response(x: np.ndarray, kind: str, gamma: float = 2.2, contrast: float = 1.0) -> np.ndarray:
    """A camera's tone curve: linear sensor value in [0, 1] -> encoded value in [0, 1], monotonic, f(0) = 0, f(1) = 1.

    Args:
        x: Clipped linear values.
        kind: 'gamma' (x ** (1 / gamma)), 'srgb' (IEC 61966-2-1), or 'filmic' (sRGB followed by the S-curve
            y ** c / (y ** c + (1 - y) ** c) with c = ``contrast``, which darkens shadows (toe) and compresses
            highlights (shoulder) like in-camera JPEG rendering).
    """
    x = np.clip(x, 0.0, 1.0)
    if kind == 'gamma':
        return np.power(x, 1.0 / gamma)
    y = _srgb(x)
    if kind == 'srgb' or contrast == 1.0:
        return y
    if kind != 'filmic':
        raise ValueError(f'Unknown camera response {kind!r}; expected one of {RESPONSES}.')
    a, b = np.power(y, contrast), np.power(1.0 - y, contrast)
    return a / (a + b)


def _crop(rng: np.random.Generator, image: np.ndarray, size: int, scale: float) -> np.ndarray:
    """A random (size, size) window of ``image`` downscaled by ``scale`` (area averaging), flipped and rotated."""
    height, width = image.shape[:2]
    scale = min(scale, height / size, width / size)
    side = max(size, int(round(size * scale)))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    window = image[top : top + side, left : left + side]
    if side != size:
        window = cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        window = window[:, ::-1]
    return np.ascontiguousarray(np.rot90(window, int(rng.integers(4))), dtype=np.float32)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ _LUMA


def _log_average(rgb: np.ndarray) -> float:
    lum = _luminance(rgb)
    floor = max(float(lum.max()) * 1e-6, 1e-12)
    return float(np.exp(np.mean(np.log(np.maximum(lum, floor)))))


def _object_mask(rng: np.random.Generator, diameter: int) -> np.ndarray:
    """(d, d) soft mask of a random ellipse (1 inside, a 1.5-pixel ramp at the edge)."""
    yy, xx = (np.mgrid[0:diameter, 0:diameter].astype(np.float32) - (diameter - 1) / 2) / (diameter / 2)
    angle = rng.uniform(0, math.pi)
    aspect = rng.uniform(0.5, 1.0)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = (-xx * math.sin(angle) + yy * math.cos(angle)) / aspect
    rho = np.sqrt(u * u + v * v)
    return np.clip((1.0 - rho) * diameter / 3.0 + 0.5, 0.0, 1.0).astype(np.float32)


def _objects(
    rng: np.random.Generator, maps: Sequence[RadianceMap], background: np.ndarray, settings: CaptureSettings
) -> list:
    """Moving objects: (radiance patch, mask, per-frame top-left positions) on a canvas like ``background``."""
    canvas = background.shape[0]  # objects may enter and leave the frames' view of it
    count = int(rng.integers(settings.num_objects[0], settings.num_objects[1] + 1))
    objects = []
    level = _log_average(background)
    ref = settings.reference
    for _ in range(count):
        diameter = max(8, int(canvas * _uniform(rng, settings.object_size)))
        source = maps[int(rng.integers(len(maps)))].image
        patch = _crop(rng, source, diameter, _log_uniform(rng, settings.scale))
        patch *= level * 2.0 ** _uniform(rng, settings.object_stops) / _log_average(patch)
        mask = _object_mask(rng, diameter)
        speed = canvas * _uniform(rng, settings.object_speed)
        direction = rng.uniform(0, 2 * math.pi)
        velocity = speed * np.array([math.sin(direction), math.cos(direction)])
        start = rng.uniform(-diameter / 2, canvas - diameter / 2, size=2)
        positions = []
        for i in range(settings.num_exposure):
            jitter = rng.normal(0.0, 0.15 * speed, size=2) if i != ref else 0.0
            positions.append(np.round(start + (i - ref) * velocity + jitter).astype(int))
        objects.append((patch, mask, positions))
    return objects


def _composite(background: np.ndarray, objects: list, frame: int) -> np.ndarray:
    scene = background.copy()
    size = scene.shape[0]
    for patch, mask, positions in objects:
        top, left = positions[frame]
        d = mask.shape[0]
        y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + d, size), min(left + d, size)
        if y0 >= y1 or x0 >= x1:
            continue
        m = mask[y0 - top : y1 - top, x0 - left : x1 - left, None]
        region = scene[y0:y1, x0:x1]
        region[:] = region * (1.0 - m) + patch[y0 - top : y1 - top, x0 - left : x1 - left] * m
    return scene


def _camera_warp(rng: np.random.Generator, scene: np.ndarray, size: int, settings: CaptureSettings) -> tuple:
    """The central (size, size) view of the canvas after a small random rotation and translation."""
    canvas = scene.shape[0]
    angle = _uniform(rng, (-settings.max_rotation, settings.max_rotation)) if settings.max_rotation else 0.0
    shift = rng.uniform(-settings.max_translation, settings.max_translation, 2) if settings.max_translation else (0, 0)
    centre = (canvas - 1) / 2.0
    matrix = cv2.getRotationMatrix2D((centre, centre), angle, 1.0)
    offset = (canvas - size) / 2.0
    matrix[:, 2] += np.array(shift, np.float64) - offset
    view = cv2.warpAffine(scene, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return view, (float(angle), float(shift[0]), float(shift[1]))


def _centre(scene: np.ndarray, size: int) -> np.ndarray:
    offset = (scene.shape[0] - size) // 2
    return scene[offset : offset + size, offset : offset + size].copy()


def _encode(rng: np.random.Generator, x: np.ndarray, settings: CaptureSettings, response: dict) -> tuple:
    """Clipped linear frame -> stored integers (and the JPEG file), through the tone curve and quantisation."""
    y = camera_response(x, response['kind'], response['gamma'], response['contrast'])
    if response['black_level']:
        y = response['black_level'] + (1.0 - response['black_level']) * y
    if settings.bit_depth == 16:
        return np.round(y * 65535).astype(np.uint16), None
    ldr = np.round(y * 255).astype(np.uint8)
    if settings.jpeg_quality is None:
        return ldr, None
    quality = int(rng.integers(settings.jpeg_quality[0], settings.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(ldr[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('OpenCV failed to encode a JPEG frame.')
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(decoded), buf.tobytes()


def canvas_size(settings: CaptureSettings, size: int) -> int:
    """Side of the scene crop a bracket of (size, size) frames needs: room for the camera motion, whose rotation
    moves a corner of the view by at most size * sin(rotation), plus the translation."""
    if not settings.max_rotation and not settings.max_translation:
        return size
    margin = math.ceil(settings.max_translation + size * math.sin(math.radians(settings.max_rotation))) + 2
    return size + 2 * margin


def simulate_bracket(maps: Sequence[RadianceMap], settings: CaptureSettings, size: int, seed: Sequence[int]) -> Bracket:
    """Simulate one bracket of (size, size) frames from a random crop of a random radiance map.

    Args:
        maps: The radiance maps to draw from (the scene and the moving objects).
        settings: The capture settings, e.g. from :func:`settings_for_style`.
        size: Side of the frames and the GT in pixels (at least 16).
        seed: Integers seeding NumPy's generator, e.g. (seed, epoch, index): equal seeds give equal brackets.
    """
    if size < 16:
        raise ValueError(f'Simulated bracket size must be >= 16 pixels, got {size}.')
    if not maps:
        raise ValueError('simulate_bracket needs at least one radiance map.')
    rng = np.random.default_rng([int(s) for s in seed])
    canvas = canvas_size(settings, size)
    photo = maps[int(rng.integers(len(maps)))]
    background = _crop(rng, photo.image, canvas, _log_uniform(rng, settings.scale))
    objects = _objects(rng, maps, background, settings)

    ref, num = settings.reference, settings.num_exposure
    scenes, poses = [], []
    for i in range(num):
        scene = _composite(background, objects, i)
        if i == ref or (settings.max_rotation == 0 and settings.max_translation == 0):
            scenes.append(_centre(scene, size))
            poses.append((0.0, 0.0, 0.0))
        else:
            view, pose = _camera_warp(rng, scene, size, settings)
            scenes.append(view)
            poses.append(pose)

    spacing = float(rng.choice(settings.stop_choices)) if settings.stop_choices else _uniform(rng, settings.stops)
    evs = spacing * np.arange(num, dtype=np.float64)
    key = _log_uniform(rng, settings.key_level)
    # Reference exposure: log-average luminance -> key; the shortest frame's exposure sets the GT's units.
    t_ref = key / _log_average(scenes[ref])
    t_short = t_ref / 2.0 ** evs[ref]
    gt = np.clip(scenes[ref] * t_short, 0.0, 1.0).astype(np.float32)

    kind = str(rng.choice(settings.responses))
    response = {'kind': kind, 'gamma': _uniform(rng, settings.gamma), 'contrast': _uniform(rng, settings.contrast)}
    shot, read = _log_uniform(rng, settings.shot_noise), _log_uniform(rng, settings.read_noise)
    # Drawn last (and only when their range is not (0, 0)), so styles without them keep their brackets.
    flare = _uniform(rng, settings.flare)
    response['black_level'] = _uniform(rng, settings.black_level)
    ldrs, jpegs = [], []
    for i, scene in enumerate(scenes):
        signal = scene.astype(np.float64) * (t_short * 2.0 ** evs[i])
        if flare:
            signal = signal + flare * signal.mean(axis=(0, 1))
        noisy = signal + np.sqrt(shot * np.minimum(signal, 4.0) + read**2) * rng.standard_normal(signal.shape)
        stored, jpeg = _encode(rng, np.clip(noisy, 0.0, 1.0), settings, response)
        ldrs.append(stored)
        jpegs.append(jpeg)
    info = {
        'photo': photo.name,
        'stops': spacing,
        'key_level': key,
        'response': response,
        'shot_noise': shot,
        'read_noise': read,
        'flare': flare,
        'camera_poses': poses,
        'num_objects': len(objects),
    }
    return Bracket(np.stack(ldrs), evs, gt, jpegs if settings.jpeg_quality is not None else None, info)
