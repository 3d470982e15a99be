"""The shipped-weights mechanism: load_model() and lffnet-inference without a checkpoint, --model, --checkpoint."""

import numpy as np
import pytest
import torch
from test_inference import save_net, write_tiff_bracket

from lffnet_arch.archs import AHDRNet, LFFNet
from lffnet_arch.commands.inference import main
from lffnet_arch.deploy import load_model, pretrained
from lffnet_arch.fileio.image import read_hdr


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A weights folder holding a tiny LFFNet as the default model (AHDRNet absent)."""
    folder = tmp_path / 'weights'
    folder.mkdir()
    net = LFFNet(num_feat=8, doconv='none', head='merge').eval()  # folded, with the merge head, as shipped
    save_net(net, folder / pretrained.PRETRAINED['LFFNet'])
    monkeypatch.setattr(pretrained, 'WEIGHTS_DIR', folder)
    return net


def test_load_model_without_checkpoint_loads_the_shipped_default(weights):
    net = load_model()
    assert isinstance(net, LFFNet) and net.num_feat == 8
    for name, value in weights.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], value, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match=r"no shipped weights for 'AHDRNet'.*--checkpoint"):
        load_model(pretrained='AHDRNet')
    with pytest.raises(ValueError, match="Unknown shipped model 'SwinIR'"):
        load_model(pretrained='SwinIR')


def test_cli_uses_the_shipped_model_and_a_checkpoint_overrides_it(weights, tmp_path, capsys):
    write_tiff_bracket(tmp_path / 'bracket')
    assert main(['--input', str(tmp_path / 'bracket'), '--output', str(tmp_path / 'out')]) == 0
    names = sorted(p.name for p in (tmp_path / 'out').iterdir())
    assert names == ['bracket.exr', 'bracket.hdr', 'bracket.png', 'bracket_response.json']
    shipped = read_hdr(tmp_path / 'out' / 'bracket.exr')
    assert np.isfinite(shipped).all() and shipped.max() > 0

    other = AHDRNet(num_feat=8).eval()
    checkpoint = save_net(other, tmp_path / 'ahdrnet.pth')
    assert (
        main(
            ['--input', str(tmp_path / 'bracket'), '--output', str(tmp_path / 'out2'), '--checkpoint', str(checkpoint)]
        )
        == 0
    )
    assert not np.array_equal(read_hdr(tmp_path / 'out2' / 'bracket.exr'), shipped)

    assert main(['--input', str(tmp_path / 'bracket'), '--output', str(tmp_path / 'out3'), '--model', 'AHDRNet']) == 1
    assert "no shipped weights for 'AHDRNet'" in capsys.readouterr().err


# Every model PRETRAINED names ships: LFFNet (folded and for fine-tuning) and AHDRNet, and every one of them merges
# the frames (the merge head).
SHIPPED = sorted(pretrained.PRETRAINED)


def test_every_named_model_ships():
    missing = [file for file in pretrained.PRETRAINED.values() if not (pretrained.WEIGHTS_DIR / file).is_file()]
    assert not missing and set(SHIPPED) == {'LFFNet', 'LFFNet-train', 'AHDRNet'}
    assert pretrained.DEFAULT_MODEL == 'LFFNet'


@pytest.mark.parametrize('name', SHIPPED)
def test_the_shipped_weights_load_strictly_and_fuse(name):
    """The weights in lffnet_arch/weights/ (not a stand-in): strict load, the merge head, a finite fusion that
    improves on the reference frame's clipped highlights instead of returning it."""
    from test_inference import radiance, render

    from lffnet_arch.archs import infer_network_options
    from lffnet_arch.deploy import fuse
    from lffnet_arch.fileio.checkpoint import load_checkpoint
    from lffnet_arch.metrics import calculate_psnr_mu

    path = pretrained.pretrained_path(name)
    state = load_checkpoint(path)['params']
    options = infer_network_options(state)
    assert options['type'] == name.split('-')[0] and options['num_feat'] == 32
    assert options['head'] == 'merge' and not options['ref_skip']
    assert options.get('doconv', 'none') == ('fusion' if name == 'LFFNet-train' else 'none')
    net = load_model(pretrained=name)  # strict: every key matches
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    assert net.conv_last.weight.abs().max() > 0 if hasattr(net.conv_last, 'weight') else net.conv_last.W.abs().max() > 0
    scene = radiance(seed=5)
    times = [1.0, 4.0, 16.0]
    hdr = fuse(render(scene, times=times), times, net)
    assert hdr.shape == scene.shape and hdr.dtype == np.float32 and np.isfinite(hdr).all()
    assert 0 < hdr.max() <= 1 and hdr.min() >= 0
    # The GT is the scene in units of the shortest exposure; the reference frame (t = 4) clips above 0.25.
    reference = render(scene, times=times)[1] ** 2.2 / times[1]
    assert (scene > 0.3).mean() > 0.05
    assert calculate_psnr_mu(hdr, scene) > calculate_psnr_mu(reference, scene) + 1


def test_checkpoints_record_their_network_so_a_missing_buffer_never_loads_as_another(tmp_path):
    """The shipped LFFNet without its merge_head buffer would be a valid image-head network (T = 3 merge weights are
    3 output channels); the options the checkpoint records make it a missing key instead."""
    from lffnet_arch.deploy.pretrained import PRETRAINED, WEIGHTS_DIR
    from lffnet_arch.fileio.checkpoint import NETWORK_KEY, load_checkpoint

    for file in PRETRAINED.values():  # every shipped checkpoint records what it is
        assert load_checkpoint(WEIGHTS_DIR / file)[NETWORK_KEY].get('head', 'image') == 'merge'
    checkpoint = load_checkpoint(WEIGHTS_DIR / PRETRAINED['LFFNet'])
    del checkpoint['params']['merge_head']
    torch.save(checkpoint, tmp_path / 'damaged.pth')
    with pytest.raises(ValueError, match=r'damaged\.pth does not fit LFFNet.*missing keys \(e\.g\. merge_head\)'):
        load_model(tmp_path / 'damaged.pth')
    # A checkpoint without the record (written before it, or by other code) is still read from its weights.
    del checkpoint[NETWORK_KEY]
    torch.save(checkpoint, tmp_path / 'unrecorded.pth')
    assert load_model(tmp_path / 'unrecorded.pth').head == 'image'


def test_a_weight_entry_that_is_not_a_mapping_is_a_clear_error(tmp_path):
    torch.save({'params_ema': [1, 2, 3]}, tmp_path / 'odd.pth')
    with pytest.raises(ValueError, match=r"odd\.pth: its 'params_ema' entry is a list, not a state dict of tensors"):
        load_model(tmp_path / 'odd.pth')
