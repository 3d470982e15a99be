"""The merge head's properties (docs/design.md), on noise-free 16-bit linear brackets from the capture simulator:

- exposure equivariance: scaling the scene radiance by 2^k, k from -3 to 3, scales the output by 2^k wherever
  the shortest frame holds the radiance unclipped;
- identity: where no frame clips, the output is the noise-weighted merge of the frames;

for merge networks with random weights (any weight the network may learn) and for every shipped model that has the
merge head.
"""

import numpy as np
import pytest
import torch

from lffnet_arch.archs import AHDRNet, LFFNet
from lffnet_arch.archs.merge import merge_weights, noise_prior, validity
from lffnet_arch.data.simulator.capture import settings_for_style, simulate_bracket
from lffnet_arch.data.simulator.demo import _maps
from lffnet_arch.deploy import load_model
from lffnet_arch.deploy.pretrained import PRETRAINED, pretrained_path
from lffnet_arch.hdr_input import network_input

TOLERANCE = 0.01  # the bound on the median relative error
NOISELESS = {
    'responses': ['gamma'],
    'gamma': [1.0, 1.0],  # linear frames
    'shot_noise': [1e-12, 1e-12],
    'read_noise': [1e-12, 1e-12],
    'num_objects': [0, 0],  # static
    'stop_choices': [2.0],
}
KEY = 0.04  # the reference frame's log-average at k = 0; 0.005 to 0.32 over k = -3..3


def _bracket(k: int, size: int = 64) -> tuple:
    """Frames (float in [0, 1]), exposure times and the saturation mask (T, H, W) of the bracket scaled by 2^k."""
    settings = settings_for_style('kalantari', {**NOISELESS, 'key_level': [KEY * 2.0**k] * 2})
    bracket = simulate_bracket(_maps('Training'), settings, size, (11, 0, 0))
    frames = [f.astype(np.float32) / 65535 for f in bracket.ldrs]
    saturated = np.stack([f.max(axis=2) >= 1.0 for f in frames])
    return frames, 2.0**bracket.evs, saturated


def _output(net: torch.nn.Module, frames: list, times: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(network_input(frames, times, gamma=1.0))[0].permute(1, 2, 0).numpy()


def _random_merge_net(arch: type, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = arch(num_feat=8, head='merge')
    for param in net.conv_last.parameters():  # zero at initialisation: give the correction a random, large say
        torch.nn.init.normal_(param, std=0.5)
    return net.eval()


def _shipped_merge_models() -> list:
    """The shipped models with the merge head (none yet: the shipped LFFNet and AHDRNet predict the image, and do
    not have these properties; docs/results.md gives their errors)."""
    return [
        name
        for name in PRETRAINED
        if torch.load(pretrained_path(name), weights_only=True)['network_g'].get('head') == 'merge'
    ]


def _networks() -> list:
    return [
        pytest.param(lambda: _random_merge_net(LFFNet, 0), id='LFFNet-random'),
        pytest.param(lambda: _random_merge_net(AHDRNet, 1), id='AHDRNet-random'),
        *(
            pytest.param(lambda name=name: load_model(pretrained_path(name)), id=name)
            for name in _shipped_merge_models()
        ),
    ]


@pytest.mark.parametrize('make_net', _networks())
def test_exposure_equivariance(make_net):
    net = make_net()
    runs = {k: _bracket(k) for k in range(-3, 4)}
    base = _output(net, *runs[0][:2])
    for k in (-3, -2, -1, 1, 2, 3):
        # Pixels the shortest frame holds unclipped at both scales: every frame the network may take from there is
        # either unclipped (and holds the same radiance) or clipped and weightless. Stricter than "nothing new
        # clips", which keeps only pixels whose every frame keeps its state.
        keep = ~runs[k][2][0] & ~runs[0][2][0]
        assert keep.mean() > 0.5, 'the test bracket should keep most pixels'
        scaled = _output(net, *runs[k][:2])[keep] / 2.0**k
        error = np.median(np.abs(scaled / base[keep] - 1.0))
        assert error <= TOLERANCE, f'k={k}: median relative error {error:.2e}'


def _noise_weighted_merge(frames: list, times: np.ndarray, shot: float = 1e-3, read: float = 3e-3) -> np.ndarray:
    """The classical inverse-variance merge of linear frames: weight t_i^2 / (a x_i + b) per unclipped frame."""
    stack = np.stack(frames).astype(np.float64)
    hdr = stack / times[:, None, None, None]
    weights = times[:, None, None, None] ** 2 / (shot * stack + read**2) * (stack.max(axis=3, keepdims=True) < 1.0)
    return (weights * hdr).sum(axis=0) / weights.sum(axis=0)


@pytest.mark.parametrize('make_net', _networks())
def test_the_output_is_the_merge_where_no_frame_clips(make_net):
    frames, times, saturated = _bracket(0)
    unclipped = ~saturated.any(axis=0)
    assert unclipped.mean() > 0.3, 'the test bracket should have unclipped regions'
    out = _output(make_net(), frames, times)[unclipped]
    merge = _noise_weighted_merge(frames, times)[unclipped]
    error = np.median(np.abs(out / merge - 1.0))
    assert error <= TOLERANCE, f'median relative error {error:.2e}'


def test_the_prior_takes_shadows_from_the_long_frame_and_clipped_values_almost_never():
    # Two pixels, three frames 2 stops apart in the code values of a gamma-2.2 camera: a shadow, and a highlight
    # that clips in the long frame and nearly clips in the reference.
    shadow = torch.tensor([0.02, 0.08, 0.32]) ** (1 / 2.2)
    highlight = torch.tensor([0.3, 0.95, 1.0])
    ldr = torch.stack([shadow, highlight], dim=1)[None, :, None, :, None].expand(1, 3, 3, 2, 1)  # (B, T, C, H, W)
    weights = merge_weights(ldr, torch.zeros(1, 3, 2, 1))[0, :, 0]  # (T, H, W)
    assert weights[:, 0, 0].argmax() == 2 and weights[2, 0, 0] > 0.6  # shadows: the long frame, the cleanest
    assert weights[2, 1, 0] < 1e-3 and weights[1, 1, 0] > 0.1  # clipped: next to nothing; nearly: counted
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(2, 1))
    assert torch.isfinite(noise_prior(torch.zeros(1, 3, 3, 1, 1))).all()
    assert validity(torch.ones(1, 3, 3, 1, 1)).flatten().tolist() == [1.0, 0.0, 0.0]  # the shortest always counts


def test_merge_weights_stay_finite_and_clipped_frames_take_no_correction():
    ldr = torch.rand(1, 3, 3, 4, 4)
    ldr[:, 1:] = 1.0  # only the shortest frame is valid
    correction = lambda *z: torch.tensor(z).view(1, 3, 1, 1).expand(1, 3, 4, 4)  # noqa: E731
    for z in ((1e4, -1e4, -1e4), (-1e4, 1e4, 1e4), (0.0, 1e4, 1e4)):
        weights = merge_weights(ldr, correction(*z))
        assert torch.isfinite(weights).all()
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(1, 1, 4, 4))
    # The network cannot raise a clipped frame's weight: only its valid frames' corrections count.
    torch.testing.assert_close(merge_weights(ldr, correction(0.0, 1e4, 1e4)), merge_weights(ldr, correction(0, 0, 0)))
    # Where the shortest frame holds a highlight that clips the others, their clipped values weigh next to nothing.
    bright = torch.cat([torch.full((1, 1, 3, 4, 4), 0.6), torch.ones(1, 2, 3, 4, 4)], dim=1)
    assert merge_weights(bright, correction(0.0, 0.0, 0.0))[:, 0].min() > 0.999


def test_merge_head_weights_load_only_into_a_merge_network():
    merge = LFFNet(num_feat=8, head='merge').state_dict()
    assert float(merge['merge_head']) == 1
    assert LFFNet.options_from_state_dict(merge)['head'] == 'merge'
    assert LFFNet.options_from_state_dict(LFFNet(num_feat=8).state_dict())['head'] == 'image'
    with pytest.raises(RuntimeError, match='merge_head'):
        LFFNet(num_feat=8).load_state_dict(merge, strict=True)
    with pytest.raises(RuntimeError, match='merge_head'):
        LFFNet(num_feat=8, head='merge', ref_idx=0).load_state_dict(merge, strict=True)
    with pytest.raises(ValueError, match='head must be one of'):
        LFFNet(head='mix')
    with pytest.raises(ValueError, match='no ref_skip'):
        AHDRNet(head='merge', ref_skip=True)


@pytest.mark.parametrize('arch', [LFFNet, AHDRNet])
def test_the_merge_head_keeps_the_papers_parameter_counts_at_three_frames(arch):
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(arch(head='merge')) == count(arch())
    net = arch(num_feat=8, head='merge')
    untrained = net(torch.rand(2, 3, 6, 16, 16))
    assert untrained.shape == (2, 3, 16, 16)
    untrained.mean().backward()
    assert all(p.grad is not None for p in net.conv_last.parameters())


def test_consistency_drops_a_frame_where_it_disagrees_with_the_reference_and_nowhere_else():
    from lffnet_arch.archs.merge import consistency

    times = torch.tensor([1.0, 4.0, 16.0]).view(1, 3, 1, 1, 1)
    radiance = torch.full((1, 1, 3, 4, 4), 0.01)
    hdr = radiance.expand(1, 3, 3, 4, 4).clone()
    hdr[:, 2, :, 0, 0] *= 4.0  # a ghost two stops brighter in the long frame
    ldr = (hdr * times).clamp(0, 1) ** (1 / 2.2)
    penalty = consistency(ldr, hdr, ref_idx=1)
    assert penalty[:, 1].eq(0).all()  # never the reference
    assert penalty[0, 2, 0, 0, 0] < -20  # the ghost: e^-20 of its weight
    assert penalty[0, :, 0, 1:, :].abs().max() < 1e-6 and penalty[0, :, 0, 1:, 0].abs().max() < 1e-6  # agreement
    weights = merge_weights(ldr, torch.zeros(1, 3, 4, 4), hdr, 1)[0, :, 0]
    assert weights[2, 0, 0] < 1e-6 and weights[2, 1, 1] > 0.5  # the long frame's shadows, but not its ghost


def test_a_clipped_reference_is_a_lower_bound_that_ghosts_below_it_contradict():
    from lffnet_arch.archs.merge import consistency

    # One pixel of a blown-out window: the reference and the long frame clip, and the short frame holds either the
    # window (a 1/4 of the code range brighter than the reference's clipped value) or a dark moving object (a ghost).
    times = torch.tensor([1.0, 4.0, 16.0]).view(1, 3, 1, 1, 1)
    window, ghost = torch.full((1, 1, 3, 1, 1), 0.6), torch.full((1, 1, 3, 1, 1), 0.002)
    for short, expected in ((window, window[:, 0]), (ghost, torch.full((1, 3, 1, 1), 0.25))):
        hdr = torch.cat([short, torch.full((1, 2, 3, 1, 1), 1.0) / times[:, 1:]], dim=1)  # clipped: 1 / t
        ldr = torch.cat([short.clamp(0, 1) ** (1 / 2.2), torch.ones(1, 2, 3, 1, 1)], dim=1)
        penalty = consistency(ldr, hdr, ref_idx=1)
        merged = (merge_weights(ldr, torch.zeros(1, 3, 1, 1), hdr, 1) * hdr).sum(dim=1)
        if short is window:  # brighter than the clipped reference: no contradiction, the short frame's radiance
            assert penalty[0, 0].item() == 0
        else:  # darker: 7 stops of contradiction, and the reference's clipped value (a lower bound) is the output
            assert penalty[0, 0].item() < -20
        torch.testing.assert_close(merged, expected, rtol=1e-3, atol=0)
