"""Calibration from the bracket: accuracy on noise-free 16-bit brackets through known curves, and refusals."""

import numpy as np
import pytest

from lffnet_arch.response import AUTO_METHOD, METHODS, Response, calibrate_response, forward_curve

CODES = np.linspace(0.0, 1.0, 1024)


def _radiance(size: int = 160, seed: int = 0) -> np.ndarray:
    """(size, size, 3) linear radiance over about 16 stops: a smooth ramp across the frame, slow waves and a finer
    texture of random sinusoids, and a colour that drifts across the frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    log2 = 14.0 * x - 7.0 + 1.5 * np.sin(2 * np.pi * (y + 0.3 * x))
    for _ in range(12):
        fx, fy = rng.uniform(2.0, 20.0, 2)
        log2 = log2 + 0.25 * np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
    colour = np.stack([1.0 - 0.3 * y, 0.8 + 0.0 * y, 0.5 + 0.4 * x], axis=2)
    return np.exp2(log2)[..., None] * colour


def _bracket(curve, stops: float = 2.0, num: int = 3, size: int = 160) -> tuple:
    """Noise-free 16-bit frames of the radiance through ``curve``, ``stops`` apart, the middle frame metered so
    that the scene's median lands at a quarter of full scale."""
    radiance = _radiance(size)
    times = 2.0 ** (stops * (np.arange(num) - (num - 1) // 2)) * 0.25 / np.median(radiance)
    frames = [np.round(curve(np.clip(radiance * t, 0.0, 1.0)) * 65535) / 65535 for t in times]
    return [f.astype(np.float32) for f in frames], times


def _stops_error(estimate: Response, truth: Response, frames: list) -> np.ndarray:
    """|log2(g_est / g_true)| after one scale per channel, over the codes the frames cover without their clipped
    ends (1st to 99th percentile of the codes, 0.02 in from each, at most 0.98)."""
    errors = []
    for c in range(3):
        codes = np.concatenate([f[..., c].ravel() for f in frames])
        low, high = np.percentile(codes, [1, 99])
        inside = (CODES >= low + 0.02) & (CODES <= min(high - 0.02, 0.98))
        ratio = np.log2(estimate.table[c, inside] / truth.table[c, inside])
        errors.append(np.abs(ratio - np.median(ratio)))
    return np.concatenate(errors)


CURVES = {
    'gamma 2.2': forward_curve('gamma', gamma=(2.1, 2.2, 2.35)),
    'sRGB': forward_curve('srgb', warp=(0.97, 1.0, 1.03)),
    'filmic': forward_curve('filmic', contrast=1.5, warp=(1.03, 1.0, 0.96)),
    'LogC3': forward_curve('logc3', warp=(0.96, 1.0, 1.04)),
}


@pytest.mark.parametrize('name', sorted(CURVES))
def test_auto_recovers_known_curves_within_005_stops(name):
    curve = CURVES[name]
    frames, times = _bracket(curve)
    estimate, info = calibrate_response(frames, times)
    error = _stops_error(estimate, Response.from_forward(curve), frames)
    assert error.max() < 0.05, f'{name}: worst {error.max():.3f} stops'
    assert info['method'] == AUTO_METHOD
    assert all(high - low > 0.8 for low, high in info['covered'])
    assert (np.diff(estimate.table, axis=1) >= 0).all()
    np.testing.assert_allclose(estimate.table[:, -1], 1.0)


def test_a_naive_gamma_is_far_from_a_log_curve():
    """The accuracy check can fail: g = L ** 2.2 is many tenths of a stop from a LogC3 camera."""
    curve = CURVES['LogC3']
    frames, _ = _bracket(curve)
    assert _stops_error(Response.gamma(2.2), Response.from_forward(curve), frames).max() > 0.5


def test_two_frames_three_stops_apart_and_any_order():
    curve = forward_curve('slog3', warp=(0.98, 1.0, 1.02))
    frames, times = _bracket(curve, stops=3.0, num=2)
    estimate, _ = calibrate_response(frames[::-1], times[::-1])
    assert _stops_error(estimate, Response.from_forward(curve), frames).max() < 0.05
    same, _ = calibrate_response(frames, times)
    np.testing.assert_allclose(same.table, estimate.table, atol=1e-9)


def test_a_moving_object_and_noise_cost_little():
    """An 8-bit bracket with noise and a bright red object crossing the frame (a tenth of its area)."""
    curve = CURVES['sRGB']
    radiance = _radiance()
    frames, times = _bracket(curve)
    rng = np.random.default_rng(1)
    noisy = []
    for k, t in enumerate(times):
        scene = radiance.copy()
        scene[40:90, 20 + 30 * k : 70 + 30 * k] = np.array([8.0, 1.0, 0.5]) * np.median(radiance)
        linear = np.clip(scene * t + rng.normal(0.0, 0.002, scene.shape), 0.0, 1.0)
        noisy.append((np.round(curve(linear) * 255) / 255).astype(np.float32))
    estimate, info = calibrate_response(noisy, times)
    error = _stops_error(estimate, Response.from_forward(curve), frames)
    assert np.median(error) < 0.05 and np.percentile(error, 90) < 0.1, (np.median(error), info)


@pytest.mark.parametrize('method', [m for m in METHODS if m != 'auto'])
def test_every_method_runs_and_reports(method):
    frames, times = _bracket(CURVES['gamma 2.2'], size=96)
    estimate, info = calibrate_response(frames, times, method=method)
    assert info['method'] == method
    assert set(info) == {'method', 'samples_used', 'samples_rejected', 'covered', 'residual', 'reduction'}
    assert len(info['samples_used']) == len(info['covered']) == 3 and min(info['samples_used']) > 0
    error = _stops_error(estimate, Response.from_forward(CURVES['gamma 2.2']), frames)
    assert np.median(error) < 0.1


def test_identical_exposures_are_refused():
    frames, _ = _bracket(CURVES['sRGB'], size=64)
    with pytest.raises(ValueError, match='identical'):
        calibrate_response(frames, [0.01, 0.01, 0.01])


def test_frames_that_cannot_determine_the_curve_are_refused():
    flat = [np.full((64, 64, 3), v, np.float32) for v in (0.2, 0.4, 0.8)]
    with pytest.raises(ValueError, match='channel R'):
        calibrate_response(flat, [1.0, 2.0, 4.0])
    clipped = [np.ones((64, 64, 3), np.float32)] * 3
    with pytest.raises(ValueError, match='channel R'):
        calibrate_response(clipped, [1.0, 2.0, 4.0], method='debevec')


@pytest.mark.parametrize(
    'frames, times, message',
    [
        ([np.zeros((32, 32, 3))], [1.0], 'at least 2 frames'),
        ([np.zeros((32, 32, 3))] * 2, [1.0], '2 frames but 1'),
        ([np.zeros((32, 32, 3))] * 2, [1.0, -2.0], 'finite and > 0'),
        ([np.zeros((32, 32, 3)), np.zeros((32, 30, 3))], [1.0, 2.0], 'one size'),
        ([np.zeros((32, 32))] * 2, [1.0, 2.0], 'RGB'),
        ([np.full((32, 32, 3), np.nan)] * 2, [1.0, 2.0], 'NaN'),
    ],
)
def test_bad_input_is_refused(frames, times, message):
    with pytest.raises(ValueError, match=message):
        calibrate_response(frames, times)
    with pytest.raises(ValueError, match='unknown method'):
        calibrate_response(frames, times, method='robertson')
