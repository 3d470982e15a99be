"""One linearisation path from training to inference: the ``response`` option of the datasets, ``fuse``, the
inference command and the evaluator all build the network input through ``network_input`` with a response."""

import json

import numpy as np
import pytest
import torch

from lffnet_arch.archs import LFFNet
from lffnet_arch.data import MultiExposureHDRDataset, SimulatedBracketDataset
from lffnet_arch.data.simulator.demo import DEMO_RADIANCE, demo_bracket
from lffnet_arch.data.simulator.simulated_set import write_bracket
from lffnet_arch.deploy import fuse
from lffnet_arch.hdr_input import network_input
from lffnet_arch.response import Response
from lffnet_arch.response.resolve import resolve_response
from lffnet_arch.schema import OptionsError


def _bracket(size: int = 48, seed: int = 0) -> tuple:
    bracket = demo_bracket(size, seed=seed)
    return [f.astype(np.float32) / 65535 for f in bracket.ldrs], 2.0**bracket.evs


def test_a_gamma_response_gives_the_kalantari_input_bit_for_bit():
    frames, times = _bracket()
    plain = network_input(frames, times)
    assert torch.equal(network_input(frames, times, response=Response.gamma(2.2)), plain)
    srgb = network_input(frames, times, response=Response.srgb())[0]
    expected = Response.srgb().linearise(frames[2]) / times[2]
    np.testing.assert_allclose(srgb[2, 3:6].permute(1, 2, 0).numpy(), expected, rtol=1e-6)
    assert torch.equal(srgb[:, :3], plain[0, :, :3])  # the LDR half is the frames themselves


def test_the_datasets_take_the_response_option(tmp_path):
    write_bracket(tmp_path / 'scene', demo_bracket(32, seed=1))
    base = {'dataroot': str(tmp_path), 'phase': 'val'}
    plain = MultiExposureHDRDataset(base)[0]['lq']
    assert torch.equal(MultiExposureHDRDataset({**base, 'response': 'gamma:2.2'})[0]['lq'], plain)
    item = MultiExposureHDRDataset({**base, 'response': 'linear'})[0]
    linear, times = item['lq'], item['exposures']
    torch.testing.assert_close(linear[:, 3:6], linear[:, :3] / times.view(-1, 1, 1, 1), rtol=1e-6, atol=0)
    assert not torch.equal(linear, plain)
    with pytest.raises(OptionsError, match=r"MultiExposureHDRDataset:response: Response spec 'gamma:0'"):
        MultiExposureHDRDataset({**base, 'response': 'gamma:0'})
    with pytest.raises(OptionsError, match=r'MultiExposureHDRDataset:response: .*missing\.json'):
        MultiExposureHDRDataset({**base, 'response': str(tmp_path / 'missing.json')})


def test_simulated_items_carry_the_true_curve():
    dataset = SimulatedBracketDataset(
        {'dataroot': str(DEMO_RADIANCE), 'gt_size': 32, 'num_samples': 2, 'styles': ['wide'], 'phase': 'val'}
    )
    item = dataset[0]
    curve = json.loads(item['response'])
    assert curve['kind'] in ('gamma', 'srgb', 'filmic', 'slog3', 'logc3', 'random')


def test_fuse_linearises_as_asked_and_reports_how():
    frames, times = _bracket()
    net = LFFNet(num_feat=8, ref_skip=True).eval()  # untrained with the skip: the reference frame's input itself
    hdr, response, info = fuse(frames, times, net, response='gamma:2.2', return_response=True)
    expected = {'source': 'given', 'response': 'gamma:2.2', 'alignment': None, 'tile': None, 'strip_rows': None}
    assert info == expected and response.gamma_value == 2.2
    np.testing.assert_array_equal(hdr, fuse(frames, times, net, gamma=2.2))  # --gamma is --response gamma:G
    srgb = fuse(frames, times, net, response='srgb')
    expected = Response.srgb().linearise(frames[1]) / times[1]
    np.testing.assert_allclose(srgb, np.clip(expected, 1e-6, 1 - 1e-6), rtol=2e-3, atol=1e-6)
    flat = [np.full((20, 20, 3), v, np.float32) for v in (0.2, 0.4, 0.8)]
    response, info = resolve_response('auto', flat, np.array([1.0, 2.0, 4.0]))
    assert info['source'] == 'fallback' and response.gamma_value == 2.2 and info['reason']  # says why


def test_training_can_see_the_true_curve_with_a_calibration_like_error():
    base = {'dataroot': str(DEMO_RADIANCE), 'gt_size': 32, 'num_samples': 2, 'styles': ['kalantari'], 'phase': 'val'}
    plain = SimulatedBracketDataset(base)[0]['lq']
    true = SimulatedBracketDataset({**base, 'response': 'camera'})[0]['lq']
    torch.testing.assert_close(true, plain, atol=2e-3, rtol=1e-2)  # the kalantari camera is gamma 2.2
    noisy = [SimulatedBracketDataset({**base, 'response': 'camera', 'response_error': 0.1})[0]['lq'] for _ in range(2)]
    assert torch.equal(noisy[0], noisy[1])  # drawn from (seed, epoch, index): the same in every worker
    assert not torch.allclose(noisy[0], true, atol=1e-4)
    assert torch.equal(noisy[0][:, :3], true[:, :3])  # the codes themselves are untouched
    with pytest.raises(ValueError, match='response_error applies to response: camera'):
        SimulatedBracketDataset({**base, 'response_error': 0.1})
