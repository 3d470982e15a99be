"""AHDRNet and LFFNet: the design table's parameter counts, wiring, folding, gradients and input checks."""

import pytest
import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from helpers import randomise_doconv

from lffnet_arch.archs import AHDRNet, LFFNet, fold_doconv


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _lq(b=1, t=3, h=16, w=20):
    ldr = torch.rand(b, t, 3, h, w)
    exposures = 2.0 ** torch.arange(0, 2 * t, 2, dtype=torch.float32)
    return torch.cat([ldr, ldr**2.2 / exposures.view(1, t, 1, 1, 1)], dim=2)


@pytest.mark.parametrize('unused,expected', [(True, 1_515_139), (False, 1_441_283)])
def test_ahdrnet_count(unused, expected):
    assert count(AHDRNet(official_unused_convs=unused)) == expected


@pytest.mark.parametrize(
    'doconv,unused,expected',
    [
        ('none', True, 1_038_211),
        ('fusion', True, 1_069_315),
        ('rfft', True, 1_069_315),
        ('none', False, 964_355),
        ('fusion', False, 995_459),
        ('rfft', False, 995_459),
    ],
)
def test_lffnet_count(doconv, unused, expected):
    assert count(LFFNet(doconv=doconv, official_unused_convs=unused)) == expected


@pytest.mark.parametrize('doconv', ['fusion', 'rfft'])
@pytest.mark.parametrize('unused,expected', [(True, 1_038_211), (False, 964_355)])
def test_folded_lffnet_count_and_keys(doconv, unused, expected):
    folded = fold_doconv(LFFNet(doconv=doconv, official_unused_convs=unused))
    assert count(folded) == expected
    plain = LFFNet(doconv='none', official_unused_convs=unused)
    assert {k: v.shape for k, v in folded.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}


@pytest.mark.parametrize('doconv', ['fusion', 'rfft'])
def test_folded_outputs_equal_unfolded(doconv):
    net = LFFNet(num_feat=16, doconv=doconv).eval()
    randomise_doconv(net, std=0.05)
    lq = _lq(h=15, w=22)
    with torch.no_grad():
        expected = net(lq)
        folded = fold_doconv(net)
        # The folded weights load into the plain ablation network, which computes the same function.
        plain = LFFNet(num_feat=16, doconv='none').eval()
        plain.load_state_dict(folded.state_dict(), strict=True)
        torch.testing.assert_close(folded(lq), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(plain(lq), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize('arch', ['AHDRNet', 'LFFNet-fusion', 'LFFNet-rfft', 'LFFNet-none'])
@pytest.mark.parametrize('unused', [False, True])
def test_every_used_parameter_gets_a_gradient(arch, unused):
    if arch == 'AHDRNet':
        net = AHDRNet(num_feat=8, official_unused_convs=unused)
    else:
        net = LFFNet(num_feat=8, doconv=arch.split('-')[1], official_unused_convs=unused)
    randomise_doconv(net, std=0.05)
    out = net(_lq(b=2))
    assert out.shape == (2, 3, 16, 20)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    out.mean().backward()
    for name, param in net.named_parameters():
        if name.startswith('unused_att_convs.'):
            assert param.grad is None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def _reference_ahdrnet_forward(net: AHDRNet, lq: torch.Tensor) -> torch.Tensor:
    """AHDRNet's forward written from the design table (docs/design.md §2), reading the weights by name."""
    sd = net.state_dict()

    def conv(name, x, dilation=1):
        weight = sd[f'{name}.weight']
        padding = dilation * (weight.shape[-1] // 2)
        return F.conv2d(x, weight, sd[f'{name}.bias'], padding=padding, dilation=dilation)

    def lrelu(x):
        return torch.where(x >= 0, x, 0.01 * x)

    f1, f2, f3 = (lrelu(conv('conv_first', lq[:, i])) for i in range(3))
    a1 = torch.sigmoid(conv('attention.0.conv_mask', lrelu(conv('attention.0.conv_hidden', torch.cat([f1, f2], 1)))))
    a3 = torch.sigmoid(conv('attention.1.conv_mask', lrelu(conv('attention.1.conv_hidden', torch.cat([f3, f2], 1)))))
    x = conv('conv_merge', torch.cat([f1 * a1, f2, f3 * a3], 1))
    blocks = []
    for k in range(3):
        dense = x
        for j in range(6):
            dense = torch.cat([dense, F.relu(conv(f'fusion_blocks.{k}.dense_layers.{j}', dense, dilation=2))], 1)
        x = x + conv(f'fusion_blocks.{k}.conv_fuse', dense)
        blocks.append(x)
    x = conv('gff_3x3', conv('gff_1x1', torch.cat(blocks, 1))) + f2
    return torch.sigmoid(conv('conv_last', conv('conv_up', x)))


def test_ahdrnet_wiring_matches_design_table():
    net = AHDRNet(num_feat=64).eval()
    # Lift the biases away from zero so a missing bias or a swapped operand would show.
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith('bias'):
                param.normal_(std=0.05)
    lq = _lq(h=12, w=14) * 0.5
    with torch.no_grad():
        torch.testing.assert_close(net(lq), _reference_ahdrnet_forward(net, lq), atol=1e-5, rtol=1e-4)
    assert net.conv_first.kernel_size == (3, 3)
    assert all(conv.dilation == (2, 2) for conv in net.fusion_blocks[0].dense_layers)


def test_ahdrnet_wiring_detects_a_swapped_attention_order():
    net = AHDRNet(num_feat=8).eval()
    lq = _lq(h=12, w=14)
    with torch.no_grad():
        expected = _reference_ahdrnet_forward(net, lq)
        # Swapping the short and long frames must change the output: the network is not frame-symmetric.
        swapped = net(lq[:, [2, 1, 0]])
    assert (swapped - expected).abs().max() > 1e-4


@pytest.mark.parametrize('num_exposure,ref_idx', [(2, 0), (2, 1), (4, 1), (4, 3)])
@pytest.mark.parametrize('arch', [AHDRNet, LFFNet])
def test_any_number_of_exposures(arch, num_exposure, ref_idx):
    net = arch(num_feat=8, num_exposure=num_exposure, ref_idx=ref_idx)
    assert len(net.attention) == num_exposure - 1
    assert net.conv_merge.in_channels == num_exposure * 8
    out = net(_lq(t=num_exposure, h=9, w=13))
    assert out.shape == (1, 3, 9, 13) and torch.isfinite(out).all()


def test_reference_frame_is_not_attended():
    # The reference features pass the alignment unchanged (and feed the global residual); the others are gated.
    net = LFFNet(num_feat=8, num_exposure=3, ref_idx=0)
    lq = _lq(h=9, w=9)
    aligned, ref_feat = net.align(lq)
    torch.testing.assert_close(aligned[0], ref_feat)
    assert not torch.equal(aligned[1], net.lrelu(net.conv_first(lq[:, 1])))


@pytest.mark.parametrize(
    'opt',
    [
        {'type': 'AHDRNet', 'num_feat': 8},
        {'type': 'LFFNet', 'num_feat': 8, 'doconv': 'rfft', 'num_exposure': 3, 'ref_idx': 1},
        {'type': 'LFFNet', 'num_feat': 8, 'doconv': 'none', 'official_unused_convs': True},
    ],
)
def test_build_network_from_options(opt):
    assert opt['type'] in ARCH_REGISTRY
    net = build_network(opt)
    assert type(net).__name__ == opt['type']
    assert net(_lq(h=8, w=8)).shape == (1, 3, 8, 8)


@pytest.mark.parametrize('arch', [AHDRNet, LFFNet])
def test_bad_input_errors(arch):
    net = arch(num_feat=8)
    with pytest.raises(ValueError, match='6 channels per frame.*got 3'):
        net(torch.rand(1, 3, 3, 8, 8))
    with pytest.raises(ValueError, match='num_exposure=3.*got 4'):
        net(torch.rand(1, 4, 6, 8, 8))
    with pytest.raises(ValueError, match='4-D tensor'):
        net(torch.rand(1, 18, 8, 8))


@pytest.mark.parametrize(
    'kwargs,match',
    [
        ({'ref_idx': 3}, r'ref_idx must be in \[0, 2\]'),
        ({'ref_idx': -1}, 'ref_idx'),
        ({'num_exposure': 1, 'ref_idx': 0}, 'num_exposure must be >= 2'),
        ({'num_block': 0}, 'num_block'),
    ],
)
@pytest.mark.parametrize('arch', [AHDRNet, LFFNet])
def test_bad_options_errors(arch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        arch(num_feat=8, **kwargs)


def test_lffnet_rejects_unknown_doconv_placement():
    with pytest.raises(ValueError, match="doconv must be one of .*'everywhere'"):
        LFFNet(doconv='everywhere')


@pytest.mark.parametrize('num_exposure,expected', [(2, 0), (3, 1), (4, 1), (5, 2)])
@pytest.mark.parametrize('arch', [AHDRNet, LFFNet])
def test_default_reference_is_the_middle_frame(arch, num_exposure, expected):
    assert arch(num_feat=8, num_exposure=num_exposure).ref_idx == expected


@pytest.mark.parametrize('arch,kwargs', [(AHDRNet, {}), (LFFNet, {'doconv': 'fusion'}), (LFFNet, {'doconv': 'rfft'})])
def test_reference_skip_starts_as_the_reference_frame(arch, kwargs):
    lq = _lq()
    net = arch(num_feat=8, ref_skip=True, **kwargs)
    torch.testing.assert_close(net(lq), lq[:, 1, 3:6], atol=1e-6, rtol=1e-5)
    # Without the skip the same untrained network is far from it: the test above is not vacuous.
    assert (arch(num_feat=8, **kwargs)(lq) - lq[:, 1, 3:6]).abs().max() > 0.1


@pytest.mark.parametrize('arch', [AHDRNet, LFFNet])
def test_reference_skip_corrects_in_log_odds_and_trains(arch):
    torch.manual_seed(0)
    lq = _lq()
    net = arch(num_feat=8, ref_skip=True)
    with torch.no_grad():
        net.conv_last.bias.fill_(0.5)  # a constant correction of +0.5 in log-odds
    ref = lq[:, 1, 3:6].clamp(1e-6, 1 - 1e-6)
    torch.testing.assert_close(net(lq), torch.sigmoid(torch.logit(ref) + 0.5), atol=1e-6, rtol=1e-5)
    # Zero-initialised, the reconstruction conv still gets a gradient (and through it everything after one step).
    net = arch(num_feat=8, ref_skip=True)
    (net(lq) - 0.5).square().mean().backward()
    assert net.conv_last.bias.grad.abs().sum() > 0


def test_reference_skip_weights_load_only_into_a_network_with_the_skip():
    with_skip = LFFNet(num_feat=8, ref_skip=True).state_dict()
    assert 'reference_skip' in with_skip
    LFFNet(num_feat=8, ref_skip=True).load_state_dict(with_skip, strict=True)
    with pytest.raises(RuntimeError, match='reference_skip'):
        LFFNet(num_feat=8).load_state_dict(with_skip, strict=True)
    with pytest.raises(RuntimeError, match='reference_skip'):
        LFFNet(num_feat=8, ref_skip=True).load_state_dict(LFFNet(num_feat=8).state_dict(), strict=True)
    # The buffer holds the reference: weights that correct frame 0 refuse a network whose reference is frame 1.
    first = LFFNet(num_feat=8, ref_skip=True, ref_idx=0).state_dict()
    assert float(first['reference_skip']) == 0 and float(with_skip['reference_skip']) == 1
    message = 'reference_skip: the weights were trained with reference frame 0, this network was built with ref_idx=1'
    with pytest.raises(RuntimeError, match=message):
        LFFNet(num_feat=8, ref_skip=True).load_state_dict(first, strict=True)
    LFFNet(num_feat=8, ref_skip=True, ref_idx=0).load_state_dict(first, strict=True)


def test_reference_skip_survives_folding():
    net = LFFNet(num_feat=8, ref_skip=True).eval()
    randomise_doconv(net)
    with torch.no_grad():
        net.conv_last.W.normal_(std=0.1)  # zero-initialised; a trained one is not
    lq = _lq()
    folded = fold_doconv(net)
    assert (net(lq) - lq[:, 1, 3:6]).abs().max() > 1e-3
    assert 'reference_skip' in folded.state_dict()
    torch.testing.assert_close(folded(lq), net(lq), atol=1e-5, rtol=1e-4)


def test_reference_skip_needs_ldr_and_hdr_channels():
    with pytest.raises(ValueError, match='ref_skip needs .*num_in_ch=3, num_out_ch=3'):
        LFFNet(num_feat=8, num_in_ch=3, ref_skip=True)
