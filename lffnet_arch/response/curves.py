"""A camera's inverse response as a value: code value in [0, 1] -> relative linear value, per channel.

Fusion builds its HDR-domain input as g(L) / t from LDR frames L (:mod:`lffnet_arch.hdr_input`). ``g`` is the
camera's inverse response: monotone non-decreasing per channel and normalised to g(1) = 1, the sensor's clipping
point. A :class:`Response` stores it as a lookup table (``SAMPLES`` codes per channel, linearly interpolated); gamma,
sRGB and linear responses also keep their formula, so that :meth:`Response.linearise` is exact for them.

The JSON file (:meth:`Response.to_json`) is small and versioned::

    {"format": "lffnet_arch.response", "version": 1, "kind": "table", "channels": "RGB",
     "table": [[g_R(0), ..., g_R(1)], [g_G ...], [g_B ...]], "info": {...}}

``kind`` is ``table`` (N >= 2 values per channel at the codes i / (N - 1), finite, non-negative, non-decreasing,
normalised on reading so that g(1) = 1), ``gamma`` (with a ``gamma`` number instead of a table), ``srgb`` or
``linear``. ``info`` is optional and free-form (how the curve was made); reading ignores it.

Option strings (:func:`parse_response`): ``auto`` (calibrate from the bracket), ``gamma:<g>``, ``srgb``, ``linear``
or a path to such a JSON file.
"""

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from lffnet_arch.fileio.atomic import atomic_path

__all__ = ['FORMAT', 'SAMPLES', 'VERSION', 'Response', 'parse_response']

FORMAT = 'lffnet_arch.response'
VERSION = 1
SAMPLES = 1024
_KINDS = ('table', 'gamma', 'srgb', 'linear')
PathLike = Union[str, os.PathLike]


def _srgb_to_linear(z: np.ndarray) -> np.ndarray:
    return np.where(z <= 0.04045, z / 12.92, np.power((np.maximum(z, 0.04045) + 0.055) / 1.055, 2.4))


def _table_problem(table: np.ndarray) -> Optional[str]:
    """What is wrong with a (3, N) table of g values, or None."""
    if table.ndim != 2 or table.shape[0] != 3 or table.shape[1] < 2:
        return f'expected a table of 3 channels x N >= 2 codes, got shape {table.shape}'
    if not np.isfinite(table).all():
        return 'the table holds non-finite values'
    if (table < 0).any():
        return 'the table holds negative values'
    steps = np.diff(table, axis=1)
    if (steps < 0).any():
        channel, index = np.argwhere(steps < 0)[0]
        code = (index + 1) / (table.shape[1] - 1)
        return f'channel {"RGB"[channel]} decreases at code {code:.4f}; a response must be non-decreasing'
    if (table[:, -1] <= 0).any():
        return 'g(1) must be > 0 in every channel'
    return None


class Response:
    """A per-channel monotone inverse camera response g: code in [0, 1] -> linear value, with g(1) = 1.

    Args:
        table (np.ndarray): (3, N) or (N,) values of g at the codes i / (N - 1), N >= 2, finite, non-negative and
            non-decreasing; they are scaled so that g(1) = 1. Use :meth:`from_samples` for values that may not be
            monotone yet.

    Raises:
        ValueError: The table is not a valid response (the message says why).
    """

    def __init__(self, table: np.ndarray) -> None:
        table = np.asarray(table, dtype=np.float64)
        if table.ndim == 1:
            table = np.repeat(table[None], 3, axis=0)
        problem = _table_problem(table)
        if problem:
            raise ValueError(f'Invalid response table: {problem}.')
        self._table = table / table[:, -1:]
        self._table.flags.writeable = False
        self._formula: Optional[tuple] = None

    # Constructors ---------------------------------------------------------------------------------------------

    @classmethod
    def gamma(cls, gamma: float, samples: int = SAMPLES) -> 'Response':
        """g(z) = z ** gamma (the networks' fixed 2.2 today); :meth:`linearise` applies the power exactly."""
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
            raise ValueError(f'Response.gamma: gamma must be a finite number > 0, got {gamma!r}.')
        response = cls(np.linspace(0.0, 1.0, samples) ** float(gamma))
        response._formula = ('gamma', float(gamma))
        return response

    @classmethod
    def srgb(cls, samples: int = SAMPLES) -> 'Response':
        """The inverse of the sRGB encoding (IEC 61966-2-1), applied exactly by :meth:`linearise`."""
        response = cls(_srgb_to_linear(np.linspace(0.0, 1.0, samples)))
        response._formula = ('srgb',)
        return response

    @classmethod
    def linear(cls, samples: int = SAMPLES) -> 'Response':
        """g(z) = z: frames that are already linear (raw-like 16-bit data)."""
        response = cls(np.linspace(0.0, 1.0, samples))
        response._formula = ('linear',)
        return response

    @classmethod
    def from_samples(cls, codes: np.ndarray, values: np.ndarray, samples: int = SAMPLES) -> 'Response':
        """A response through measured points, made valid: resampled to ``samples`` codes (constant beyond the
        given codes), negative values set to 0, then non-decreasing (each value at least the largest before it).

        Args:
            codes: (M,) increasing codes in [0, 1].
            values: (M,) or (M, 3) values of g there, any positive scale.

        Raises:
            ValueError: Mismatched shapes, non-finite values, or a channel whose values are all <= 0.
        """
        codes = np.asarray(codes, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        values = np.repeat(values[:, None], 3, axis=1) if values.ndim == 1 else values
        if codes.ndim != 1 or values.shape != (codes.size, 3) or codes.size < 2:
            raise ValueError(
                'Response.from_samples: expected codes (M,) and values (M,) or (M, 3), M >= 2; got '
                f'{codes.shape} and {values.shape}.'
            )
        if not (np.isfinite(codes).all() and np.isfinite(values).all()) or (np.diff(codes) <= 0).any():
            raise ValueError('Response.from_samples: codes must increase and all values must be finite.')
        grid = np.linspace(0.0, 1.0, samples)
        table = np.stack([np.interp(grid, codes, values[:, c]) for c in range(3)])
        table = np.maximum.accumulate(np.maximum(table, 0.0), axis=1)
        if (table[:, -1] <= 0).any():
            raise ValueError('Response.from_samples: a channel has no positive values.')
        return cls(table)

    @classmethod
    def from_forward(cls, forward: Callable[[np.ndarray], np.ndarray], samples: int = SAMPLES) -> 'Response':
        """Invert a forward camera curve numerically.

        Args:
            forward: Linear x in [0, 1] (M,) -> codes (M,) or (M, 3), non-decreasing, e.g. a
                :class:`~lffnet_arch.response.families.ForwardCurve`. Codes below f(0) (a pedestal) map to 0; g is
                normalised at f(1), where the sensor clips.
        """
        # Log-spaced as well as uniform: log encodings spend many codes on the darkest stops.
        x = np.unique(np.concatenate([[0.0], np.geomspace(1e-9, 1.0, 20000), np.linspace(0.0, 1.0, 20001)]))
        y = np.asarray(forward(x), dtype=np.float64)
        y = np.repeat(y[:, None], 3, axis=1) if y.ndim == 1 else y
        if y.shape != (x.size, 3) or not np.isfinite(y).all():
            raise ValueError(f'Response.from_forward: the curve must give finite codes (M,) or (M, 3); got {y.shape}.')
        y = np.maximum.accumulate(y, axis=0)
        grid = np.linspace(0.0, 1.0, samples)
        table = np.empty((3, samples))
        for c in range(3):
            # np.interp needs increasing abscissae: of each run of equal codes keep its first (smallest) x.
            keep = np.concatenate([[True], np.diff(y[:, c]) > 0])
            table[c] = np.interp(grid, y[keep, c], x[keep], left=0.0, right=1.0)
            table[c] /= np.interp(y[-1, c], y[keep, c], x[keep])
        return cls(np.maximum.accumulate(np.clip(table, 0.0, None), axis=1))

    @classmethod
    def from_json(cls, path: PathLike) -> 'Response':
        """Read a response file (see the module docstring for the format).

        Raises:
            FileNotFoundError: No such file.
            ValueError: Not a response file, a newer version, or an invalid curve (the message names the file).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'Response file not found: {path}')
        try:
            data = json.loads(path.read_text(encoding='utf-8'))
        except (UnicodeDecodeError, ValueError) as error:
            raise ValueError(f'Response file {path} is not valid JSON: {error}') from None
        if not isinstance(data, dict) or data.get('format') != FORMAT:
            raise ValueError(f'{path} is not a response file: expected a JSON object with "format": "{FORMAT}".')
        version = data.get('version')
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
            raise ValueError(f'Response file {path} has version {version!r}; this code reads versions 1 to {VERSION}.')
        kind = data.get('kind')
        if kind not in _KINDS:
            raise ValueError(f'Response file {path}: "kind" must be one of {_KINDS}, got {kind!r}.')
        if kind == 'gamma':
            value = data.get('gamma')
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f'Response file {path}: "gamma" must be a finite number > 0, got {value!r}.')
            return cls.gamma(float(value))
        if kind in ('srgb', 'linear'):
            return cls.srgb() if kind == 'srgb' else cls.linear()
        try:
            table = np.array(data.get('table'), dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f'Response file {path}: "table" must be 3 lists of N >= 2 numbers each.') from None
        problem = _table_problem(table)
        if problem:
            raise ValueError(f'Response file {path}: {problem}.')
        return cls(table)

    # Use ------------------------------------------------------------------------------------------------------

    @property
    def table(self) -> np.ndarray:
        """(3, N) read-only values of g at the codes i / (N - 1)."""
        return self._table

    @property
    def spec(self) -> Optional[str]:
        """The option string of a formula response (``gamma:2.2``, ``srgb``, ``linear``); None for a table."""
        if self._formula is None:
            return None
        return f'gamma:{self._formula[1]:g}' if self._formula[0] == 'gamma' else self._formula[0]

    @property
    def gamma_value(self) -> Optional[float]:
        """The exponent of a gamma response (``Response.gamma``), None for any other."""
        return self._formula[1] if self._formula is not None and self._formula[0] == 'gamma' else None

    def at(self, codes: np.ndarray) -> np.ndarray:
        """g at the given codes (M,) for every channel: (M, 3) float64."""
        codes = np.asarray(codes, dtype=np.float64).ravel()
        return self.linearise(np.repeat(codes[:, None], 3, axis=1))

    def linearise(self, ldr: np.ndarray) -> np.ndarray:
        """Linear values of LDR frames, channel by channel.

        Args:
            ldr: (..., 3) codes in [0, 1], e.g. an RGB frame (H, W, 3); values outside are clipped.

        Returns:
            np.ndarray: float32 (float64 for float64 input) of the same shape, g(L) with g(1) = 1.
        """
        ldr = np.asarray(ldr)
        if ldr.ndim < 1 or ldr.shape[-1] != 3:
            raise ValueError(f'Response.linearise: expected (..., 3) RGB values, got shape {ldr.shape}.')
        dtype = np.float64 if ldr.dtype == np.float64 else np.float32
        z = np.clip(ldr, 0.0, 1.0)
        if self._formula is not None:
            kind = self._formula[0]
            if kind == 'gamma':
                return np.power(z, self._formula[1]).astype(dtype, copy=False)
            return (_srgb_to_linear(z) if kind == 'srgb' else z).astype(dtype, copy=False)
        # The table samples a uniform grid, so the interval of each value is found by arithmetic, not by np.interp's
        # binary search (about 4 times faster on full-size frames; the same values to float32 rounding).
        last = self._table.shape[1] - 1
        out = np.empty(z.shape, dtype)
        for c in range(3):
            position = z[..., c].astype(dtype, copy=False) * dtype(last)
            index = np.minimum(position.astype(np.int32), last - 1)
            position -= index
            start = self._table[c, :-1][index]  # each interval's ends: views of the table
            out[..., c] = start + position * (self._table[c, 1:][index] - start)
        return out

    def to_json(self, path: PathLike, info: Optional[dict] = None, overwrite: bool = True) -> Path:
        """Write the response file atomically (the file appears complete or not at all).

        Args:
            path: The ``.json`` file.
            info: Optional JSON-serialisable notes on how the curve was made (method, residual, ...).
            overwrite: Replace an existing file; False raises FileExistsError if it exists.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f'Response file {path} exists; pass overwrite=True to replace it.')
        data: dict[str, Any] = {'format': FORMAT, 'version': VERSION, 'channels': 'RGB'}
        if self._formula is None:
            # Nine significant digits: rounding is monotone, so the written table stays non-decreasing.
            data.update(kind='table', table=[[float(f'{v:.9g}') for v in row] for row in self._table])
        else:
            data.update(kind=self._formula[0], **({'gamma': self._formula[1]} if self._formula[0] == 'gamma' else {}))
        if info is not None:
            data['info'] = info
        with atomic_path(path, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(data) + '\n', encoding='utf-8')
        return path

    def __repr__(self) -> str:
        return f'Response({self.spec})' if self.spec else f'Response(table of {self._table.shape[1]} codes)'


_SPEC_HELP = "expected 'auto', 'gamma:<g>' (e.g. gamma:2.2), 'srgb', 'linear' or the path of a response .json file"


def parse_response(spec: Union[str, os.PathLike, Response]) -> Union[Response, str]:
    """A response option: ``auto`` | ``gamma:<g>`` | ``srgb`` | ``linear`` | ``<path.json>``.

    Returns:
        Response | str: the response, or the string ``'auto'`` (calibrate from the bracket itself). A
        :class:`Response` is returned as it is.

    Raises:
        ValueError: An unknown spec, or a gamma that is not a finite number > 0 (the message names the spec).
        FileNotFoundError: A ``.json`` path that does not exist.
    """
    if isinstance(spec, Response):
        return spec
    if isinstance(spec, os.PathLike):
        return Response.from_json(spec)
    if not isinstance(spec, str):
        raise ValueError(f'Response spec {spec!r}: {_SPEC_HELP}.')
    text = spec.strip()
    if text in ('auto', 'srgb', 'linear'):
        return text if text == 'auto' else (Response.srgb() if text == 'srgb' else Response.linear())
    if text.startswith('gamma:'):
        try:
            value = float(text[len('gamma:') :])
        except ValueError:
            value = float('nan')
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f'Response spec {spec!r}: the gamma must be a finite number > 0, as in gamma:2.2.')
        return Response.gamma(value)
    if text.lower().endswith('.json'):
        return Response.from_json(text)
    raise ValueError(f'Response spec {spec!r}: {_SPEC_HELP}.')
