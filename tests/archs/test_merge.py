"""The merge head's properties (docs/design.md), on noise-free 16-bit linear brackets from the capture simulator:

- exposure equivariance: scaling the scene radiance by 2^k, k from -3 to 3, scales the output by 2^k wherever
  the shortest frame holds the radiance unclipped;
- identity: where no frame clips, the output is the noise-weighted merge of the frames;

for merge networks with random weights (any weight the network may learn) and for every shipped model that has the
merge head.
"""

import pytest
import torch

from lffnet_arch.archs import AHDRNet, LFFNet
from lffnet_arch.archs.merge import merge_weights, noise_prior, validity
from lffnet_arch.deploy import load_model
from lffnet_arch.deploy.pretrained import PRETRAINED, pretrained_path
from scripts.measure.properties import equivariance_errors, identity_error

TOLERANCE = 0.01  # the bound on the median relative error


def _random_merge_net(arch: type, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = arch(num_feat=8, head='merge')
    for param in net.conv_last.parameters():  # zero at initialisation: give the correction a random, large say
        torch.nn.init.normal_(param, std=0.5)
    return net.eval()


def _shipped_merge_models() -> list:
    """The shipped models with the merge head: all of them (LFFNet folded and for fine-tuning, and AHDRNet);
    tests/deploy/test_pretrained.py checks that each one has it."""
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
    # Pixels the shortest frame holds unclipped at both scales: every frame the network may take from there is either
    # unclipped (and holds the same radiance) or clipped and all but weightless. Stricter than "nothing new clips",
    # which keeps only pixels whose every frame keeps its state.
    for k, (error, compared) in equivariance_errors(make_net()).items():
        assert compared > 0.5, 'the test bracket should keep most pixels'
        assert error <= TOLERANCE, f'k={k}: median relative error {error:.2e}'


@pytest.mark.parametrize('make_net', _networks())
def test_the_output_is_the_merge_where_no_frame_clips(make_net):
    error, unclipped = identity_error(make_net())
    assert unclipped > 0.3, 'the test bracket should have unclipped regions'
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
