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

The styles (:data:`~lffnet_arch.data.simulator.settings.STYLES`) and every knob
(:class:`~lffnet_arch.data.simulator.settings.CaptureSettings`) live in :mod:`lffnet_arch.data.simulator.settings`;
every knob can be overridden on top of a style. ``kalantari``: a tripod, gamma 2.2, 16-bit TIFF-like frames 2 or 3
stops apart, low noise (the Kalantari 2017 protocol). ``handheld``: a phone or compact camera: 1 to 3 stops, JPEG
at quality 75-97 through a random tone curve, more noise, camera shake, up to 2% veiling glare and a black pedestal
of up to 0.06. ``wide``: the handheld camera through every response family but the held-out ones, metered from
night to snow, 1 to 4 stops apart. ``night``: the handheld camera at a phone's high ISO, metered dark: shot noise of a
full well down to 100 electrons, read noise up to 1% of full scale.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import cv2
import numpy as np

from lffnet_arch.data.simulator.radiance import RadianceMap
from lffnet_arch.data.simulator.settings import RESPONSES, STYLES, CaptureSettings, settings_for_style
from lffnet_arch.response.families import ForwardCurve, draw_curve, forward_curve, srgb_encode

__all__ = [
    'STYLES',
    'Bracket',
    'CaptureSettings',
    'camera_response',
    'canvas_size',
    'settings_for_style',
    'simulate_bracket',
]

_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


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


def _uniform(rng: np.random.Generator, pair: Sequence[float]) -> float:
    return float(rng.uniform(pair[0], pair[1])) if pair[1] > pair[0] else float(pair[0])


def _log_uniform(rng: np.random.Generator, pair: Sequence[float]) -> float:
    return float(math.exp(_uniform(rng, (math.log(pair[0]), math.log(pair[1])))))


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
    y = srgb_encode(x)
    if kind == 'srgb' or contrast == 1.0:
        return y
    if kind != 'filmic':
        raise ValueError(f'Unknown camera response {kind!r}; expected one of {RESPONSES}.')
    a, b = np.power(y, contrast), np.power(1.0 - y, contrast)
    return a / (a + b)


def forward_response(response: Mapping[str, Any]) -> ForwardCurve:
    """The forward camera curve a bracket was rendered with (its ``info['response']``), pedestal included: the
    truth that calibration estimates and that the evaluator's oracle rows linearise with."""
    black = float(response.get('black_level', 0.0))
    if 'curve' in response:
        curve = response['curve']
        params = tuple(dict(p) for p in curve['params'])
        return ForwardCurve(curve['family'], params, tuple(curve['warp']), black)
    kind = response['kind']
    if kind == 'gamma':
        return forward_curve('gamma', gamma=response['gamma'], black_level=black)
    if kind == 'filmic' and response['contrast'] != 1.0:
        return forward_curve('filmic', contrast=response['contrast'], black_level=black)
    return forward_curve('srgb', black_level=black)


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
    if 'curve' in response:
        y = forward_response(response)(x)
    else:
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
    if kind not in RESPONSES:  # the further families draw after everything else, so earlier styles are unchanged
        curve = draw_curve(kind, rng, settings.channel_spread, response['black_level'])
        response['curve'] = {'family': curve.family, 'params': curve.params, 'warp': curve.warp}
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
