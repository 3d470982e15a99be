"""Checkpoint helpers, DO-Conv folding script and official AHDRNet conversion (scripts/model_conversion)."""

import importlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers import randomise_doconv

from lffnet_arch import archs
from lffnet_arch.archs import AHDRNet, DOConv2d, LFFNet
from lffnet_arch.deploy import model
from lffnet_arch.fileio import checkpoint as ckpt


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _lq(num_frames: int = 3, size=(16, 16), batch: int = 1) -> torch.Tensor:
    return torch.rand(batch, num_frames, 6, *size)


# ---------------------------------------------------------------- checkpoint helpers


def test_select_params_prefers_ema_then_params_then_bare():
    a, b = {'w': torch.zeros(1)}, {'w': torch.ones(1)}
    assert ckpt.select_params({'params': a, 'params_ema': b})['w'].item() == 1
    assert ckpt.select_params({'params': a})['w'].item() == 0
    assert ckpt.select_params(dict(b))['w'].item() == 1
    assert ckpt.select_params({'params': a, 'params_ema': b}, key='params')['w'].item() == 0
    with pytest.raises(KeyError, match='params_ema'):
        ckpt.select_params({'params': a}, key='params_ema')
    with pytest.raises(ValueError, match='non-tensor entries'):
        ckpt.select_params({'net': a, 'iter': 3})


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        ckpt.load_checkpoint(tmp_path / 'missing.pth')
    torch.save([torch.zeros(1)], tmp_path / 'list.pth')
    with pytest.raises(ValueError, match='expected a dict'):
        ckpt.load_checkpoint(tmp_path / 'list.pth')


def test_save_checkpoint_atomic_and_refuses_overwrite(tmp_path, monkeypatch):
    path = tmp_path / 'sub' / 'net.pth'
    ckpt.save_checkpoint({'params': {'w': torch.arange(3.0)}}, path)
    assert torch.equal(ckpt.load_params(path)['w'], torch.arange(3.0))
    original = path.read_bytes()
    with pytest.raises(FileExistsError, match='net.pth'):
        ckpt.save_checkpoint({'params': {'w': torch.zeros(3)}}, path)
    assert path.read_bytes() == original

    def failing_save(obj, file):
        file.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', failing_save)
    with pytest.raises(OSError, match='disk full'):
        ckpt.save_checkpoint({'params': {'w': torch.zeros(3)}}, path, overwrite=True)
    assert path.read_bytes() == original  # the interrupted save left the old file intact ...
    assert sorted(p.name for p in path.parent.iterdir()) == ['net.pth']  # ... and no temporary file


def test_save_atomic_replaces_without_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / 'models' / 'net_g_2.pth'
    ckpt.save_atomic({'params': {'w': torch.zeros(2)}}, str(path))
    ckpt.save_atomic({'params': {'w': torch.ones(2)}}, path)  # training checkpoints replace without asking
    assert torch.equal(ckpt.load_params(path)['w'], torch.ones(2))
    original = path.read_bytes()
    monkeypatch.setattr(torch, 'save', lambda obj, file: (file.write(b'partial'), 1 / 0))
    with pytest.raises(ZeroDivisionError):
        ckpt.save_atomic({'params': {}}, path)
    assert path.read_bytes() == original
    assert [p.name for p in path.parent.iterdir()] == ['net_g_2.pth']


def test_load_network_sources_of_options(tmp_path):
    """Options from a YAML (safe loader), a dict, an architecture's defaults, or inferred; overrides win."""
    net = AHDRNet(num_feat=8, num_block=2)
    torch.save({'params': {f'module.{k}': v for k, v in net.state_dict().items()}}, tmp_path / 'net.pth')
    (tmp_path / 'opt.yml').write_text('name: x\nnetwork_g:\n  type: AHDRNet\n  num_feat: 8\n  num_block: 2\n')
    from_yaml, options = model.load_network(tmp_path / 'net.pth', tmp_path / 'opt.yml')
    assert options == {'type': 'AHDRNet', 'num_feat': 8, 'num_block': 2} and not from_yaml.training
    inferred, options = model.load_network(tmp_path / 'net.pth')
    assert isinstance(inferred, AHDRNet) and options['num_block'] == 2 and options['num_feat'] == 8
    from_dict, _ = model.load_network(tmp_path / 'net.pth', {'network_g': {'num_feat': 8}}, arch='AHDRNet', num_block=2)
    for loaded in (from_yaml, inferred, from_dict):
        assert torch.equal(loaded.conv_first.weight, net.conv_first.weight)
    with pytest.raises(ValueError, match='does not fit AHDRNet'):
        model.load_network(tmp_path / 'net.pth', arch='AHDRNet')  # the paper's num_feat 64, num_block 3
    (tmp_path / 'evil.yml').write_text("network_g: !!python/object/apply:os.system ['echo unsafe']\n")
    with pytest.raises(yaml.constructor.ConstructorError):
        model.load_network(tmp_path / 'net.pth', tmp_path / 'evil.yml')
    (tmp_path / 'notype.yml').write_text('network_g:\n  num_feat: 8\n')
    with pytest.raises(KeyError, match='notype.yml.*no type'):
        model.load_network(tmp_path / 'net.pth', tmp_path / 'notype.yml')


def test_load_network_any_registered_arch(tmp_path):
    """Networks are built from BasicSR's ARCH_REGISTRY, so a BasicSR architecture loads too."""
    from basicsr.archs.srvgg_arch import SRVGGNetCompact

    net = SRVGGNetCompact(num_feat=8, num_conv=2)
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'srvgg.pth')
    loaded, options = model.load_network(tmp_path / 'srvgg.pth', arch='SRVGGNetCompact', num_feat=8, num_conv=2)
    assert isinstance(loaded, SRVGGNetCompact) and options['type'] == 'SRVGGNetCompact'
    assert torch.equal(loaded.body[0].weight, net.body[0].weight)
    with pytest.raises(KeyError, match='Cannot infer'):
        model.load_network(tmp_path / 'srvgg.pth')  # only LFFNet / AHDRNet options can be inferred
    with pytest.raises(ValueError, match='Unknown architecture .NoSuchNet.*LFFNet'):
        model.load_network(tmp_path / 'srvgg.pth', arch='NoSuchNet')
    with pytest.raises(ValueError, match='Invalid options for SRVGGNetCompact'):
        model.create_network({'type': 'SRVGGNetCompact', 'num_feet': 8})


@pytest.mark.parametrize(
    'arch,kwargs',
    [
        ('LFFNet', dict(doconv='fusion')),
        ('LFFNet', dict(doconv='rfft', official_unused_convs=True)),
        ('LFFNet', dict(doconv='none', num_exposure=4, ref_idx=1, num_block=2)),
        ('AHDRNet', dict(official_unused_convs=True, num_block=2)),
        ('LFFNet', dict(doconv='fusion', ref_skip=True)),
        ('AHDRNet', dict(ref_skip=True)),
        ('LFFNet', dict(doconv='none', ref_skip=True, num_exposure=4, ref_idx=2)),
    ],
)
def test_infer_network_options_rebuilds_the_network(arch, kwargs):
    net = {'LFFNet': LFFNet, 'AHDRNet': AHDRNet}[arch](num_feat=8, **kwargs)
    options = archs.infer_network_options(net.state_dict())
    assert options['type'] == arch and options['num_feat'] == 8
    for key, value in kwargs.items():
        if key != 'ref_idx' or kwargs.get('ref_skip'):  # stored only with the reference skip; else (T - 1) // 2
            assert options[key] == value, key
    rebuilt = model.create_network(options)
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    assert _num_params(rebuilt) == _num_params(net)


def test_infer_network_options_rejects_official_names():
    with pytest.raises(KeyError, match='convert_official_ahdrnet'):
        archs.infer_network_options({'conv1.weight': torch.zeros(1), 'att11.weight': torch.zeros(1)})


# ---------------------------------------------------------------- fold_doconv.py


def _write_lffnet_checkpoint(path: Path, with_ema: bool = True, **kwargs) -> dict:
    """Save an LFFNet with non-zero D (and a different EMA copy); return the networks by checkpoint key."""
    nets = {'params': LFFNet(**kwargs)}
    assert randomise_doconv(nets['params']) > 0
    if with_ema:
        nets['params_ema'] = LFFNet(**kwargs)
        randomise_doconv(nets['params_ema'])
    torch.save({key: net.state_dict() for key, net in nets.items()}, path)
    return nets


def _check_folded(path: Path, nets: dict, lq: torch.Tensor, **kwargs) -> LFFNet:
    folded = torch.load(path, map_location='cpu', weights_only=True)
    assert sorted(folded) == sorted([*nets, 'network_g'])
    assert folded['network_g'] == {'type': 'LFFNet', **folded['network_g'], 'doconv': 'none'}  # records the result
    for key, net in nets.items():
        plain = LFFNet(**{**kwargs, 'doconv': 'none'})
        plain.load_state_dict(folded[key], strict=True)
        with torch.no_grad():
            expected = net.eval()(lq)
            torch.testing.assert_close(plain.eval()(lq), expected, atol=1e-5, rtol=0)
            # The check is not vacuous: D matters, so W alone (D = 0) gives another output.
            for module in net.modules():
                if isinstance(module, DOConv2d) and module.D is not None:
                    module.D.zero_()
            assert (net(lq) - expected).abs().max() > 1e-4
    return plain


@pytest.mark.parametrize('doconv,official', [('fusion', False), ('rfft', True)])
def test_fold_script_round_trip_small(tmp_path, doconv, official):
    kwargs = dict(num_feat=8, doconv=doconv, official_unused_convs=official)
    nets = _write_lffnet_checkpoint(tmp_path / 'net.pth', **kwargs)
    script = importlib.import_module('lffnet_arch.commands.fold_doconv')
    assert script.main(['--input', str(tmp_path / 'net.pth'), '--output', str(tmp_path / 'folded.pth')]) == 0
    plain = _check_folded(tmp_path / 'folded.pth', nets, _lq(size=(15, 18)), **kwargs)
    assert not any(isinstance(m, DOConv2d) for m in plain.modules())


def test_fold_script_with_options_yaml_and_bare_state_dict(tmp_path):
    kwargs = dict(num_feat=8, num_exposure=4, ref_idx=2, doconv='rfft')
    net = LFFNet(**kwargs)
    randomise_doconv(net)
    torch.save(net.state_dict(), tmp_path / 'bare.pth')
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump({'name': 'x', 'network_g': {'type': 'LFFNet', **kwargs}}))
    script = importlib.import_module('lffnet_arch.commands.fold_doconv')
    argv = [
        '--input',
        str(tmp_path / 'bare.pth'),
        '--output',
        str(tmp_path / 'folded.pth'),
        '--opt',
        str(tmp_path / 'opt.yml'),
    ]
    assert script.main(argv) == 0
    _check_folded(tmp_path / 'folded.pth', {'params': net}, _lq(4, size=(12, 13)), **kwargs)


@pytest.mark.parametrize('doconv,official', [('fusion', False), ('rfft', True)])
def test_fold_script_parameter_counts(tmp_path, capsys, doconv, official):
    """Folding drops exactly the DO-Conv D factors: the result has LFFNet(doconv='none')'s count.

    Small nets (num_feat 8); the paper-size counts (995,459 -> 964,355) are checked in test_archs.py.
    """
    kwargs = dict(num_feat=8, doconv=doconv, official_unused_convs=official)
    nets = _write_lffnet_checkpoint(tmp_path / 'net.pth', with_ema=False, **kwargs)
    plain_count = _num_params(LFFNet(**{**kwargs, 'doconv': 'none'}))
    d_count = sum(m.D.numel() for m in nets['params'].modules() if isinstance(m, DOConv2d) and m.D is not None)
    assert d_count > 0 and _num_params(nets['params']) == plain_count + d_count
    script = importlib.import_module('lffnet_arch.commands.fold_doconv')
    assert script.main(['--input', str(tmp_path / 'net.pth'), '--output', str(tmp_path / 'folded.pth')]) == 0
    assert f'{plain_count:,} parameters (was {plain_count + d_count:,})' in capsys.readouterr().out
    plain = _check_folded(tmp_path / 'folded.pth', nets, _lq(size=(8, 9)), **kwargs)
    assert _num_params(plain) == plain_count


def test_fold_script_refuses_overwrite_and_bad_input(tmp_path, capsys):
    _write_lffnet_checkpoint(tmp_path / 'net.pth', with_ema=False, num_feat=8)
    out = tmp_path / 'folded.pth'
    out.write_bytes(b'keep me')
    script = importlib.import_module('lffnet_arch.commands.fold_doconv')
    assert script.main(['--input', str(tmp_path / 'net.pth'), '--output', str(out)]) == 1
    assert 'already exists' in capsys.readouterr().err and out.read_bytes() == b'keep me'
    assert script.main(['--input', str(tmp_path / 'net.pth'), '--output', str(out), '--overwrite']) == 0
    assert 'params' in torch.load(out, weights_only=True)

    torch.save({'params': LFFNet(num_feat=8, doconv='none').state_dict()}, tmp_path / 'plain.pth')
    assert script.main(['--input', str(tmp_path / 'plain.pth'), '--output', str(tmp_path / 'o1.pth')]) == 1
    assert 'nothing to fold' in capsys.readouterr().err
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump({'network_g': {'type': 'LFFNet', 'num_feat': 16}}))
    argv = [
        '--input',
        str(tmp_path / 'net.pth'),
        '--output',
        str(tmp_path / 'o2.pth'),
        '--opt',
        str(tmp_path / 'opt.yml'),
    ]
    assert script.main(argv) == 1
    assert 'does not fit' in capsys.readouterr().err
    assert not (tmp_path / 'o1.pth').exists() and not (tmp_path / 'o2.pth').exists()


# ---------------------------------------------------------------- official AHDRNet conversion


def _official_shapes(nf: int = 64, growth: int = 32, num_layer: int = 6) -> dict:
    """Conv shapes (out, in, k) of the official AHDRNet, from the design table (docs/design.md §2)."""
    shapes = {
        'conv1': (nf, 6, 3),
        'att11': (2 * nf, 2 * nf, 3),
        'att12': (nf, 2 * nf, 3),
        'attConv1': (nf, nf, 3),
        'att31': (2 * nf, 2 * nf, 3),
        'att32': (nf, 2 * nf, 3),
        'attConv3': (nf, nf, 3),
        'conv2': (nf, 3 * nf, 3),
    }
    for k in (1, 2, 3):
        for j in range(num_layer):
            shapes[f'RDB{k}.dense_layers.{j}.conv'] = (growth, nf + j * growth, 3)
        shapes[f'RDB{k}.conv_1x1'] = (nf, nf + num_layer * growth, 1)
    shapes.update({'GFF_1x1': (nf, 3 * nf, 1), 'GFF_3x3': (nf, nf, 3), 'conv_up': (nf, nf, 3), 'conv3': (3, nf, 3)})
    return shapes


def _official_state_dict() -> dict:
    state = {}
    for name, (c_out, c_in, k) in _official_shapes().items():
        state[f'{name}.weight'] = torch.randn(c_out, c_in, k, k) / (c_in * k * k) ** 0.5
        state[f'{name}.bias'] = 0.05 * torch.randn(c_out)
    return state


def _official_forward(p: dict, lq: torch.Tensor) -> torch.Tensor:
    """AHDRNet forward written from the design table with F.conv2d on the official keys."""

    def conv(name, x, padding=1, dilation=1):
        return F.conv2d(x, p[f'{name}.weight'], p[f'{name}.bias'], padding=padding, dilation=dilation)

    def lrelu(x):
        return F.leaky_relu(x, 0.01)

    f1, f2, f3 = (lrelu(conv('conv1', lq[:, i])) for i in range(3))
    a1 = torch.sigmoid(conv('att12', lrelu(conv('att11', torch.cat([f1, f2], 1)))))
    a3 = torch.sigmoid(conv('att32', lrelu(conv('att31', torch.cat([f3, f2], 1)))))
    feat = conv('conv2', torch.cat([f1 * a1, f2, f3 * a3], 1))
    block_outputs = []
    for k in (1, 2, 3):
        dense = feat
        for j in range(6):
            dense = torch.cat([dense, F.relu(conv(f'RDB{k}.dense_layers.{j}.conv', dense, 2, 2))], 1)
        feat = feat + conv(f'RDB{k}.conv_1x1', dense, padding=0)
        block_outputs.append(feat)
    fused = conv('GFF_3x3', conv('GFF_1x1', torch.cat(block_outputs, 1), padding=0)) + f2
    return torch.sigmoid(conv('conv3', conv('conv_up', fused)))


def test_official_state_dict_matches_the_design_table():
    state = _official_state_dict()
    assert sum(v.numel() for v in state.values()) == 1_515_139
    assert sorted(state) == sorted(archs.official_ahdrnet_keys())


def test_convert_official_matches_functional_forward():
    official = _official_state_dict()
    net = AHDRNet(official_unused_convs=True).eval()
    net.load_state_dict(archs.convert_official_ahdrnet_state_dict(official), strict=True)
    lq = _lq(size=(16, 16))
    with torch.no_grad():
        expected = _official_forward(official, lq)
        output = net(lq)
    assert expected.std() > 1e-3  # not a saturated, constant output
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=0)
    assert torch.equal(net.attention[1].conv_mask.weight, official['att32.weight'])  # frame 3 = long = attention.1


def test_convert_official_script_with_module_prefix(tmp_path, capsys):
    official = _official_state_dict()
    torch.save({f'module.{k}': v for k, v in official.items()}, tmp_path / 'official.pth')
    script = importlib.import_module('lffnet_arch.commands.convert_ahdrnet')
    argv = ['--input', str(tmp_path / 'official.pth'), '--output', str(tmp_path / 'ours.pth')]
    assert script.main(argv) == 0
    assert '1,515,139 parameters' in capsys.readouterr().out
    converted = torch.load(tmp_path / 'ours.pth', weights_only=True)
    assert list(converted) == ['params', 'network_g']
    assert converted['network_g']['official_unused_convs'] is True
    net = AHDRNet(official_unused_convs=True).eval()
    net.load_state_dict(converted['params'], strict=True)
    lq = _lq(size=(9, 11))
    with torch.no_grad():
        torch.testing.assert_close(net(lq), _official_forward(official, lq), atol=1e-5, rtol=0)

    (tmp_path / 'ours.pth').write_bytes(b'keep me')
    assert script.main(argv) == 1
    assert 'already exists' in capsys.readouterr().err
    assert (tmp_path / 'ours.pth').read_bytes() == b'keep me'


def test_convert_official_reports_missing_and_unexpected_keys(tmp_path, capsys):
    official = {k: torch.zeros(1) for k in archs.official_ahdrnet_keys()}
    del official['att12.bias'], official['RDB3.conv_1x1.weight']
    official['RDB4.conv_1x1.weight'] = torch.zeros(1)
    with pytest.raises(KeyError) as info:
        archs.convert_official_ahdrnet_state_dict(official)
    message = str(info.value)
    assert "missing keys ['att12.bias', 'RDB3.conv_1x1.weight']" in message
    assert "unexpected keys ['RDB4.conv_1x1.weight']" in message

    torch.save(official, tmp_path / 'bad.pth')
    script = importlib.import_module('lffnet_arch.commands.convert_ahdrnet')
    assert script.main(['--input', str(tmp_path / 'bad.pth'), '--output', str(tmp_path / 'out.pth')]) == 1
    assert 'att12.bias' in capsys.readouterr().err and not (tmp_path / 'out.pth').exists()


def test_convert_official_script_rejects_wrong_shapes(tmp_path, capsys):
    official = _official_state_dict()
    official['conv2.weight'] = official['conv2.weight'][:, :128]  # two frames' features instead of three
    torch.save(official, tmp_path / 'bad.pth')
    script = importlib.import_module('lffnet_arch.commands.convert_ahdrnet')
    assert script.main(['--input', str(tmp_path / 'bad.pth'), '--output', str(tmp_path / 'out.pth')]) == 1
    assert 'conv_merge.weight' in capsys.readouterr().err and not (tmp_path / 'out.pth').exists()
