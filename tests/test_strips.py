"""The exact strip-wise pass (lffnet_arch.strips): the whole-image forward pass, a strip of rows at a time, for every
kind of network it runs, with its scratch files removed whatever happens."""

import os

import numpy as np
import pytest
import torch

from lffnet_arch import strips as strips_module
from lffnet_arch.archs import AHDRNet, LFFNet, fold_doconv
from lffnet_arch.strips import ScratchSpaceError, conv_radius, scratch_bytes, strip_forward, strip_plan

HEIGHT, WIDTH = 61, 83  # odd sizes: the half spectrum's last column and the last strip are partial


def varied(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights large enough that every stage matters (the default initialisation leaves the FFT branch tiny)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return net.eval()


NETS = {
    'lffnet': lambda: LFFNet(num_feat=8),
    'lffnet_folded': lambda: fold_doconv(LFFNet(num_feat=8, doconv='rfft')),
    'lffnet_ref_skip': lambda: LFFNet(num_feat=8, ref_skip=True, num_block=2),
    'lffnet_merge': lambda: LFFNet(num_feat=8, head='merge'),
    'ahdrnet': lambda: AHDRNet(num_feat=8, num_block=2),
}


def run(net, lq, rows, block=16, **kwargs):
    return strip_forward(
        net,
        lambda top, left, h, w: lq[..., top : top + h, left : left + w],
        HEIGHT,
        WIDTH,
        rows,
        column_block=block,
        **kwargs,
    )


@pytest.mark.parametrize('name', sorted(NETS))
@pytest.mark.parametrize('rows, block', [(7, 8), (16, 24), (HEIGHT, 64)])
def test_strips_give_the_whole_image_result(name, rows, block):
    """Stated tolerance: a max. abs. difference of 1e-4 on outputs in [0, 1] with these large weights (measured up
    to about 1e-5; the whole pass itself differs from float64 by about 1e-3 with them): float rounding only."""
    torch.manual_seed(1)
    net = varied(NETS[name]())
    lq = torch.rand(1, 3, 6, HEIGHT, WIDTH)
    with torch.no_grad():
        whole = net(lq)[0].permute(1, 2, 0).numpy()
    result = run(net, lq, rows, block)
    assert result.shape == (HEIGHT, WIDTH, 3) and result.std() > 0.05
    assert np.abs(result - whole).max() <= 1e-4


def test_plan_of_each_network():
    assert strip_plan(LFFNet(num_feat=8)) == {'mode': 'staged', 'halo': 4, 'maps': 5, 'channels': 8}
    assert strip_plan(LFFNet(num_feat=8, num_block=1))['maps'] == 4  # the merged features while the block runs
    # AHDRNet is local: conv_first 1, two attention convs 2, merge 1, 2 blocks of 6 dilated convs 24, the rest 3.
    assert strip_plan(AHDRNet(num_feat=8, num_block=2)) == {'mode': 'local', 'halo': 31, 'maps': 0, 'channels': 8}
    assert conv_radius(torch.nn.Conv2d(1, 1, 5, dilation=3)) == 6
    assert scratch_bytes(LFFNet(num_feat=8), 100, 200) >= 5 * 8 * 100 * 200 * 4


def test_a_halo_too_small_changes_the_result(monkeypatch):
    """The halo is what makes the strips exact: without it the strips' zero padding shows."""
    net = varied(LFFNet(num_feat=8))
    lq = torch.rand(1, 3, 6, HEIGHT, WIDTH)
    exact = run(net, lq, 10)
    monkeypatch.setattr(strips_module, 'conv_radius', lambda module: 0)
    assert np.abs(run(net, lq, 10) - exact).max() > 1e-3


def test_scratch_files_are_removed_after_success_and_failure(tmp_path):
    net = varied(LFFNet(num_feat=8))
    lq = torch.rand(1, 3, 6, HEIGHT, WIDTH)
    run(net, lq, 10, scratch_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []
    calls = []

    def failing(top, left, height, width):
        calls.append(top)
        if len(calls) > 3:
            raise RuntimeError('the frames went away')
        return lq[..., top : top + height, left : left + width]

    with pytest.raises(RuntimeError, match='the frames went away'):
        strip_forward(net, failing, HEIGHT, WIDTH, 10, scratch_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_failed_write_behind_raises_and_the_scratch_is_removed(tmp_path, monkeypatch):
    net = varied(LFFNet(num_feat=8))
    lq = torch.rand(1, 3, 6, HEIGHT, WIDTH)
    written = []

    def full_disk(fd, array, offset):
        written.append(offset)
        if len(written) > 40:  # the disk fills up in the middle of the run
            raise OSError(28, 'No space left on device')
        os.pwrite(fd, array.tobytes(), offset)

    monkeypatch.setattr(strips_module, '_pwrite_all', full_disk)
    with pytest.raises(OSError, match='No space left on device'):
        run(net, lq, 10, scratch_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_read_ahead_never_returns_rows_written_after_it(tmp_path):
    scratch = strips_module._MapFile(str(tmp_path), 'map', 2, 8, 5, torch.float32)
    try:
        scratch.write(0, torch.zeros(2, 8, 5))
        scratch.read_ahead(2, 6)
        scratch.read_ahead(6, 8)
        scratch.write(4, torch.ones(2, 2, 5))  # overlaps rows 2:6, not 6:8
        assert scratch.read(2, 6)[:, 2:].eq(1).all() and scratch.read(2, 6)[:, :2].eq(0).all()
        assert scratch.read(6, 8).eq(0).all()
    finally:
        scratch.close()
    assert os.listdir(tmp_path) == []


def test_too_little_scratch_space_is_refused_naming_the_folder(tmp_path, monkeypatch):
    net = varied(LFFNet(num_feat=8))
    lq = torch.rand(1, 3, 6, HEIGHT, WIDTH)
    monkeypatch.setattr(strips_module.shutil, 'disk_usage', lambda path: type('Usage', (), {'free': 1000})())
    with pytest.raises(ScratchSpaceError, match=rf'scratch folder {tmp_path} has 0.0 GB free.*--scratch_dir'):
        run(net, lq, 10, scratch_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_strip_rows_must_be_positive():
    with pytest.raises(ValueError, match='strip_rows must be a positive integer'):
        strip_forward(LFFNet(num_feat=8), None, HEIGHT, WIDTH, 0)
    with pytest.raises(TypeError, match='needs an LFFNet or AHDRNet'):
        strip_forward(torch.nn.Conv2d(3, 3, 1), None, HEIGHT, WIDTH, 4)


def test_bf16_storage_under_bf16_autocast_is_as_close_to_fp32_as_the_whole_bf16_pass(tmp_path):
    """In bf16 the maps are kept in bf16, as the whole pass's convolutions give them. Stated tolerances: the strips'
    mean abs. difference from fp32 is at most 1.2 times the whole bf16 pass's (measured 0.99 times), and no output
    is more than 0.02 from the whole bf16 pass (measured 0.004; bf16 keeps 8 bits of mantissa)."""
    net = LFFNet(num_feat=8)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    net.eval()
    lq = torch.rand(1, 3, 6, HEIGHT, WIDTH)
    with torch.no_grad():
        fp32 = net(lq)[0].permute(1, 2, 0).numpy()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            whole = net(lq)[0].float().permute(1, 2, 0).numpy()
            result = run(net, lq, 10, storage=torch.bfloat16, scratch_dir=str(tmp_path))
    assert np.abs(result - fp32).mean() <= 1.2 * np.abs(whole - fp32).mean()
    assert np.abs(result - whole).max() < 0.02
    with pytest.raises(ValueError, match='storage must be'):
        run(net, lq, 10, storage=torch.float16)


def test_scratch_of_killed_runs_is_removed_and_named(tmp_path):
    dead = tmp_path / 'lffnet-strips-999999999-abc123'  # no such process
    dead.mkdir()
    (dead / 'block0').write_bytes(b'0' * 100)
    mine = tmp_path / f'lffnet-strips-{os.getpid()}-xyz'  # a running process's: kept
    mine.mkdir()
    net = varied(LFFNet(num_feat=8))
    with pytest.warns(UserWarning, match='lffnet-strips-999999999-abc123, scratch files left by an interrupted run'):
        run(net, torch.rand(1, 3, 6, HEIGHT, WIDTH), 10, scratch_dir=str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [mine.name]
