"""Inference in bounded memory: tiles sized from ``--max_memory`` / ``fuse(max_memory=...)``, each tile's input built
from the compact frames, and outputs written from the one float32 image a strip of rows at a time."""

import math

import cv2
import numpy as np
import pytest
import torch
from helpers import with_varied_output
from PIL import Image
from test_inference import EXIF_RATIONALS, TIMES, _options, psnr_mu, radiance, render, save_net, write_jpeg_bracket

from lffnet_arch import tonemap as tonemap_module
from lffnet_arch.archs import LFFNet, forward_bytes_per_pixel
from lffnet_arch.commands.inference import main
from lffnet_arch.commands.inference_args import parse_arguments
from lffnet_arch.deploy import align_frames, fuse
from lffnet_arch.deploy.budget import MemoryBoundError, parse_memory_size, plan_tile, tile_working_bytes
from lffnet_arch.fileio import image as image_module
from lffnet_arch.fileio.image import read_hdr, write_hdr
from lffnet_arch.hdr_input import network_input
from lffnet_arch.response import Response
from lffnet_arch.tiling import tiled_forward
from lffnet_arch.tonemap import tonemap

HEIGHT, WIDTH = 96, 128
BPP = forward_bytes_per_pixel('LFFNet', num_feat=8)  # what fuse sizes LFFNet(num_feat=8)'s tiles with


@pytest.fixture
def net():
    return with_varied_output(LFFNet(num_feat=8).eval(), 10.0)  # an output that varies, so seams would show


def bracket_u8(seed: int = 0) -> list:
    """A 96 x 128 bracket as 8-bit frames (how lffnet-inference now holds JPEG frames)."""
    return [np.round(f * 255).astype(np.uint8) for f in render(radiance(seed, HEIGHT, WIDTH))]


def bound_for(tile: int, frames: list, overlap: int = 32) -> int:
    """The smallest max_memory whose plan is ``tile`` for these frames."""
    fixed = sum(f.nbytes for f in frames) + 12 * HEIGHT * WIDTH
    return fixed + tile_working_bytes(tile, HEIGHT, WIDTH, len(frames), BPP)


def todays_tiled_path(net, frames, tile, overlap=32, align=None) -> np.ndarray:
    """The tiled fusion as it was: float frames, aligned whole, the full network input, tiled_forward."""
    floats, times = [f.astype(np.float32) / 255.0 for f in frames], np.asarray(TIMES) / min(TIMES)
    if align is not None:
        floats = align_frames(floats, times, 1, align)
    lq = network_input(floats, times, response=Response.gamma(2.2))
    with torch.no_grad():
        return tiled_forward(net, lq, tile, overlap)[0].permute(1, 2, 0).numpy()


@pytest.mark.filterwarnings('ignore:ECC alignment')  # the tiny, mostly clipped long frame may not converge
@pytest.mark.parametrize('align', [None, 'ecc'])
def test_bounded_path_equals_todays_tiled_path(net, align):
    """A bound that leaves room for 64-pixel tiles only: 2 x 3 tiles, each built from the 8-bit frames as it runs,
    equal to the tiled path of the previous code (full float input, tiled_forward) to float precision; with ECC the
    frames' bands are warped as the whole frames were."""
    frames = bracket_u8(seed=1)
    if align == 'ecc':  # a shifted, slightly rotated short frame for ECC to undo
        rotation = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), 0.4, 1.0)
        rotation[:, 2] += (1.5, -1.0)
        frames[0] = cv2.warpAffine(frames[0], rotation, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REPLICATE)
    calls = []
    bounded, _, info = fuse(
        frames,
        TIMES,
        net,
        response='gamma:2.2',
        align=align,
        max_memory=bound_for(64, frames) + 1000,
        progress=lambda done, total: calls.append(total),
        return_response=True,
    )
    assert info['tile'] == 64 and calls[-1] == 6  # 2 rows x 3 columns of 64-pixel tiles
    if align == 'ecc':
        assert info['alignment'][0]['converged'] and abs(info['alignment'][0]['rotation']) > 0.3  # really warped
    expected = todays_tiled_path(net, frames, 64, align=align)
    np.testing.assert_allclose(bounded, expected, rtol=1e-5, atol=1e-6)


def test_bounded_path_close_to_the_whole_image(net):
    """Stated tolerance: PSNR-mu of the bounded path (64-pixel tiles, overlap 32) against the whole image >= 58 dB
    on this small net, whose output varies (std 0.22; measured 64.1 dB, the bound of test_tiling.py's tiled LFFNet);
    a bound that fits the whole image gives exactly the whole image."""
    frames = bracket_u8()
    whole = fuse(frames, TIMES, net, response='gamma:2.2')
    bounded = fuse(frames, TIMES, net, response='gamma:2.2', max_memory=bound_for(64, frames) + 1000)
    assert not np.array_equal(bounded, whole)
    assert psnr_mu(bounded, whole) >= 58
    roomy = fuse(frames, TIMES, net, response='gamma:2.2', max_memory=10**9)
    np.testing.assert_array_equal(roomy, whole)


@pytest.mark.parametrize('free', [1, 2**60])
def test_tile_from_the_bound_shrinks_with_it_and_ignores_free_memory(monkeypatch, net, free):
    """The tile follows max_memory alone: the free-memory probe (monkeypatched to 1 byte or an exabyte) is never
    read, and a smaller bound never gives a larger tile."""

    def probe(device):
        raise AssertionError('the free memory was read')

    monkeypatch.setattr('lffnet_arch.tiling.available_memory', lambda device: free)
    monkeypatch.setattr('lffnet_arch.tiling.auto_tile_size', probe)
    monkeypatch.setattr('lffnet_arch.deploy.fusion.auto_tile_size', probe)
    frames = bracket_u8()
    bounds = [bound_for(t, frames) for t in (64, 96, 128)] + [10**9]
    tiles = [plan_tile(b, HEIGHT, WIDTH, sum(f.nbytes for f in frames), 3, BPP) for b in bounds]
    assert tiles == [64, 96, 128, 128]
    assert tiles == sorted(tiles)
    # 45 MP, the shipped model's width: the tile shrinks as the bound does, whatever the free memory.
    shipped = forward_bytes_per_pixel('LFFNet', 32)
    big = [plan_tile(b * 10**9, 5504, 8192, 3 * 5504 * 8192 * 3, 3, shipped) for b in (8, 4, 2)]
    assert big[0] > big[1] > big[2] >= 64
    for tile, bound in zip(tiles, bounds):
        _, _, info = fuse(frames, TIMES, net, response='gamma:2.2', max_memory=bound, return_response=True)
        assert info['tile'] == (None if tile >= WIDTH else tile)


@pytest.mark.parametrize('value', ['0', 'abc', '0.5', '2.5XB'])
def test_max_memory_refused_when_parsed_naming_the_flag(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(['--input', str(tmp_path), '--output', str(tmp_path / 'out'), '--max_memory', value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'argument --max_memory' in err and 'memory size' in err and repr(value) in err


def test_memory_sizes_parse():
    assert parse_memory_size('2.5GB') == 2_500_000_000
    assert parse_memory_size('2500MB') == 2_500_000_000
    assert parse_memory_size('3GiB') == 3 * 2**30
    assert parse_memory_size('800m') == 800_000_000
    assert parse_memory_size('123456') == 123456


def test_a_bound_below_the_smallest_tile_names_max_memory_and_the_minimum(tmp_path, monkeypatch, capsys, net):
    frames = bracket_u8()
    with pytest.raises(MemoryBoundError, match=r'max_memory=.* too small .* need at least \d+ MB') as info:
        fuse(frames, TIMES, net, max_memory=100_000)
    assert info.value.minimum == bound_for(64, frames)
    # The command adds what the process holds before reading the bracket (here pretended 0) and names the flag.
    monkeypatch.setattr('lffnet_arch.commands.inference.resident_memory', lambda: 0)
    monkeypatch.setattr('lffnet_arch.commands.inference.output_bytes', lambda height, width: 0)
    write_jpeg_bracket(tmp_path / 'scene')
    checkpoint = save_net(LFFNet(num_feat=8).eval(), tmp_path / 'net.pth')
    argv = ['--input', str(tmp_path / 'scene'), '--output', str(tmp_path / 'out'), '--checkpoint', str(checkpoint)]
    assert main(argv + ['--opt', str(_options(tmp_path)), '--max_memory', '100kB']) == 1
    err = capsys.readouterr().err
    assert '--max_memory 100 kB is too small for this bracket: its frames (28 kB)' in err
    assert 'need at least 3 MB, besides the 0 kB this process holds before reading it; give at least' in err
    assert not (tmp_path / 'out' / 'scene.hdr').exists()


def write_jpeg_frames(folder, height: int = 96, width: int = 160) -> None:
    folder.mkdir(parents=True)
    for i, (frame, rational) in enumerate(zip(render(radiance(0, height, width)), EXIF_RATIONALS)):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[33434] = rational
        Image.fromarray(np.round(frame * 255).astype(np.uint8)).save(folder / f'IMG_{i}.jpg', quality=95, exif=exif)


def test_cli_reports_the_tile_the_bound_chose(tmp_path, monkeypatch, capsys):
    """A 96 x 160 bracket: 5 MB leave room for 64-pixel tiles (the process's own memory pretended 0), 2.5 GB for
    the whole image; the bracket's lines say which and why, and the outputs are written either way."""
    monkeypatch.setattr('lffnet_arch.commands.inference.resident_memory', lambda: 0)
    write_jpeg_frames(tmp_path / 'scene')
    checkpoint = save_net(LFFNet(num_feat=8).eval(), tmp_path / 'net.pth')
    argv = ['--input', str(tmp_path / 'scene'), '--output', str(tmp_path / 'out'), '--checkpoint', str(checkpoint)]
    argv += ['--opt', str(_options(tmp_path))]
    monkeypatch.setattr('lffnet_arch.commands.inference.output_bytes', lambda height, width: 0)
    assert main(argv + ['--max_memory', '5MB']) == 0
    out = capsys.readouterr().out
    assert 'scene: tiles of 64 x 64 px, overlap 32 px (the largest that --max_memory 5 MB allows)' in out
    assert (tmp_path / 'out' / 'scene.exr').is_file() and (tmp_path / 'out' / 'scene.png').is_file()
    assert main(argv + ['--overwrite']) == 0
    assert 'scene: whole image at once (it fits in --max_memory 2.50 GB)' in capsys.readouterr().out
    assert main(argv + ['--overwrite', '--tile', 'none']) == 0
    assert 'scene: whole image at once (--tile none, not bounded)' in capsys.readouterr().out


# ---------------------------------------------------------------- outputs from the one float32 image


def hdr_image(height: int = 150, width: int = 210, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((height // 16 + 2, width // 16 + 2, 3)).astype(np.float32), (width, height))
    hdr = np.exp((base + 0.2 * rng.random((height, width, 3), dtype=np.float32)) * 8 - 6).astype(np.float32)
    hdr[3, 5] = np.nan
    hdr[7, 9, 1] = -2.0
    hdr[11, 13, 2] = np.inf
    return hdr


def psnr_8bit(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@pytest.mark.parametrize('strip_pixels', [1 << 21, 20 * 210])
def test_strip_wise_fusion_preview_equals_opencvs(monkeypatch, strip_pixels):
    """The default preview (fusion) in strips of rows equals OpenCV's MergeMertens on the whole image (the previous
    code) to float precision: at most 1 of 255 on a rounding tie, PSNR above 60 dB (measured: identical or one value
    off); the percentile equals np.percentile's."""
    monkeypatch.setattr(tonemap_module, 'STRIP_PIXELS', strip_pixels)  # 20 rows: many strips, halos everywhere
    hdr = hdr_image()
    cleaned = np.nan_to_num(hdr, nan=0.0, posinf=0.0).clip(0, None)
    scale = float(np.percentile(cleaned, 99.5))
    assert tonemap_module._percentile(hdr, 99.5) == scale
    before = np.round(tonemap_module._virtual_exposure_fusion(cleaned / scale) * 255).astype(np.uint8)
    after = tonemap(hdr, 'fusion')
    assert np.abs(after.astype(int) - before).max() <= 1
    assert psnr_8bit(after, before) > 60
    np.testing.assert_array_equal(
        tonemap(hdr, 'mulaw'),
        np.round(np.clip(np.log1p(5000 * np.clip(cleaned / scale, 0, 1)) / np.log1p(5000), 0, 1) * 255).astype(
            np.uint8
        ),
    )


def test_hdr_written_in_strips_is_the_file_written_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(image_module, 'STRIP_PIXELS', 7 * 210)  # 7 rows a strip
    hdr = np.nan_to_num(hdr_image(), nan=0.0, posinf=0.0)
    write_hdr(tmp_path / 'strips.hdr', hdr)
    ok, whole = cv2.imencode('.hdr', np.ascontiguousarray(hdr[..., ::-1]))
    assert ok and (tmp_path / 'strips.hdr').read_bytes() == whole.tobytes()
    write_hdr(tmp_path / 'strips.exr', hdr)
    np.testing.assert_array_equal(read_hdr(tmp_path / 'strips.exr'), np.maximum(hdr, 0))  # EXR reads clip at 0
    with pytest.raises(ValueError, match='4 NaN/Inf values'):  # a NaN pixel (3 values) and an Inf
        write_hdr(tmp_path / 'bad.hdr', hdr_image())
