"""The capture simulator's knobs (:class:`CaptureSettings`), their checks, and the predefined styles.

Pairs ``(low, high)`` are drawn per bracket by :func:`lffnet_arch.data.simulator.capture.simulate_bracket`. Every
option is checked when the settings are made, naming the option and what was expected: types, ranges, an exposure
ladder within the 2^20 ratio inference accepts, objects no larger than the scene crop.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Optional

from lffnet_arch.response.families import FAMILIES
from lffnet_arch.schema import did_you_mean

__all__ = [
    'HELD_OUT_RESPONSES',
    'MAX_FRAMES',
    'MAX_LADDER_STOPS',
    'RESPONSES',
    'STYLES',
    'CaptureSettings',
    'settings_for_style',
]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


RESPONSES = ('gamma', 'srgb', 'filmic')
# Response families no style draws: held out for evaluation (options/evaluate/heldout.yml).
HELD_OUT_RESPONSES = ('vlog', 'clog3')
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


@dataclass(frozen=True)
class CaptureSettings:
    """The simulator's knobs. Pairs ``(low, high)`` are drawn uniformly per bracket (log-uniformly where noted).

    Attributes:
        num_exposure: Frames per bracket T.
        ref_idx: Reference frame; None means (T - 1) // 2.
        stops: Stops between consecutive frames, (low, high); Kalantari's 2 or 3 is ``stop_choices``.
        stop_choices: If given, the spacing is one of these instead of drawn from ``stops``.
        key_level: Sensor level (fraction of full scale) of the reference crop's log-average luminance, log-uniform.
        responses: Tone-curve families to choose from: 'gamma', 'srgb', 'filmic' (as drawn since the first
            styles), and the further families of :mod:`lffnet_arch.response.families` (log encodings of cine
            cameras, random curves with toe and shoulder).
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
        channel_spread: Per-channel differences of the families beyond gamma, sRGB and filmic (log encodings,
            random curves): each channel's code gets its own exponent exp(u), u uniform in [-spread, spread].
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
    channel_spread: float = 0.05

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
        unknown = set(self.responses) - set(FAMILIES) if isinstance(self.responses, tuple) else {self.responses}
        if not self.responses or unknown:
            raise ValueError(f'Capture option responses must be a non-empty list of {FAMILIES}, got {self.responses}.')
        if not _number(self.channel_spread) or not 0 <= self.channel_spread <= 0.5:
            raise ValueError(f'Capture option channel_spread must be in [0, 0.5], got {self.channel_spread!r}.')
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


HANDHELD = dict(
    stops=(1.0, 3.0),
    responses=('srgb', 'filmic', 'gamma'),
    bit_depth=8,
    jpeg_quality=(75, 97),
    max_rotation=1.0,
    max_translation=4.0,
    num_objects=(0, 2),
    flare=(0.0, 0.02),
    black_level=(0.0, 0.06),
)
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
    'handheld': HANDHELD,
    # Every response family but the held-out ones (HELD_OUT_RESPONSES), metered from night (0.3% of full scale) to
    # snow (60%), 1 to 4 stops apart, gamma 1.0-3.0, per-channel differences: the wider simulator.
    'wide': dict(
        HANDHELD,
        stops=(1.0, 4.0),
        key_level=(0.003, 0.6),
        responses=('gamma', 'srgb', 'filmic', 'slog3', 'logc3', 'random'),
        gamma=(1.0, 3.0),
        channel_spread=0.05,
    ),
    # A phone at night: high ISO (a full well of 100-10,000 electrons, read noise up to 1% of full scale), metered
    # dark (0.3-5% of full scale), so the reference frame's shadows are grainy and the long frame's are clean.
    'night': dict(
        HANDHELD,
        key_level=(0.003, 0.05),
        shot_noise=(1e-4, 1e-2),
        read_noise=(1e-3, 1e-2),
        responses=('gamma', 'srgb', 'filmic', 'random'),
        gamma=(1.8, 2.6),
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
