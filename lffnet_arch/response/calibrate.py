"""Calibrating a camera's inverse response g from the frames of one bracket and their exposure times.

A static scene point of irradiance E seen with exposure t gives the code z with g(z) = E t, so log2 g(z) - log2 t
is the same in every frame that sees it unclipped. Each channel is calibrated on its own; g is known only up to a
factor and is returned normalised to g(1) = 1, where the sensor clips.

Known exposure ratios leave one ambiguity that no amount of data removes: a bracket whose frames are s stops apart
links each code only to the codes s, 2s, ... stops away, so log2 g may carry any wiggle that repeats every s stops
(Grossberg and Nayar, "What can be known about the radiometric response from images?", ECCV 2002). Brackets 2 or 3
stops apart make it wide enough to cost tenths of a stop; it is what the smoothness term, or better the prior, has
to settle.

Before any method, the frames are reduced (area averaging) to at most ``max_side`` pixels a side and registered to
the middle exposure (Euclidean ECC on histogram-matched gray images, so exposure differences do not matter).

Methods (:data:`METHODS`):

- ``debevec``: Debevec and Malik (SIGGRAPH 1997): log2 g at ``KNOTS`` codes (piecewise linear, denser toward black),
  least squares over pixel samples with a smoothness term (the integral of the squared second derivative). Samples
  are stratified over the code range of every frame, taken from the smoother half of each code bin (camera shake
  and interpolation barely change them), with a 3 x 3 mean against noise; pixels whose codes fall with exposure are
  moving and left out. The fit is iterated: per-sample residuals give a noise level per code (the next fit's
  weights, in place of the first fit's hat) and samples whose frames disagree beyond it are dropped (moving
  objects, residual misregistration), then the curve is refitted.
- ``mitsunaga``: Mitsunaga and Nayar (CVPR 1999): g a polynomial (Legendre basis, order chosen on held-out pairs)
  with g(1) = 1, fitted to g(z_j) = (t_j / t_i) g(z_i) for consecutive frames of each sample, on relative residuals
  (so that dark codes count), with the same samples and a rejection of its own.
- ``btf``: brightness transfer functions (Grossberg and Nayar, PAMI 2003): every pair of frames is matched by
  cumulative histograms, z_i and z_j at equal quantiles, which needs no pixel correspondence; log2 g is fitted to
  log2 g(z_j) - log2 g(z_i) = log2 (t_j / t_i) with the same smoothness. Matches are weighted by their noise and by
  how sparse the histogram is there (a few moving or ringing pixels shift a sparse quantile by stops). Moving objects
  change histograms, so the pixels whose rank among a frame's pixels changes between frames (a static scene keeps
  its order in every exposure) are left out of every frame's histogram first.
- ``prior``: the ``btf`` matches, regularised toward a smooth monotone curve with a toe and a shoulder instead of
  toward a straight line: a parametric curve (:func:`_prior_curve`: pedestal, toe and shoulder warp, power to log
  encoding) is fitted to the matches first, and the table may depart from it only smoothly. The prior's shape
  settles the ambiguity above and carries the curve below the covered codes, down to a pedestal.

All results are made non-decreasing (isotonic regression). ``auto`` is ``prior``, the most accurate by measurement
(``scripts/calibration_error.py``: brackets through eight response families, held-out log encodings and random
curves among them, with noise, 8-bit JPEG, camera shake and moving objects): about 0.01 stops median error and
under 0.1 at the 90th percentile on every family, where ``btf`` and ``mitsunaga`` reach 0.03 to 0.2 and ``debevec``
and OpenCV's CalibrateDebevec and CalibrateRobertson 0.1 to 0.4 median.

Speed: beyond reading and reducing the frames, the cost does not depend on their size; a 12-megapixel bracket of 3
frames calibrates in about a second on one core.
"""

import math
from collections.abc import Sequence

import cv2
import numpy as np

from lffnet_arch.response.bracket import _Bracket, _prepare
from lffnet_arch.response.curves import SAMPLES, Response
from lffnet_arch.response.prior import _fit_prior
from lffnet_arch.response.spline import (
    _KNOT_CODES,
    KNOTS,
    _covered,
    _evaluate,
    _Fit,
    _hat,
    _knot_near,
    _knots,
    _noise_at,
    _noise_model,
    _normal_equations,
    _solve,
)

__all__ = ['AUTO_METHOD', 'KNOTS', 'METHODS', 'calibrate_response']

METHODS = ('auto', 'debevec', 'mitsunaga', 'btf', 'prior')
AUTO_METHOD = 'prior'
QUANTILES = 1024  # histogram matches per pair of frames
_BINS = 64  # code bins of the stratified sampling
_MIN_MATCHES = 32
_MIN_RANGE = 0.1
_QUANTILE_ERROR = 0.003  # how far (in quantile level) motion and JPEG shift a histogram between frames
_MOTION_CODES = 0.03  # a moving pixel is also this far in code from where its rank puts it (noise reorders flats)


# Pixel samples: debevec and mitsunaga ------------------------------------------------------------------------------


def _smallest_per_bin(bins: np.ndarray, keys: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Positions of the ``count[bin]`` smallest keys in each bin."""
    order = np.lexsort((keys, bins))
    sorted_bins = bins[order]
    starts = np.searchsorted(sorted_bins, np.arange(count.size))
    rank = np.arange(order.size) - starts[sorted_bins]
    return order[rank < count[sorted_bins]]


def _select_samples(data: _Bracket, c: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Codes (T, N) of pixels stratified over every frame's code range, from the smoother half of each code bin, at
    random within it (so that samples spread over the image rather than pile up in one flat region)."""
    border = 4
    z = data.frames[:, border:-border, border:-border, c].reshape(len(data.frames), -1)
    rough = data.rough[border:-border, border:-border, c].ravel()
    valid = (z >= data.low[c]) & (z <= data.high[c])
    # A static pixel never gets darker in a longer exposure; one that does is moving.
    static = (np.diff(z, axis=0) >= -0.02).all(axis=0) & (valid.sum(axis=0) >= 2)
    per_bin = max(1, samples // (_BINS * len(z)))
    chosen = []
    for frame in range(len(z)):
        candidates = np.flatnonzero(valid[frame] & static)
        if candidates.size == 0:
            continue
        bins = np.minimum((z[frame, candidates] * _BINS).astype(np.int64), _BINS - 1)
        sizes = np.bincount(bins, minlength=_BINS)
        smooth = candidates[_smallest_per_bin(bins, rough[candidates], np.maximum(per_bin, sizes // 2))]
        bins = np.minimum((z[frame, smooth] * _BINS).astype(np.int64), _BINS - 1)
        chosen.append(smooth[_smallest_per_bin(bins, rng.random(smooth.size), np.full(_BINS, per_bin))])
    index = np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    z = z[:, index].astype(np.float64)
    if z.shape[1] < _MIN_MATCHES:
        raise ValueError(
            f'calibrate_response: only {z.shape[1]} usable samples in channel {"RGB"[c]} (need {_MIN_MATCHES}): '
            'too few pixels are unclipped and static in two frames.'
        )
    return z


def _sample_system(z: np.ndarray, w: np.ndarray, log_t: np.ndarray) -> tuple:
    """Normal equations of the samples with each sample's log irradiance eliminated.

    For sample p, log2 E_p is the weighted mean of log2 g(z_ip) - log2 t_i over its frames; substituting it leaves
    rows (B_ip - sum_j s_jp B_jp) a = log2 t_i - sum_j s_jp log2 t_j, with B the interpolation row of a code and
    s_jp = w_jp / sum_j w_jp.
    """
    lower, frac = _knots(z)
    share = w / np.maximum(w.sum(axis=0), 1e-30)
    mean_index = np.concatenate([lower, lower + 1], axis=0).T  # (N, 2T)
    mean_value = -np.concatenate([share * (1.0 - frac), share * frac], axis=0).T
    mean_target = (share * log_t[:, None]).sum(axis=0)
    observed = w > 0
    frame_of, sample_of = np.nonzero(observed)
    low_knot = lower[observed][:, None]
    index = np.concatenate([low_knot, low_knot + 1, mean_index[sample_of]], axis=1)
    value = np.concatenate([(1.0 - frac[observed])[:, None], frac[observed][:, None], mean_value[sample_of]], axis=1)
    return _normal_equations(index, value, log_t[frame_of] - mean_target[sample_of], w[observed])


def _sample_residuals(a: np.ndarray, z: np.ndarray, w: np.ndarray, log_t: np.ndarray) -> np.ndarray:
    """r_ip = log2 g(z_ip) - log2 t_i - log2 E_p (0 where unobserved)."""
    x = _evaluate(a, z) - log_t[:, None]
    share = w / np.maximum(w.sum(axis=0), 1e-30)
    return np.where(w > 0, x - (share * x).sum(axis=0), 0.0)


def _channel_debevec(data: _Bracket, c: int, options: dict) -> _Fit:
    z = _select_samples(data, c, options['samples'], options['rng'])
    low, high = float(data.low[c]), float(data.high[c])
    observed = (z >= low) & (z <= high)
    keep = observed.sum(axis=0) >= 2
    w = _hat(z, low, high) * observed
    gauge = _knot_near(float(np.median(z[observed])))
    for _ in range(3):
        a = _solve(_sample_system(z[:, keep], (w * keep)[:, keep], data.log_t), options['smooth'], gauge)
        r = _sample_residuals(a, z, w, data.log_t)
        sigma = _noise_at(_noise_model(z[observed & keep], r[observed & keep]), z)
        w = observed / sigma**2
        score = np.where(observed, np.abs(r) / sigma, 0.0).max(axis=0)
        keep = (observed.sum(axis=0) >= 2) & (score <= options['reject'])
    w = w * keep
    a = _solve(_sample_system(z[:, keep], w[:, keep], data.log_t), options['smooth'], gauge)
    r = _sample_residuals(a, z, w, data.log_t)
    lo, hi = _covered(z[w > 0])
    return _Fit(a, lo, hi, int(keep.sum()), int((~keep).sum()), float(np.sqrt(np.mean(r[w > 0] ** 2))))


def _legendre_rows(zi: np.ndarray, zj: np.ndarray, ratio: np.ndarray, order: int, scale: np.ndarray) -> tuple:
    """Rows of (g(z_j) - ratio g(z_i)) / scale = 0 in the coefficients c_1.. of g = sum c_k P_k(2z - 1), with
    c_0 = 1 - sum_{k >= 1} c_k substituted (every P_k(1) = 1, so g(1) = 1)."""
    legendre = np.polynomial.legendre.legvander
    rows = (legendre(2.0 * zj - 1.0, order) - ratio[:, None] * legendre(2.0 * zi - 1.0, order)) / scale[:, None]
    return rows[:, 1:] - rows[:, :1], -rows[:, 0]


def _polynomial(zi: np.ndarray, zj: np.ndarray, ratio: np.ndarray, order: int, scale: np.ndarray) -> np.ndarray:
    lhs, rhs = _legendre_rows(zi, zj, ratio, order, scale)
    tail = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return np.concatenate([[1.0 - tail.sum()], tail])


def _relative_residuals(coef: np.ndarray, zi: np.ndarray, zj: np.ndarray, ratio: np.ndarray) -> tuple:
    gi, gj = np.polynomial.legendre.legval(2.0 * np.stack([zi, zj]) - 1.0, coef)
    scale = np.maximum(np.abs(gj), 1e-6)
    return (gj - ratio * gi) / scale, scale


def _channel_mitsunaga(data: _Bracket, c: int, options: dict) -> _Fit:
    z = _select_samples(data, c, options['samples'], options['rng'])
    observed = (z >= data.low[c]) & (z <= data.high[c])
    pairs = [(i, observed[i] & observed[i + 1]) for i in range(len(z) - 1)]
    zi = np.concatenate([z[i, both] for i, both in pairs])
    zj = np.concatenate([z[i + 1, both] for i, both in pairs])
    ratio = np.concatenate([np.full(int(both.sum()), 2.0 ** (data.log_t[i + 1] - data.log_t[i])) for i, both in pairs])
    if zi.size < _MIN_MATCHES:
        raise ValueError(f'calibrate_response: too few samples seen in two frames in channel {"RGB"[c]}.')
    held = np.random.default_rng(0).random(zi.size) < 0.25
    scale = np.maximum(zj, 1e-3) ** 2.2  # a first guess of g(z_j), so that residuals are about relative
    errors = []
    for order in range(2, 11):
        coef = _polynomial(zi[~held], zj[~held], ratio[~held], order, scale[~held])
        errors.append(np.median(np.abs(_relative_residuals(coef, zi[held], zj[held], ratio[held])[0])))
    order = 2 + int(np.argmin(errors))
    keep = np.ones(zi.size, bool)
    for step in range(3):
        coef = _polynomial(zi[keep], zj[keep], ratio[keep], order, scale[keep])
        r, scale = _relative_residuals(coef, zi, zj, ratio)
        if step < 2:
            keep = np.abs(r) <= options['reject'] * (1.4826 * np.median(np.abs(r[keep])) + 1e-6)
    lo, hi = _covered(np.concatenate([zi[keep], zj[keep]]))
    g = np.polynomial.legendre.legval(2.0 * _KNOT_CODES - 1.0, coef)
    a = np.log2(np.maximum(g, 1e-6 * max(g.max(), 1e-12)))
    residual = float(np.sqrt(np.mean(np.log2(np.clip(1.0 - r[keep], 0.5, 2.0)) ** 2)))
    return _Fit(a, lo, hi, int(keep.sum()), int((~keep).sum()), residual)


# Histogram matches: btf ------------------------------------------------------------------------------------------


def _histogram_matches(data: _Bracket, c: int, population: np.ndarray) -> tuple:
    """Pairs (z_i, z_j) at equal quantiles of every pair of frames over the ``population`` pixels (the same set in
    both frames, so that a static scene keeps its order), where both are valid; with log2 t_j - log2 t_i and the
    quantile level of each match (offset by 2 per pair of frames, so that levels of different pairs never meet)."""
    levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
    count = int(population.sum())
    if count < QUANTILES:
        return (np.zeros(0),) * 4
    position = (levels * count).astype(np.int64)
    values = [np.sort(frame[..., c][population])[position].astype(np.float64) for frame in data.pixels]
    zi, zj, delta, level = [], [], [], []
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            if data.log_t[j] - data.log_t[i] < 0.05:
                continue
            ok = (values[i] >= data.low[c]) & (values[j] <= data.high[c]) & (values[j] > values[i])
            zi.append(values[i][ok])
            zj.append(values[j][ok])
            delta.append(np.full(int(ok.sum()), data.log_t[j] - data.log_t[i]))
            level.append(levels[ok] + 2.0 * len(level))
    if not zi:
        return (np.zeros(0),) * 4
    return np.concatenate(zi), np.concatenate(zj), np.concatenate(delta), np.concatenate(level)


def _pair_system(zi: np.ndarray, zj: np.ndarray, delta: np.ndarray, w: np.ndarray) -> tuple:
    """Normal equations of the rows log2 g(z_j) - log2 g(z_i) = delta."""
    li, fi = _knots(zi)
    lj, fj = _knots(zj)
    index = np.stack([lj, lj + 1, li, li + 1], axis=1)
    value = np.stack([1.0 - fj, fj, -(1.0 - fi), -fi], axis=1)
    return _normal_equations(index, value, delta, w)


def _quantile_spread(a: np.ndarray, z: np.ndarray, level: np.ndarray) -> np.ndarray:
    """|d log2 g(z(q)) / dq|: stops per quantile level, large where the histogram is sparse."""
    v = _evaluate(a, z)
    order = np.argsort(level, kind='stable')
    gaps = np.diff(level[order])
    steps = np.where(gaps > 0.5, 0.0, np.abs(np.diff(v[order])) / np.maximum(gaps, 1e-9))
    slope = np.zeros_like(v)
    slope[order[1:]] = steps
    slope[order[:-1]] = np.maximum(slope[order[:-1]], steps)
    return slope


def _fit_matches(matches: tuple, low: float, high: float, options: dict) -> tuple:
    """log2 g from histogram matches, reweighted by their noise and the histogram's sparseness, outliers dropped.
    Returns (a, keep, weights, noise model, residuals)."""
    zi, zj, delta, level = matches
    w = 1.0 / (1.0 / _hat(zi, low, high) + 1.0 / _hat(zj, low, high))
    gauge = _knot_near(float(np.median(np.concatenate([zi, zj]))))
    keep, noise = np.ones(zi.size, bool), None
    for step in range(3):
        a = _solve(_pair_system(zi[keep], zj[keep], delta[keep], w[keep]), options['smooth'], gauge)
        r = _evaluate(a, zj) - _evaluate(a, zi) - delta
        if step == 2:
            return a, keep, w, noise, r
        noise = _noise_model(np.concatenate([zi[keep], zj[keep]]), np.concatenate([r[keep], r[keep]]) / math.sqrt(2))
        spread = _quantile_spread(a, zi, level) ** 2 + _quantile_spread(a, zj, level) ** 2
        variance = _noise_at(noise, zi) ** 2 + _noise_at(noise, zj) ** 2 + _QUANTILE_ERROR**2 * spread
        w = 1.0 / variance
        keep = np.abs(r) <= options['reject'] * np.sqrt(variance)
    raise AssertionError('unreachable')  # the last step returns


def _moving(data: _Bracket, c: int, tolerance: float) -> np.ndarray:
    """(h, w) pixels that move. A static scene keeps the order of its pixels in every exposure (the premise of
    histogram matching), so a pixel whose rank among the frame's pixels differs between two frames by more than
    ``tolerance`` (a fraction of the pixels) belongs to a moving object or to what it uncovers.

    Noise reorders the pixels of flat regions freely, so a pixel must also lie ``_MOTION_CODES`` away from the code
    that its rank in the other frame predicts. A large object shifts the ranks of every other pixel too, so the test
    runs from a loose tolerance down to ``tolerance``, each pass ranking among the pixels the previous pass kept
    (a pixel dropped early may come back). Clipped and too-dark codes tie (their rank is an interval); codes are
    averaged over 5 x 5 first; the mask is dilated by 2 pixels.
    """
    codes = []
    for frame in data.pixels:
        code = cv2.blur(frame[..., c], (5, 5))
        codes.append(np.where(code > data.high[c], 2.0, np.where(code < data.low[c], -1.0, code)))
    edges = np.linspace(-1.0, 2.0, 3 * 16384 + 1)
    cells = [np.minimum(((code + 1.0) / 3.0 * (edges.size - 1)).astype(np.int64), edges.size - 2) for code in codes]
    moving = np.zeros(data.inside.shape, bool)
    for loose in (16, 8, 4, 2, 1):
        population = data.inside & ~moving
        count = int(population.sum())
        step = max(1, count // 65536)
        values, ranks = [], []
        for code, cell in zip(codes, cells):
            values.append(np.sort(code[population][::step]))
            # Ranks through a fine grid of codes: one search per grid edge instead of one per pixel.
            below, up_to = np.searchsorted(values[-1], edges, 'left'), np.searchsorted(values[-1], edges, 'right')
            ranks.append((below[cell], up_to[cell + 1]))
        gap = loose * tolerance * values[0].size
        off = np.zeros_like(moving)
        for i in range(len(ranks)):
            for j in range(len(ranks)):
                if i != j:
                    middle = np.minimum((ranks[i][0] + ranks[i][1]) // 2, values[j].size - 1)
                    far = np.abs(values[j][middle] - codes[j]) > _MOTION_CODES
                    off |= (ranks[i][0] > ranks[j][1] + gap) & far
        if off.mean() > 0.5:  # the scene changed too much to tell; keep the last mask
            break
        moving = cv2.dilate(off.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return moving


def _btf_matches(data: _Bracket, c: int, options: dict) -> tuple:
    """Histogram matches over the pixels that do not move, and the fit on them; (matches, fit result)."""
    population = data.inside
    if options['motion'] > 0:
        population = population & ~_moving(data, c, options['motion'])
    matches = _histogram_matches(data, c, population)
    if matches[0].size < _MIN_MATCHES:
        raise ValueError(
            f'calibrate_response: the frames share too few unclipped histogram quantiles in channel '
            f'{"RGB"[c]} ({matches[0].size}); the exposures may be too far apart or the frames too clipped.'
        )
    return matches, _fit_matches(matches, float(data.low[c]), float(data.high[c]), options)


def _channel_btf(data: _Bracket, c: int, options: dict) -> _Fit:
    (zi, zj, delta, _), (a, keep, w, _, r) = _btf_matches(data, c, options)
    lo, hi = _covered(np.concatenate([zi[keep], zj[keep]]))
    residual = float(np.sqrt(np.mean(r[keep] ** 2)))
    system = _pair_system(zi[keep], zj[keep], delta[keep], w[keep])
    return _Fit(a, lo, hi, int(keep.sum()), int((~keep).sum()), residual, system)


def _channel_prior(data: _Bracket, c: int, options: dict) -> _Fit:
    fit = _channel_btf(data, c, options)
    prior = _fit_prior(fit.system, fit.low)
    a = _solve(fit.system, options['prior_smooth'], _knot_near(0.5 * (fit.low + fit.high)), prior=prior)
    return _Fit(a, fit.low, fit.high, fit.used, fit.rejected, fit.residual, fit.system, shaped=True)


_CHANNEL_METHODS = {
    'debevec': _channel_debevec,
    'mitsunaga': _channel_mitsunaga,
    'btf': _channel_btf,
    'prior': _channel_prior,
}


# Assembly ----------------------------------------------------------------------------------------------------------


def _isotonic(values: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``values`` in least squares (pool adjacent violators)."""
    means, counts = [], []
    for value in values:
        means.append(float(value))
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            count = counts[-2] + counts[-1]
            means[-2] = (means[-2] * counts[-2] + means[-1] * counts[-1]) / count
            counts[-2] = count
            means.pop()
            counts.pop()
    return np.repeat(means, counts)


def _table(fit: _Fit) -> np.ndarray:
    """g at SAMPLES codes, non-decreasing, g(1) = 1: the fit over the covered codes. Above them log2 g continues on
    its last slope (a shoulder fitted without data could set g(1), and so every channel's scale, anywhere). Below
    them a fit with a prior keeps the prior's shape (its pedestal); otherwise g continues on its slope in the linear
    domain down to 0, which is where a pedestal puts black."""
    grid = np.linspace(0.0, 1.0, SAMPLES)
    a = _evaluate(fit.a, grid)
    lo, hi = fit.low, fit.high
    span = min(0.05, 0.5 * (hi - lo))
    a_lo, a_lo_up, a_hi_down, a_hi = _evaluate(fit.a, np.array([lo, lo + span, hi - span, hi]))
    a = np.where(grid > hi, a_hi + max(a_hi - a_hi_down, 0.0) / span * (grid - hi), a)
    if not fit.shaped:
        g_lo, g_lo_up = np.exp2(a_lo - a.max()), np.exp2(a_lo_up - a.max())
        slope = max((g_lo_up - g_lo) / span, 0.0)
        below = np.maximum(g_lo - slope * (lo - grid), 0.0)
        a = np.where(grid < lo, np.log2(np.maximum(below, 1e-300)) + a.max(), a)
    a = _isotonic(np.clip(a - a[-1], -1000.0, 0.0))
    g = np.exp2(a)
    return g / g[-1]


def _fit_channel(method: str, data: _Bracket, c: int, options: dict) -> _Fit:
    """One channel's fit, refused when the frames do not determine it."""
    try:
        fit = _CHANNEL_METHODS[method](data, c, options)
    except np.linalg.LinAlgError:
        raise ValueError(
            f'calibrate_response: the frames do not determine the response of channel {"RGB"[c]} (the '
            'least-squares system is singular: too few distinct unclipped codes).'
        ) from None
    if fit.high - fit.low < _MIN_RANGE:
        raise ValueError(
            f'calibrate_response: the frames determine channel {"RGB"[c]} only over the codes '
            f'[{fit.low:.3f}, {fit.high:.3f}]; need a range of at least {_MIN_RANGE}.'
        )
    return fit


def calibrate_response(
    frames: Sequence[np.ndarray],
    exposures: Sequence[float],
    *,
    method: str = 'auto',
    samples: int = 3000,
    max_side: int = 512,
    smooth: float = 1.0,
    prior_smooth: float = 1e4,
    motion: float = 0.02,
    reject: float = 4.0,
    clip_margin: float = 0.02,
    align: bool = True,
    seed: int = 0,
) -> tuple:
    """Estimate the inverse camera response g per channel from a bracket and its exposure times.

    Args:
        frames: T >= 2 RGB frames (H, W, 3) of one size, float codes in [0, 1] (uint8 / uint16 are scaled), in any
            order of exposure. The scene may move, the camera may shake, the frames may be noisy, JPEG-compressed,
            clipped and lifted by a black pedestal.
        exposures: T exposure times, relative (seconds, or 2 ** EV); at least two must differ.
        method: One of :data:`METHODS`; ``auto`` is :data:`AUTO_METHOD`.
        samples: Pixel samples per channel of ``debevec`` and ``mitsunaga``.
        max_side: Frames are reduced to at most this many pixels a side (area averaging).
        smooth: Weight of the curvature term of ``debevec`` and ``btf``, relative to the data.
        prior_smooth: Weight of the curvature of the departure from the parametric curve (``prior``).
        motion: Histogram methods leave out pixels whose rank among a frame's pixels changes by more than this
            fraction between frames (moving objects; see :func:`_moving`); 0 keeps every pixel.
        reject: Observations that disagree by more than this many noise levels are dropped.
        clip_margin: Codes within this distance of the brightest code seen count as clipped.
        align: Register the frames (camera shake) before calibrating.
        seed: Seed of the random choices (sampling, dithering); equal seeds give equal results.

    Returns:
        tuple[Response, dict]: g (normalised to g(1) = 1) and an info dict: ``method`` (the method used);
        ``samples_used`` and ``samples_rejected`` per channel (R, G, B: pixel samples, or histogram matches for
        ``btf`` and ``prior``); ``covered``, per channel the codes [low, high] the data determine (beyond them g is
        extrapolated); ``residual``, the RMS disagreement of the kept observations in stops; ``reduction``, the
        factor the frames were reduced by.

    Raises:
        ValueError: Bad input, identical exposures, or frames that cannot determine the curve (too few valid samples
            or matches, or too narrow a code range, in a channel); the message says which.
    """
    if method not in METHODS:
        raise ValueError(f'calibrate_response: unknown method {method!r}; expected one of {METHODS}.')
    resolved = AUTO_METHOD if method == 'auto' else method
    data = _prepare(frames, exposures, max_side, clip_margin, align, seed)
    options = {
        'samples': samples,
        'smooth': smooth,
        'prior_smooth': prior_smooth,
        'motion': motion,
        'reject': reject,
        'rng': np.random.default_rng(seed),
    }
    fits = [_fit_channel(resolved, data, c, options) for c in range(3)]
    info = {
        'method': resolved,
        'samples_used': [fit.used for fit in fits],
        'samples_rejected': [fit.rejected for fit in fits],
        'covered': [[round(fit.low, 4), round(fit.high, 4)] for fit in fits],
        'residual': float(np.mean([fit.residual for fit in fits])),
        'reduction': data.factor,
    }
    return Response(np.stack([_table(fit) for fit in fits])), info
