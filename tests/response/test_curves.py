"""Response values and files, option strings, and the forward response families."""

import json
import re

import numpy as np
import pytest

from lffnet_arch.data.simulator.capture import camera_response
from lffnet_arch.response import (
    FAMILIES,
    HELD_OUT_FAMILIES,
    SIMULATOR_FAMILIES,
    Response,
    draw_curve,
    forward_curve,
    parse_response,
)
from lffnet_arch.response.curves import FORMAT, VERSION
from lffnet_arch.response.families import ForwardCurve

CODES = np.linspace(0.0, 1.0, 1001)


def test_linearise_is_exact_for_formula_responses():
    ldr = np.random.default_rng(0).uniform(0, 1, (8, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(Response.gamma(2.2).linearise(ldr), ldr**2.2)
    np.testing.assert_array_equal(Response.linear().linearise(ldr), ldr)
    srgb = np.where(ldr <= 0.04045, ldr / 12.92, ((ldr + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(Response.srgb().linearise(ldr), srgb, rtol=1e-6)
    assert Response.gamma(2.2).linearise(ldr).dtype == np.float32


def test_table_response_interpolates_per_channel_and_normalises():
    table = np.stack([np.linspace(0, 2, 5), np.linspace(0, 4, 5) ** 2, np.full(5, 3.0)])
    response = Response(table)
    np.testing.assert_allclose(response.table[:, -1], 1.0)
    values = response.linearise(np.array([[0.125, 0.125, 0.5]]))
    np.testing.assert_allclose(values, [[0.125, 0.5 * (0.0 + 1.0 / 16), 1.0]])
    with pytest.raises(ValueError):
        response.table[0, 0] = 1.0  # read-only


@pytest.mark.parametrize(
    'table, problem',
    [
        (np.array([[0.0, 0.6, 0.5, 1.0]] * 3), 'decreases'),
        (np.array([[0.0, np.nan, 0.5, 1.0]] * 3), 'non-finite'),
        (np.array([[-0.1, 0.2, 0.5, 1.0]] * 3), 'negative'),
        (np.zeros((3, 4)), 'g(1)'),
        (np.ones((2, 4)), 'shape'),
    ],
)
def test_invalid_tables_are_refused(table, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        Response(table)


def test_from_samples_makes_a_valid_curve():
    codes = np.arange(256) / 255
    values = codes**2.0
    values[100] = 0.0  # a dip (OpenCV's responses have them)
    response = Response.from_samples(codes, np.stack([values, values, -values], axis=1) + np.array([0, 0, 2]))
    assert (np.diff(response.table, axis=1) >= 0).all()
    np.testing.assert_allclose(response.table[:, -1], 1.0)


def test_from_forward_inverts_the_curve_and_its_pedestal():
    curve = forward_curve('vlog', warp=(0.95, 1.0, 1.05), black_level=0.05)
    response = Response.from_forward(curve)
    x = np.geomspace(1e-4, 1.0, 200)
    np.testing.assert_allclose(response.linearise(curve(x)), np.stack([x] * 3, axis=1), rtol=2e-3, atol=1e-6)
    assert (response.linearise(np.full((1, 3), 0.04)) == 0).all()  # below the pedestal: black


def test_json_round_trip(tmp_path):
    curve = forward_curve('slog3', warp=(0.97, 1.0, 1.03))
    response = Response.from_forward(curve)
    path = response.to_json(tmp_path / 'camera.json', info={'method': 'test'})
    data = json.loads(path.read_text())
    assert (data['format'], data['version'], data['kind']) == (FORMAT, VERSION, 'table')
    assert data['info'] == {'method': 'test'}
    loaded = Response.from_json(path)
    np.testing.assert_allclose(loaded.table, response.table, rtol=1e-8, atol=1e-12)
    gamma = Response.from_json(Response.gamma(2.4).to_json(tmp_path / 'gamma.json'))
    assert gamma.spec == 'gamma:2.4'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['camera.json', 'gamma.json']  # no temporaries left
    with pytest.raises(FileExistsError):
        response.to_json(path, overwrite=False)


@pytest.mark.parametrize(
    'content, message',
    [
        ('{"format": "lffnet_arch.response", "version": 1, "kind": "table", "table": [[0, 0.5, 0.4, 1]]}', 'shape'),
        (
            '{"format": "lffnet_arch.response", "version": 1, "kind": "table", '
            '"table": [[0, 0.5, 0.4, 1], [0, 0.5, 0.6, 1], [0, 0.5, 0.6, 1]]}',
            'decreases',
        ),
        (
            '{"format": "lffnet_arch.response", "version": 1, "kind": "table", '
            '"table": [[0, NaN, 0.6, 1], [0, 0.5, 0.6, 1], [0, 0.5, 0.6, 1]]}',
            'non-finite',
        ),
        ('{"format": "lffnet_arch.response", "version": 2, "kind": "table", "table": []}', 'version'),
        ('{"format": "other", "version": 1}', 'not a response file'),
        ('{"format": "lffnet_arch.response", "version": 1, "kind": "gamma", "gamma": -1}', 'gamma'),
        ('[1, 2', 'not valid JSON'),
    ],
)
def test_bad_response_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / 'bad.json'
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        Response.from_json(path)
    assert str(path) in str(error.value)


def test_missing_response_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.json'):
        Response.from_json(tmp_path / 'missing.json')


def test_parse_response_accepts_the_option_strings(tmp_path):
    assert parse_response('auto') == 'auto'
    assert parse_response('gamma:2.2').spec == 'gamma:2.2'
    assert parse_response(' srgb ').spec == 'srgb'
    assert parse_response('linear').spec == 'linear'
    path = Response.from_forward(forward_curve('clog3')).to_json(tmp_path / 'c.json')
    assert parse_response(str(path)).spec is None
    assert parse_response(path).spec is None
    response = Response.gamma(2.0)
    assert parse_response(response) is response


@pytest.mark.parametrize('spec', ['gamma:0', 'gamma:-2', 'gamma:nan', 'gamma:inf', 'gamma:', 'gamma:abc'])
def test_parse_response_refuses_bad_gammas(spec):
    with pytest.raises(ValueError, match='finite number > 0') as error:
        parse_response(spec)
    assert repr(spec) in str(error.value)


@pytest.mark.parametrize('spec', ['Auto', 'gamma', 'sRGB2', 'curve.txt', ''])
def test_parse_response_refuses_unknown_specs(spec):
    with pytest.raises(ValueError, match="expected 'auto'") as error:
        parse_response(spec)
    assert repr(spec) in str(error.value)


@pytest.mark.parametrize('family', FAMILIES)
def test_families_are_monotone_from_0_to_1(family):
    rng = np.random.default_rng(FAMILIES.index(family))
    for _ in range(5):
        curve = draw_curve(family, rng)
        y = curve(CODES)
        assert y.shape == (CODES.size, 3)
        np.testing.assert_allclose(y[0], 0.0, atol=1e-12)
        np.testing.assert_allclose(y[-1], 1.0, atol=1e-12)
        assert (np.diff(y, axis=0) >= 0).all()
        assert (np.diff(y[1:], axis=0) > 0).all()  # strictly increasing above black: invertible


def test_families_split_into_simulated_and_held_out():
    assert set(SIMULATOR_FAMILIES) | set(HELD_OUT_FAMILIES) == set(FAMILIES)
    assert not set(SIMULATOR_FAMILIES) & set(HELD_OUT_FAMILIES)
    assert {'slog3', 'logc3', 'vlog', 'clog3', 'random'} <= set(HELD_OUT_FAMILIES)


def test_gamma_srgb_and_filmic_are_the_simulators_curves():
    x = np.linspace(0, 1, 257)
    np.testing.assert_allclose(forward_curve('gamma', gamma=2.4)(x)[:, 1], camera_response(x, 'gamma', gamma=2.4))
    np.testing.assert_allclose(forward_curve('srgb')(x)[:, 0], camera_response(x, 'srgb'))
    filmic = forward_curve('filmic', contrast=1.6)(x)[:, 2]
    np.testing.assert_allclose(filmic, camera_response(x, 'filmic', contrast=1.6))


def test_published_log_encodings_at_grey():
    """18% grey: S-Log3 code 420 / 1023, LogC3 (EI 800) 0.391, V-Log 0.423, Canon Log 3 about 0.343 (their
    published values), after the rescaling of the range to [0, 1]."""
    tops = {'slog3': 38.42, 'logc3': 55.08, 'vlog': 46.09, 'clog3': 14.67}
    blacks = {'slog3': 95 / 1023, 'logc3': 0.092809, 'vlog': 0.125, 'clog3': 0.12512}
    grey = {'slog3': 420 / 1023, 'logc3': 0.391, 'vlog': 0.423, 'clog3': 0.343}
    for family, top in tops.items():
        code = forward_curve(family)(np.array([0.18 / top]))[0, 0]
        np.testing.assert_allclose(code * (1 - blacks[family]) + blacks[family], grey[family], atol=2e-3)


def test_random_curves_differ_per_draw_and_repeat_per_seed():
    a = draw_curve('random', np.random.default_rng(3))
    b = draw_curve('random', np.random.default_rng(3))
    c = draw_curve('random', np.random.default_rng(4))
    x = np.linspace(0, 1, 65)
    np.testing.assert_array_equal(a(x), b(x))
    assert np.abs(a(x) - c(x)).max() > 0.01
    assert np.abs(a(x)[:, 0] - a(x)[:, 2]).max() > 0  # per-channel differences


def test_unknown_family_and_parameters_are_refused():
    with pytest.raises(ValueError, match='Unknown response family'):
        forward_curve('hlg')
    with pytest.raises(ValueError, match='no parameters'):
        forward_curve('slog3', gamma=2.2)
    with pytest.raises(ValueError, match='three numbers'):
        forward_curve('gamma', gamma=(2.2, 2.4))


def test_random_curves_are_finite_up_to_the_clipping_point():
    # Parameters drawn by the simulator's wide style: at x = 1 the blend rounded to 1 + 1 ulp, and
    # (1 - base) ** shoulder was NaN, which stopped a training run when its curve was inverted.
    params = {'mix': 0.15397407, 'gamma': 2.77654675, 'strength': 201.5049024, 'toe': 1.63725, 'shoulder': 1.29826}
    curve = ForwardCurve('random', (dict(params, pivot=0.5492757674185069),) * 3)
    x = np.unique(np.concatenate([[0.0], np.geomspace(1e-9, 1.0, 20000), np.linspace(0.0, 1.0, 20001)]))
    codes = curve(x)
    assert np.isfinite(codes).all() and codes[-1].tolist() == [1.0, 1.0, 1.0]
    Response.from_forward(curve)  # raised ValueError before
    for seed in range(2000):  # every draw of the family, not only the one that failed
        assert np.isfinite(draw_curve('random', np.random.default_rng(seed))(x)).all(), seed
