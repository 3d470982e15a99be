"""HDRAdapter: BasicSR's image-to-image networks on the HDR protocol (shapes, padding, argument mapping, errors)."""

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from lffnet_arch.archs import HDRAdapter
from lffnet_arch.archs.adapter_arch import inner_network_arguments

TINY = {
    'SwinIR': {'type': 'SwinIR', 'embed_dim': 12, 'depths': [1], 'num_heads': [2], 'window_size': 4, 'img_size': 16},
    'RRDBNet': {'type': 'RRDBNet', 'num_feat': 8, 'num_block': 1, 'num_grow_ch': 4},
    'EDSR': {'type': 'EDSR', 'num_feat': 8, 'num_block': 1},
}


def _lq(height: int, width: int, frames: int = 3) -> torch.Tensor:
    return torch.rand(2, frames, 6, height, width)


@pytest.mark.parametrize('arch', sorted(TINY))
def test_any_size_in_linear_hdr_out(arch):
    net = HDRAdapter(TINY[arch]).eval()
    with torch.no_grad():
        out = net(_lq(30, 37))
    assert out.shape == (2, 3, 30, 37)
    assert torch.isfinite(out).all() and out.min() > 0 and out.max() < 1  # the HDR networks' sigmoid range
    assert net.num_exposure == 3 and net.ref_idx == 1 and net.num_in_ch == 6


def test_argument_defaults_and_padding_multiples():
    _, options, in_ch, out_ch, multiple = inner_network_arguments(TINY['SwinIR'], 18)
    assert (options['in_chans'], in_ch, out_ch, multiple, options['upscale']) == (18, 18, 18, 4, 1)
    _, options, in_ch, out_ch, multiple = inner_network_arguments(TINY['RRDBNet'], 18)
    assert (options['num_in_ch'], options['num_out_ch'], options['scale'], multiple) == (18, 3, 1, 4)
    # EDSR subtracts an RGB mean: it takes and returns 3 channels.
    _, options, in_ch, out_ch, multiple = inner_network_arguments(TINY['EDSR'], 18)
    assert (options['num_in_ch'], options['num_out_ch'], options['upscale'], multiple) == (3, 3, 1, 1)


def test_channel_names_are_mapped_to_the_networks_own():
    net = HDRAdapter({**TINY['SwinIR'], 'num_in_ch': 8})  # BasicSR's name for SwinIR's in_chans
    assert net.stem.out_channels == 8 and net.inner.conv_first.in_channels == 8 and net.head.in_channels == 8
    net = HDRAdapter({**TINY['RRDBNet'], 'in_chans': 5, 'out_chans': 7})
    assert net.inner.conv_first.in_channels == 5 * 16  # RRDBNet at scale 1 pixel-unshuffles by 4
    assert net.head.in_channels == 7
    with torch.no_grad():
        assert net.eval()(_lq(16, 20)).shape == (2, 3, 16, 20)


def test_no_padding_when_the_size_is_already_a_multiple():
    net = HDRAdapter(TINY['SwinIR']).eval()
    lq = _lq(16, 24)
    with torch.no_grad():
        expected = torch.sigmoid(net.head(net.inner(net.stem(lq.reshape(2, 18, 16, 24)))))
        assert torch.equal(net(lq), expected)
        # Padding to a larger multiple changes only what the inner network sees, never the output size.
        net.pad_multiple = 8
        assert net(lq).shape == expected.shape


@pytest.mark.parametrize(
    ('inner', 'match'),
    [
        ({'type': 'RRDBNet', 'num_feat': 8, 'num_block': 1, 'scale': 4}, 'scale 1'),
        ({'type': 'EDSR', 'num_in_ch': 18}, 'RGB mean'),
        ({'type': 'SwinIR', 'in_chans': 3, 'num_in_ch': 3}, 'given twice'),
        ({'type': 'SwinIR', 'in_chans': 4, 'num_out_ch': 3}, 'as many channels'),
        ({'type': 'NoSuchNet'}, 'not registered'),
        ({'embed_dim': 8}, 'type'),
        ({'type': 'LFFNet'}, 'without the adapter'),
        ({'type': 'RRDBNet', 'num_feat': 8, 'no_such_option': 1}, 'invalid options'),
        ({'type': 'SpyNet'}, 'input-channel argument'),
    ],
)
def test_bad_inner_options_are_refused(inner, match):
    with pytest.raises(ValueError, match=match):
        HDRAdapter(inner)


def test_bad_adapter_options_and_input_are_refused():
    with pytest.raises(ValueError, match='ref_idx'):
        HDRAdapter(TINY['EDSR'], ref_idx=3)
    with pytest.raises(ValueError, match='pad_multiple'):
        HDRAdapter(TINY['EDSR'], pad_multiple=0)
    with pytest.raises(ValueError, match=r'\(B, 3, 6, H, W\)'):
        HDRAdapter(TINY['EDSR'])(torch.rand(1, 2, 6, 16, 16))


def test_registered_and_built_from_options():
    assert 'HDRAdapter' in ARCH_REGISTRY
    net = build_network({'type': 'HDRAdapter', 'inner': TINY['RRDBNet'], 'num_exposure': 4, 'ref_idx': 2})
    assert net.stem.in_channels == 24 and net.ref_idx == 2
    net.train()
    out = net(_lq(16, 16, frames=4))
    out.mean().backward()  # trainable end to end
    assert net.stem.weight.grad is not None and net.stem.weight.grad.abs().sum() > 0
