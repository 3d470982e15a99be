"""The prior of calibration: a parametric monotone curve with a pedestal, a toe and a shoulder, from a power law to
a log encoding (:func:`_prior_curve`), fitted to histogram matches by damped Gauss-Newton (Levenberg-Marquardt) from
several starting curves. The calibrated table may depart from it only smoothly.

Used by :mod:`lffnet_arch.response.calibrate`; the names are internal to the response package.
"""

import math
from typing import Callable

import numpy as np

from lffnet_arch.response.spline import _KNOT_CODES

# The prior: a parametric monotone curve with a toe and a shoulder --------------------------------------------------

# gamma, k, alpha, beta, pivot, black (see _prior_curve): bounds, and the starting curves of the fit.
_PRIOR_BOUNDS = np.array([[0.2, 8.0], [-20.0, 40.0], [0.25, 4.0], [0.25, 4.0], [0.05, 20.0], [-0.2, 0.5]])
_PRIOR_STARTS = (
    (2.2, 0.0, 1.0, 1.0, 1.0, 0.0),  # a gamma curve
    (1.0, 8.0, 1.0, 1.0, 1.0, 0.0),  # a log encoding
    (1.5, 3.0, 1.4, 1.4, 1.0, 0.0),  # a filmic S-curve
    (2.2, -3.0, 1.0, 1.0, 1.0, 0.0),  # a compressive toe
)


def _prior_curve(params: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log2 g_theta(z) = gamma log2 h_k(w(u)), with g_theta(1) = 1 for all parameters.

    u = (z - black) / (1 - black) removes a pedestal; the warp w(u) = u^alpha / (u^alpha + pivot (1 - u)^beta) bends
    the toe (alpha) and the shoulder (beta); h_k(s) = (e^(k s) - 1) / (e^k - 1) spans power curves (k = 0) to log
    encodings (k > 0, linear near black) and compressive toes (k < 0).
    """
    gamma, k, alpha, beta, pivot, black = np.clip(params, _PRIOR_BOUNDS[:, 0], _PRIOR_BOUNDS[:, 1])
    u = np.clip((z - black) / (1.0 - black), 1e-6, 1.0)
    ua, ub = u**alpha, pivot * (1.0 - u) ** beta
    w = np.clip(ua / (ua + ub), 1e-12, 1.0)
    h = w if abs(k) < 1e-4 else np.expm1(k * w) / math.expm1(k)
    return gamma * np.log2(np.maximum(h, 1e-300))


def _levenberg_marquardt(
    residual: Callable[[np.ndarray], np.ndarray], start: np.ndarray, iterations: int = 60
) -> tuple:
    """Bounded Levenberg-Marquardt with a forward-difference Jacobian; (parameters, cost)."""
    params, damping = start.astype(np.float64), 1e-2
    r = residual(params)
    cost = float(r @ r)
    for _ in range(iterations):
        jacobian = np.empty((r.size, params.size))
        for i in range(params.size):
            step = np.zeros_like(params)
            step[i] = 1e-6 * max(1.0, abs(params[i]))
            jacobian[:, i] = (residual(params + step) - r) / step[i]
        hessian, gradient = jacobian.T @ jacobian, jacobian.T @ r
        while True:
            delta = np.linalg.solve(hessian + damping * np.diag(np.diag(hessian) + 1e-12), -gradient)
            trial = np.clip(params + delta, _PRIOR_BOUNDS[:, 0], _PRIOR_BOUNDS[:, 1])
            r_trial = residual(trial)
            cost_trial = float(r_trial @ r_trial)
            if np.isfinite(cost_trial) and cost_trial < cost:
                gain = cost - cost_trial
                params, r, cost, damping = trial, r_trial, cost_trial, max(damping / 3.0, 1e-9)
                break
            damping *= 4.0
            if damping > 1e8:
                return params, cost
        if gain < 1e-10 * max(cost, 1e-30):
            break
    return params, cost


def _fit_prior(system: tuple, low: float) -> np.ndarray:
    """log2 g at the knots of the parametric curve that best explains the data's normal equations A a = b.

    The data's cost a^T A a - 2 b^T a is a sum of squares in the eigenbasis of A (restricted to the knots the data
    touch), so the parameters are fitted by least squares there, from a few starting curves.
    """
    a_data, b_data = system
    touched = np.flatnonzero(np.diag(a_data) > 0)
    values, vectors = np.linalg.eigh(a_data[np.ix_(touched, touched)])
    keep = values > 1e-9 * values.max()
    root, basis = np.sqrt(values[keep]), vectors[:, keep].T
    target = (basis @ b_data[touched]) / root
    codes = _KNOT_CODES[touched]

    def residual(params: np.ndarray) -> np.ndarray:
        return root * (basis @ _prior_curve(params, codes)) - target

    best = None
    for start in _PRIOR_STARTS:
        start = np.array(start)
        start[5] = min(0.0, low - 0.05)
        params, cost = _levenberg_marquardt(residual, start)
        if best is None or cost < best[1]:
            best = (params, cost)
    return _prior_curve(best[0], _KNOT_CODES)
