"""Inference in bounded memory: tiles sized from ``--max_memory`` / ``fuse(max_memory=...)``, each tile's input built
from the compact frames, and outputs written from the one float32 image a strip of rows at a time."""

import math
import re

import cv2
import numpy as np
import pytest
from helpers import with_varied_output
from PIL import Image
from test_inference import EXIF_RATIONALS, TIMES, _options, psnr_mu, radiance, render, save_net, write_jpeg_bracket

from lffnet_arch import tonemap as tonemap_module
from lffnet_arch.archs import LFFNet, forward_bytes_per_pixel
from lffnet_arch.commands.inference import main
from lffnet_arch.commands.inference_args import parse_arguments
from lffnet_arch.deploy import fuse
from lffnet_arch.deploy.budget import (
    MemoryBoundError,
    parse_memory_size,
    plan_strip_rows,
    strip_fixed_bytes,
    strip_working_bytes,
    tile_working_bytes,
)
from lffnet_arch.fileio import image as image_module
from lffnet_arch.fileio.image import read_hdr, write_hdr
from lffnet_arch.strips import column_block_for
from lffnet_arch.tonemap import tonemap

HEIGHT, WIDTH = 96, 128
BPP = forward_bytes_per_pixel('LFFNet', num_feat=8)  # what fuse sizes LFFNet(num_feat=8)'s strips with


@pytest.fixture
def net():
    return with_varied_output(LFFNet(num_feat=8).eval(), 10.0)  # an output that varies, so seams would show


def bracket_u8(seed: int = 0) -> list:
    """A 96 x 128 bracket as 8-bit frames (how lffnet-inference now holds JPEG frames)."""
    return [np.round(f * 255).astype(np.uint8) for f in render(radiance(seed, HEIGHT, WIDTH))]


def fixed_bytes(frames: list) -> int:
    return sum(f.nbytes for f in frames) + 12 * HEIGHT * WIDTH


def strip_fixed(frames: list) -> int:
    return sum(f.nbytes for f in frames) + strip_fixed_bytes(HEIGHT, WIDTH)


def bound_for_rows(rows: int, frames: list, halo: int = 4) -> int:
    """The smallest max_memory whose plan is strips of ``rows`` rows for these frames (LFFNet's halo is 4)."""
    return strip_fixed(frames) + strip_working_bytes(rows, WIDTH, halo, len(frames), BPP)


def bound_for(tile: int, frames: list) -> int:
    """The smallest max_memory whose plan is ``tile`` for these frames (networks without the strip-wise pass)."""
    return fixed_bytes(frames) + tile_working_bytes(tile, HEIGHT, WIDTH, len(frames), BPP)


@pytest.mark.filterwarnings('ignore:ECC alignment')  # the tiny, mostly clipped long frame may not converge
@pytest.mark.parametrize('align', [None, 'ecc'])
def test_bounded_path_is_the_whole_image_result(net, align):
    """A bound that leaves room for strips of 20 rows: 5 strips, each built from the 8-bit frames as it runs (with
    ECC, from the frames' warped bands), and the result is the whole-image result to float precision, although the
    RFFT blocks transform the whole image (a tiled run differs by far more, checked below)."""
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
        max_memory=bound_for_rows(20, frames) + 1000,
        progress=lambda done, total: calls.append(total),
        return_response=True,
    )
    assert info['strip_rows'] == 20 and info['tile'] is None
    left = bound_for_rows(20, frames) + 1000 - strip_fixed(frames)  # what the bound leaves after frames and output
    column_blocks = math.ceil((WIDTH // 2 + 1) / column_block_for(8, HEIGHT, left // 2))
    assert calls[-1] == 5 * (2 + 2 * 3) + 3 * column_blocks  # 5 strips x 8 row passes, the FFTs' column blocks
    if align == 'ecc':
        assert info['alignment'][0]['converged'] and abs(info['alignment'][0]['rotation']) > 0.3  # really warped
    whole = fuse(frames, TIMES, net, response='gamma:2.2', align=align)
    np.testing.assert_allclose(bounded, whole, rtol=1e-4, atol=1e-5)
    tiled = fuse(frames, TIMES, net, response='gamma:2.2', align=align, tile_size=64)
    assert np.abs(tiled - whole).max() > 100 * np.abs(bounded - whole).max()


def test_a_bound_that_fits_the_image_runs_it_whole(net):
    frames = bracket_u8()
    whole = fuse(frames, TIMES, net, response='gamma:2.2')
    _, _, info = fuse(frames, TIMES, net, response='gamma:2.2', max_memory=10**9, return_response=True)
    roomy = fuse(frames, TIMES, net, response='gamma:2.2', max_memory=10**9)
    assert info['strip_rows'] is None and info['tile'] is None
    np.testing.assert_array_equal(roomy, whole)


def test_networks_without_the_strip_wise_pass_take_the_largest_tile():
    """Any other network (an adapter around a registered network) still runs in the largest tiles that fit, close
    to its whole-image result."""
    from lffnet_arch.archs import HDRAdapter

    adapter = HDRAdapter(inner={'type': 'EDSR', 'num_feat': 8, 'num_block': 1, 'upscale': 1}).eval()
    frames = bracket_u8()
    bpp = forward_bytes_per_pixel(None, num_feat=64)
    bound = fixed_bytes(frames) + tile_working_bytes(64, HEIGHT, WIDTH, 3, bpp) + 1000
    tiled, _, info = fuse(frames, TIMES, adapter, response='gamma:2.2', max_memory=bound, return_response=True)
    assert info['tile'] == 64 and info['strip_rows'] is None
    assert psnr_mu(tiled, fuse(frames, TIMES, adapter, response='gamma:2.2')) >= 50


@pytest.mark.parametrize('free', [1, 2**60])
def test_strips_from_the_bound_shrink_with_it_and_ignore_free_memory(monkeypatch, net, free):
    """The strip height follows max_memory alone: the free-memory probe (monkeypatched to 1 byte or an exabyte) is
    never read, and a smaller bound never gives taller strips."""

    def probe(device):
        raise AssertionError('the free memory was read')

    monkeypatch.setattr('lffnet_arch.tiling.available_memory', lambda device: free)
    monkeypatch.setattr('lffnet_arch.tiling.auto_tile_size', probe)
    monkeypatch.setattr('lffnet_arch.deploy.fusion.auto_tile_size', probe)
    frames = bracket_u8()
    bounds = [bound_for_rows(r, frames) for r in (8, 30, 60)] + [10**9]
    plans = [plan_strip_rows(b, HEIGHT, WIDTH, sum(f.nbytes for f in frames), 3, BPP, 4) for b in bounds]
    assert plans == [8, 30, 60, HEIGHT]
    # 45 MP, the shipped model's width: the strips shrink as the bound does, whatever the free memory.
    shipped = forward_bytes_per_pixel('LFFNet', 32)
    big = [plan_strip_rows(b * 10**9, 5504, 8192, 3 * 5504 * 8192 * 3, 3, shipped, 4) for b in (8, 4, 2)]
    assert big[0] > big[1] > big[2] >= 8
    for rows, bound in zip(plans, bounds):
        _, _, info = fuse(frames, TIMES, net, response='gamma:2.2', max_memory=bound, return_response=True)
        assert info['strip_rows'] == (None if rows >= HEIGHT else rows)


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


def test_a_bound_below_the_smallest_strip_names_max_memory_and_the_minimum(tmp_path, monkeypatch, capsys, net):
    frames = bracket_u8()
    with pytest.raises(MemoryBoundError, match=r'max_memory=.* too small .* need at least \d+ MB') as info:
        fuse(frames, TIMES, net, max_memory=100_000)
    assert info.value.minimum == bound_for_rows(8, frames)
    # The command adds what the process holds before reading the bracket (here pretended 0) and names the flag.
    monkeypatch.setattr('lffnet_arch.commands.inference.resident_memory', lambda: 0)
    monkeypatch.setattr('lffnet_arch.commands.inference.output_bytes', lambda height, width: 0)
    write_jpeg_bracket(tmp_path / 'scene')
    checkpoint = save_net(LFFNet(num_feat=8).eval(), tmp_path / 'net.pth')
    argv = ['--input', str(tmp_path / 'scene'), '--output', str(tmp_path / 'out'), '--checkpoint', str(checkpoint)]
    assert main(argv + ['--opt', str(_options(tmp_path)), '--max_memory', '100kB']) == 1
    err = capsys.readouterr().err
    assert '--max_memory 100 kB is too small for this bracket: its frames (28 kB)' in err
    assert re.search(r'smallest strip \(8 rows of \d+ pixels\) need at least', err)
    assert 'besides the 0 kB this process holds before reading it; give at least' in err
    assert not (tmp_path / 'out' / 'scene.hdr').exists()


def write_jpeg_frames(folder, height: int = 96, width: int = 160) -> None:
    folder.mkdir(parents=True)
    for i, (frame, rational) in enumerate(zip(render(radiance(0, height, width)), EXIF_RATIONALS)):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[33434] = rational
        Image.fromarray(np.round(frame * 255).astype(np.uint8)).save(folder / f'IMG_{i}.jpg', quality=95, exif=exif)


def test_cli_reports_the_strips_the_bound_chose(tmp_path, monkeypatch, capsys):
    """A 96 x 160 bracket: 5 MB leave room for strips of a few rows (the process's own memory pretended 0), 2.5 GB
    for the whole image; the bracket's lines say which and why, the outputs are written either way, and the scratch
    folder named by --scratch_dir is empty afterwards."""
    monkeypatch.setattr('lffnet_arch.commands.inference.resident_memory', lambda: 0)
    write_jpeg_frames(tmp_path / 'scene')
    checkpoint = save_net(LFFNet(num_feat=8).eval(), tmp_path / 'net.pth')
    argv = ['--input', str(tmp_path / 'scene'), '--output', str(tmp_path / 'out'), '--checkpoint', str(checkpoint)]
    argv += ['--opt', str(_options(tmp_path))]
    monkeypatch.setattr('lffnet_arch.commands.inference.output_bytes', lambda height, width: 0)
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    assert main(argv + ['--max_memory', '5MB', '--scratch_dir', str(scratch)]) == 0
    out = capsys.readouterr().out
    assert re.search(r'scene: whole-image result in strips of \d+ rows \(the most that --max_memory 5 MB allows\)', out)
    assert list(scratch.iterdir()) == []
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
