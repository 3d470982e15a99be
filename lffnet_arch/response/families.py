"""Forward camera responses by family: linear sensor value x in [0, 1] -> stored code value in [0, 1].

Every family is monotone with f(0) = 0 and f(1) = 1 before any pedestal, so the sensor's clipping point is code 1.
The families are named, so that a protocol can calibrate on some and hold others out:

| family | curve | parameters (drawn range) |
|---|---|---|
| ``gamma`` | x ** (1 / gamma) | ``gamma`` (1.8, 2.6) |
| ``srgb`` | IEC 61966-2-1 | none |
| ``filmic`` | sRGB, then the simulator's S-curve y ** c / (y ** c + (1 - y) ** c) | ``contrast`` (1.2, 1.8) |
| ``slog3`` | Sony S-Log3 | none |
| ``logc3`` | ARRI LogC3, EI 800 | none |
| ``vlog`` | Panasonic V-Log | none |
| ``clog3`` | Canon Log 3 | none |
| ``random`` | a blend of a power and a log curve under an S-curve with its own toe and shoulder | see :func:`_random` |

The log encodings map scene reflectance (0.18 for grey) to code values; here x in [0, 1] spans the reflectance
range up to the code value 1 of the published formula, and the codes are rescaled so that x = 0 gives 0 (their
black sits above 0, at 95 / 1023 for S-Log3, for example). Their linear toe segments stay as published.

Per-channel differences: every channel's code goes through its own power ``y ** warp`` (``warp`` near 1), which keeps
f(0) = 0 and f(1) = 1; parameters may also differ by channel. A pedestal ``black_level`` b lifts the codes,
y -> b + (1 - b) y, after the curve, as some in-camera renderings and film scans do.

:data:`SIMULATOR_FAMILIES` are the curves of the capture simulator's ``kalantari`` and ``handheld`` styles
(:mod:`lffnet_arch.data.simulator.capture`): ``gamma``, ``srgb`` and ``filmic``; :data:`HELD_OUT_FAMILIES` are the
others, which those styles never render. A protocol that trains on more families names its own held-out set.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

import numpy as np

__all__ = [
    'FAMILIES',
    'HELD_OUT_FAMILIES',
    'SIMULATOR_FAMILIES',
    'ForwardCurve',
    'draw_curve',
    'forward_curve',
    'srgb_encode',
]

Number = Union[float, Sequence[float]]


def srgb_encode(x: np.ndarray) -> np.ndarray:
    """The sRGB encoding (IEC 61966-2-1) of linear values in [0, 1]."""
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


def _gamma(x: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    return np.power(x, 1.0 / gamma)


def _filmic(x: np.ndarray, contrast: float = 1.5) -> np.ndarray:
    """The capture simulator's 'filmic' curve: sRGB, then an S-curve that darkens the toe and compresses the
    shoulder (``lffnet_arch.data.simulator.capture.camera_response``)."""
    y = srgb_encode(x)
    a, b = np.power(y, contrast), np.power(1.0 - y, contrast)
    return a / (a + b)


def _normalised_log(encode: Callable[[np.ndarray], np.ndarray], top: float) -> Callable[[np.ndarray], np.ndarray]:
    """A log encoding of reflectance r in [0, top] as a curve of x = r / top in [0, 1] with codes in [0, 1]."""
    black, white = float(encode(np.zeros(1))[0]), float(encode(np.full(1, top))[0])

    def curve(x: np.ndarray) -> np.ndarray:
        return (encode(x * top) - black) / (white - black)

    return curve


def _slog3_encode(r: np.ndarray) -> np.ndarray:
    """Sony S-Log3 (Sony's technical summary for S-Gamut3.Cine/S-Log3): reflectance -> 10-bit code / 1023."""
    log = (420.0 + np.log10((np.maximum(r, 0.01125) + 0.01) / 0.19) * 261.5) / 1023.0
    linear = (r * (171.2102946929 - 95.0) / 0.01125 + 95.0) / 1023.0
    return np.where(r >= 0.01125, log, linear)


def _logc3_encode(r: np.ndarray) -> np.ndarray:
    """ARRI LogC3 at EI 800 (ARRI's 'ALEXA Log C Curve' white paper): scene linear -> signal in [0, 1]."""
    cut, a, b, c, d, e, f = 0.010591, 5.555556, 0.052272, 0.247190, 0.385537, 5.367655, 0.092809
    return np.where(r > cut, c * np.log10(a * np.maximum(r, cut) + b) + d, e * r + f)


def _vlog_encode(r: np.ndarray) -> np.ndarray:
    """Panasonic V-Log (Panasonic's V-Log/V-Gamut reference manual): reflectance -> signal in [0, 1]."""
    cut, b, c, d = 0.01, 0.00873, 0.241514, 0.598206
    return np.where(r < cut, 5.6 * r + 0.125, c * np.log10(np.maximum(r, cut) + b) + d)


def _clog3_encode(r: np.ndarray) -> np.ndarray:
    """Canon Log 3 (Canon's Log Gamma white paper) of reflectance r (x = r / 0.9), non-negative part."""
    x = r / 0.9
    return np.where(
        x <= 0.014,
        1.9754798 * x + 0.12512219,
        0.36726845 * np.log10(np.maximum(x, 0.014) * 14.98325 + 1.0) + 0.12240537,
    )


# The reflectance at which each published formula reaches code value 1 (the top of its range).
_SLOG3 = _normalised_log(_slog3_encode, 0.19 * 10 ** ((1023.0 - 420.0) / 261.5) - 0.01)
_LOGC3 = _normalised_log(_logc3_encode, (10 ** ((1.0 - 0.385537) / 0.247190) - 0.052272) / 5.555556)
_VLOG = _normalised_log(_vlog_encode, 10 ** ((1.0 - 0.598206) / 0.241514) - 0.00873)
_CLOG3 = _normalised_log(_clog3_encode, 0.9 * (10 ** ((1.0 - 0.12240537) / 0.36726845) - 1.0) / 14.98325)


def _random(
    x: np.ndarray,
    mix: float = 0.5,
    gamma: float = 2.2,
    strength: float = 100.0,
    toe: float = 1.3,
    shoulder: float = 1.3,
    pivot: float = 1.0,
) -> np.ndarray:
    """A generic in-camera curve: base = mix * x ** (1 / gamma) + (1 - mix) * log(1 + strength x) / log(1 + strength),
    then S(y) = y ** toe / (y ** toe + pivot * (1 - y) ** shoulder): ``toe`` > 1 darkens the shadows, ``shoulder`` > 1
    rolls the highlights off, ``pivot`` moves the contrast point. Both parts are increasing, so the curve is."""
    base = mix * np.power(x, 1.0 / gamma) + (1.0 - mix) * np.log1p(strength * x) / math.log1p(strength)
    base = np.clip(base, 0.0, 1.0)  # at x = 1 rounding can leave it 1 ulp above 1, and (1 - base) ** shoulder NaN
    a, b = np.power(base, toe), pivot * np.power(1.0 - base, shoulder)
    return a / (a + b)


_CURVES: dict = {
    'gamma': _gamma,
    'srgb': lambda x: srgb_encode(x),
    'filmic': _filmic,
    'slog3': lambda x: _SLOG3(x),
    'logc3': lambda x: _LOGC3(x),
    'vlog': lambda x: _VLOG(x),
    'clog3': lambda x: _CLOG3(x),
    'random': _random,
}
# Parameter ranges a draw takes its values from: (low, high, log-uniform).
_DRAWS: dict = {
    'gamma': {'gamma': (1.8, 2.6, False)},
    'srgb': {},
    'filmic': {'contrast': (1.2, 1.8, False)},
    'slog3': {},
    'logc3': {},
    'vlog': {},
    'clog3': {},
    'random': {
        'mix': (0.0, 1.0, False),
        'gamma': (1.6, 2.8, False),
        'strength': (4.0, 2000.0, True),
        'toe': (1.0, 1.8, False),
        'shoulder': (1.0, 1.8, False),
        'pivot': (0.5, 2.0, True),
    },
}
FAMILIES = tuple(_CURVES)
SIMULATOR_FAMILIES = ('gamma', 'srgb', 'filmic')
HELD_OUT_FAMILIES = tuple(name for name in FAMILIES if name not in SIMULATOR_FAMILIES)


@dataclass(frozen=True)
class ForwardCurve:
    """A camera's forward response per channel: linear x in [0, 1] -> code in [0, 1].

    Attributes:
        family: One of :data:`FAMILIES`.
        params: Three mappings (R, G, B) of the family's parameters.
        warp: Per-channel exponent applied to the family's code (1 for none).
        black_level: Pedestal b: codes become b + (1 - b) y.
    """

    family: str
    params: tuple = field(default=({}, {}, {}))
    warp: tuple = (1.0, 1.0, 1.0)
    black_level: float = 0.0

    def __post_init__(self) -> None:
        if self.family not in _CURVES:
            raise ValueError(f'Unknown response family {self.family!r}; expected one of {FAMILIES}.')
        if len(self.params) != 3 or len(self.warp) != 3:
            raise ValueError(f'ForwardCurve needs three channels of params and warp, got {self.params}, {self.warp}.')
        if not all(math.isfinite(w) and w > 0 for w in self.warp):
            raise ValueError(f'ForwardCurve warp exponents must be finite and > 0, got {self.warp}.')
        if not 0 <= self.black_level < 1:
            raise ValueError(f'ForwardCurve black_level must be in [0, 1), got {self.black_level}.')

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Codes of linear values: x (M,) gives (M, 3); x (..., 3) gives (..., 3), channel by channel."""
        x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
        per_channel = x.ndim >= 2 and x.shape[-1] == 3
        out = np.empty(x.shape if per_channel else x.shape + (3,), np.float64)
        curve = _CURVES[self.family]
        for c in range(3):
            y = np.clip(curve(x[..., c] if per_channel else x, **self.params[c]), 0.0, 1.0)
            out[..., c] = np.power(y, self.warp[c]) if self.warp[c] != 1.0 else y
        return self.black_level + (1.0 - self.black_level) * out if self.black_level else out

    def describe(self) -> str:
        """A short label: family, parameters (the green channel's) and pedestal."""
        params = ', '.join(f'{k}={v:.3g}' for k, v in self.params[1].items())
        label = f'{self.family}({params})' if params else self.family
        return label + (f' + black {self.black_level:.3f}' if self.black_level else '')


def _per_channel(value: Number, name: str) -> tuple:
    values = tuple(float(v) for v in value) if isinstance(value, Sequence) else (float(value),) * 3
    if len(values) != 3:
        raise ValueError(f'Response parameter {name} must be a number or three numbers (R, G, B), got {value!r}.')
    return values


def forward_curve(
    family: str, *, warp: Number = 1.0, black_level: float = 0.0, **params: Union[Number, Mapping]
) -> ForwardCurve:
    """A member of a family with the given parameters (a number, or three numbers for R, G, B).

    Example::

        forward_curve('gamma', gamma=(2.1, 2.2, 2.3))
        forward_curve('slog3', warp=(0.97, 1.0, 1.04), black_level=0.02)
    """
    if family not in _CURVES:
        raise ValueError(f'Unknown response family {family!r}; expected one of {FAMILIES}.')
    unknown = sorted(set(params) - set(_DRAWS[family]))
    if unknown:
        raise ValueError(f'Response family {family!r} has no parameters {unknown}; it takes {sorted(_DRAWS[family])}.')
    split = {name: _per_channel(value, name) for name, value in params.items()}
    channels = tuple({name: values[c] for name, values in split.items()} for c in range(3))
    return ForwardCurve(family, channels, _per_channel(warp, 'warp'), float(black_level))


def draw_curve(
    family: str, rng: np.random.Generator, channel_spread: float = 0.05, black_level: float = 0.0
) -> ForwardCurve:
    """A random member of a family: its parameters from the documented ranges, and per-channel code exponents
    exp(u), u uniform in [-channel_spread, channel_spread].

    Args:
        family: One of :data:`FAMILIES`.
        rng: NumPy generator; equal states give equal curves.
        channel_spread: Strength of the per-channel differences (0 for none).
        black_level: Pedestal of the codes.
    """
    if family not in _CURVES:
        raise ValueError(f'Unknown response family {family!r}; expected one of {FAMILIES}.')
    params = {}
    for name, (low, high, log) in _DRAWS[family].items():
        value = rng.uniform(math.log(low), math.log(high)) if log else rng.uniform(low, high)
        params[name] = float(math.exp(value) if log else value)
    warp = tuple(float(w) for w in np.exp(rng.uniform(-channel_spread, channel_spread, 3)))
    return forward_curve(family, warp=warp, black_level=black_level, **params)
