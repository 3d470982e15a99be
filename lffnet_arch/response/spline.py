"""The least-squares machinery of calibration: log2 g as a piecewise-linear table at ``KNOTS`` codes (denser toward
black), its normal equations, a curvature penalty, the solve, and the noise model per code.

Used by :mod:`lffnet_arch.response.calibrate`; the names are internal to the response package.
"""

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

KNOTS = 256  # codes of the log2 g table


# Least squares in log2 g at the knots ------------------------------------------------------------------------------

# Knots at the codes (k / (K - 1)) ** 2: denser toward black, where log2 g of gamma-like curves is steepest.
_KNOT_CODES = np.linspace(0.0, 1.0, KNOTS) ** 2


def _knots(z: np.ndarray) -> tuple:
    """(index of the knot below each code, fraction of the way to the next knot)."""
    z = np.clip(z, 0.0, 1.0)
    lower = np.minimum((np.sqrt(z) * (KNOTS - 1)).astype(np.int64), KNOTS - 2)
    return lower, (z - _KNOT_CODES[lower]) / (_KNOT_CODES[lower + 1] - _KNOT_CODES[lower])


def _knot_near(z: float) -> int:
    return int(round(math.sqrt(min(max(z, 0.0), 1.0)) * (KNOTS - 1)))


def _evaluate(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    lower, frac = _knots(z)
    return a[lower] * (1.0 - frac) + a[lower + 1] * frac


def _normal_equations(index: np.ndarray, value: np.ndarray, target: np.ndarray, weight: np.ndarray) -> tuple:
    """A = sum w r r^T and b = sum w y r over sparse rows r (index, value: (R, m)), as dense (K, K) and (K,)."""
    weighted = value * weight[:, None]
    pairs = (index[:, :, None] * KNOTS + index[:, None, :]).ravel()
    products = (weighted[:, :, None] * value[:, None, :]).ravel()
    a = np.bincount(pairs, weights=products, minlength=KNOTS * KNOTS).reshape(KNOTS, KNOTS)
    b = np.bincount(index.ravel(), weights=(weighted * target[:, None]).ravel(), minlength=KNOTS)
    return a, b


def _curvature_form() -> np.ndarray:
    """Quadratic form of the integral of (d2 log2 g / dz2)^2 over the codes, on the knots, times h^3 with
    h = 1 / (K - 1) (on uniform knots it would be the sum of squared second differences)."""
    h = np.diff(_KNOT_CODES)
    rows = np.arange(KNOTS - 2)
    d = np.zeros((KNOTS - 2, KNOTS))
    d[rows, rows] = 2.0 / (h[:-1] * (h[:-1] + h[1:]))
    d[rows, rows + 2] = 2.0 / (h[1:] * (h[:-1] + h[1:]))
    d[rows, rows + 1] = -d[rows, rows] - d[rows, rows + 2]
    length = 0.5 * (h[:-1] + h[1:])
    return (d.T * length) @ d / (KNOTS - 1) ** 3


_CURVATURE = _curvature_form()


def _solve(system: tuple, smooth: float, gauge: int, prior: Optional[np.ndarray] = None) -> np.ndarray:
    """log2 g at the knots minimising data + smooth * curvature of (log2 g - prior), with the smoothness weighed
    relative to the data's mean weight per knot and log2 g pinned to 0 at the knot ``gauge`` (the data fix it only
    up to a constant)."""
    a, b = system
    scale = max(np.trace(a) / KNOTS, 1e-12)
    lhs = a + smooth * scale * _CURVATURE
    rhs = b + (smooth * scale * (_CURVATURE @ prior) if prior is not None else 0.0)
    lhs[gauge, gauge] += scale
    return np.linalg.solve(lhs, rhs)


def _hat(z: np.ndarray, low: float, high: float) -> np.ndarray:
    """Debevec and Malik's hat over the valid codes (0 outside)."""
    half = 0.5 * (high - low)
    return np.where((z >= low) & (z <= high), np.minimum(z - low, high - z) / half + 0.05, 0.0)


def _noise_model(codes: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Robust residual spread (stops) in 16 code bins, as a (16,) table for :func:`_noise_at`."""
    bins = np.minimum((codes * 16).astype(np.int64), 15)
    sigma = np.full(16, np.nan)
    for k in range(16):
        values = np.abs(residuals[bins == k])
        if values.size >= 8:
            sigma[k] = 1.4826 * np.median(values)
    known = np.flatnonzero(np.isfinite(sigma))
    if known.size == 0:
        return np.full(16, 0.05)
    return np.maximum(np.interp(np.arange(16), known, sigma[known]), 0.003)


def _noise_at(model: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.interp(z, (np.arange(16) + 0.5) / 16, model)


def _covered(codes: np.ndarray) -> tuple:
    """The code range of the data, ignoring the three most extreme values at each end."""
    codes = np.sort(codes)
    k = min(3, codes.size - 1)
    return float(codes[k]), float(codes[-1 - k])


@dataclass
class _Fit:
    """One channel's result: log2 g at the knots, the codes the data cover, what the info reports, and whether the
    knots below the covered codes follow a prior's shape (else g is extrapolated there)."""

    a: np.ndarray
    low: float
    high: float
    used: int
    rejected: int
    residual: float
    system: Optional[tuple] = None
    shaped: bool = False
