"""Tiled inference: tile layout, blending windows, tiled vs whole-image forward passes, tile size from memory."""

import math

import numpy as np
import pytest
import torch
from helpers import PixelwiseNet, with_varied_output

from lffnet_arch.archs import MEASURED_ARCHS, AHDRNet, LFFNet, forward_bytes_per_pixel
from lffnet_arch.hdr_input import mu_law
from lffnet_arch.tiling import (
    auto_tile_size,
    available_memory,
    blend_window,
    tile_positions,
    tiled_forward,
)


def psnr_mu(img: torch.Tensor, ref: torch.Tensor) -> float:
    mse = torch.mean((mu_law(img.clamp(0, 1)) - mu_law(ref.clamp(0, 1))) ** 2).item()
    return 10 * math.log10(1 / mse)


def smooth_lq(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """(1, 3, 6, H, W) input with image-like low-frequency content."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3 * 6, height // 8 + 2, width // 8 + 2, generator=gen)
    fine = torch.nn.functional.interpolate(coarse, size=(height, width), mode='bilinear', align_corners=False)
    return fine.reshape(1, 3, 6, height, width)


@pytest.mark.parametrize('size, tile, overlap', [(100, 32, 8), (64, 32, 0), (33, 32, 16), (20, 32, 8), (32, 32, 4)])
def test_tile_positions_cover_with_full_tiles(size, tile, overlap):
    starts = tile_positions(size, tile, overlap)
    length = min(tile, size)
    covered = np.zeros(size, bool)
    for start in starts:
        assert 0 <= start and start + length <= size  # every tile inside the image, full size when possible
        covered[start : start + length] = True
    assert covered.all()
    assert starts[-1] + length == size
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # consecutive overlap >= tile_overlap
    if size <= tile:
        assert starts == [0]


@pytest.mark.parametrize('tile, overlap', [(32, 32), (32, -1), (0, 0), (16, 40)])
def test_invalid_tiling_raises(tile, overlap):
    with pytest.raises(ValueError, match='tile'):
        tile_positions(100, tile, overlap)


def test_blend_window_is_positive_and_smooth():
    window = blend_window(40, 12, rise=True, fall=True)
    assert window.shape == (40,)
    assert (window > 0).all() and (window <= 1).all()
    assert torch.equal(window[12:28], torch.ones(16))
    assert torch.allclose(window, window.flip(0))
    assert (window[:12].diff() > 0).all()  # monotone ramp up
    assert window[0] < 0.05  # tile edges carry almost no weight
    edges_free = blend_window(40, 12, rise=False, fall=False)
    assert torch.equal(edges_free, torch.ones(40))  # image borders keep full weight


@pytest.mark.parametrize('height, width', [(45, 61), (32, 96), (70, 20)])
def test_tiled_pixelwise_net_equals_whole(height, width):
    """Blending weights form a partition of unity on sizes that are not multiples of the tile."""
    net = PixelwiseNet().eval()
    lq = torch.rand(2, 3, 6, height, width)
    with torch.no_grad():
        whole = net(lq)
    tiled = tiled_forward(net, lq, tile_size=24, tile_overlap=8)
    assert tiled.shape == (2, 3, height, width)
    assert torch.allclose(tiled, whole, atol=1e-6)


@pytest.mark.parametrize('arch', [LFFNet, AHDRNet])
def test_tile_covering_image_is_exact(arch):
    net = arch(num_feat=8).eval()
    lq = smooth_lq(30, 44)
    with torch.no_grad():
        whole = net(lq)
    assert torch.equal(tiled_forward(net, lq, tile_size=44, tile_overlap=16), whole)
    assert torch.equal(tiled_forward(net, lq, tile_size=64), whole)


def flat_window(length: int, ramp: int, rise: bool, fall: bool, device=None) -> torch.Tensor:
    """A blending bug: plain averaging, so the pixels next to a tile edge count fully (seams)."""
    return torch.ones(length, device=device)


def swapped_window(length: int, ramp: int, rise: bool, fall: bool, device=None) -> torch.Tensor:
    """A blending bug: ramps on the wrong sides (rise and fall swapped)."""
    return blend_window(length, ramp, fall, rise, device)


def short_ramp_window(length: int, ramp: int, rise: bool, fall: bool, device=None) -> torch.Tensor:
    """A blending bug: the ramp covers a quarter of the overlap only."""
    return blend_window(length, max(1, ramp // 4), rise, fall, device)


# Tiled vs whole-image PSNR-mu bounds, tile 32, overlap 16, 48 x 64 input. The nets' outputs vary (LFFNet with
# conv_last x10: std 0.14; AHDRNet at init: std 0.33). Measured with the correct raised-cosine blend: LFFNet 64.3 dB,
# AHDRNet 33.5 dB (AHDRNet's receptive field, radius about 43 px, is wider than the tile). Measured with blending
# bugs (flat / swapped / quarter-length ramps): LFFNet 43.0 / 44.2 / 54.0 dB, AHDRNet 23.9 / 25.2 / 27.5 dB. The
# bounds sit between the two, and test_tiling_bound_catches_blending_bugs checks that they catch these bugs.
TILED_BOUNDS = {'LFFNet': (LFFNet, 10.0, 58.0), 'AHDRNet': (AHDRNet, 1.0, 30.0)}


def _tiled_vs_whole(arch_name: str) -> float:
    arch, gain, _ = TILED_BOUNDS[arch_name]
    net = with_varied_output(arch(num_feat=8).eval(), gain)
    lq = smooth_lq(48, 64)
    with torch.no_grad():
        whole = net(lq)
    assert whole.std() > 0.1  # a varied output, so seams would show
    tiled = tiled_forward(net, lq, tile_size=32, tile_overlap=16)
    assert tiled.shape == whole.shape and torch.isfinite(tiled).all()
    assert not torch.equal(tiled, whole)  # tiling really happened
    return psnr_mu(tiled, whole)


@pytest.mark.parametrize('arch_name', list(TILED_BOUNDS))
def test_tiled_close_to_whole(arch_name):
    """Stated tolerance: PSNR-mu of tiled vs whole >= 58 dB (LFFNet) / 30 dB (AHDRNet); see TILED_BOUNDS."""
    assert _tiled_vs_whole(arch_name) >= TILED_BOUNDS[arch_name][2]


@pytest.mark.parametrize('broken', [flat_window, swapped_window, short_ramp_window])
@pytest.mark.parametrize('arch_name', list(TILED_BOUNDS))
def test_tiling_bound_catches_blending_bugs(monkeypatch, arch_name, broken):
    """The bounds of test_tiled_close_to_whole are tight enough: each blending bug falls below them."""
    monkeypatch.setattr('lffnet_arch.tiling.blend_window', broken)
    assert _tiled_vs_whole(arch_name) < TILED_BOUNDS[arch_name][2]


def test_tiled_odd_sizes_real_net():
    net = LFFNet(num_feat=8, num_block=1).eval()
    lq = smooth_lq(37, 53)
    out = tiled_forward(net, lq, tile_size=16, tile_overlap=5)
    assert out.shape == (1, 3, 37, 53)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_progress_callable_and_tqdm_like():
    net = PixelwiseNet().eval()
    lq = torch.rand(1, 3, 6, 50, 70)
    expected = len(tile_positions(50, 32, 8)) * len(tile_positions(70, 32, 8))
    calls = []
    tiled_forward(net, lq, 32, 8, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, expected) for i in range(1, expected + 1)]

    class Bar:
        total = None
        n = 0

        def update(self, k):
            self.n += k

    bar = Bar()
    tiled_forward(net, lq, 32, 8, progress=bar)
    assert bar.total == expected and bar.n == expected


def test_available_memory_reads_meminfo():
    free = available_memory('cpu')
    if free is None:
        pytest.skip('no /proc/meminfo on this system')
    with open('/proc/meminfo', encoding='ascii') as file:
        total = next(int(line.split()[1]) * 1024 for line in file if line.startswith('MemTotal:'))
    assert 0 < free <= total


@pytest.mark.parametrize('free', [10 * 2**30, 3 * 2**30, 2**20])
def test_auto_tile_size_fits_budget(monkeypatch, free):
    monkeypatch.setattr('lffnet_arch.tiling.available_memory', lambda device: free)
    bpp = forward_bytes_per_pixel('LFFNet')
    tile = auto_tile_size(bpp, 'cpu', memory_fraction=0.5, max_tile=100000)
    assert tile % 32 == 0
    # The largest multiple of 32 whose estimate fits half the memory (or min_tile=64 when none does).
    assert tile == 64 or tile**2 * bpp <= 0.5 * free
    assert 0.5 * free < (tile + 32) ** 2 * bpp
    # More channels or more bytes per pixel never give a larger tile; max_tile caps it.
    assert auto_tile_size(forward_bytes_per_pixel('LFFNet', num_feat=128), 'cpu', max_tile=100000) <= tile
    assert auto_tile_size(4 * bpp, 'cpu', max_tile=100000) <= tile
    assert auto_tile_size(bpp, 'cpu', max_tile=128) <= 128


def test_forward_bytes_per_pixel_beside_the_networks():
    assert forward_bytes_per_pixel('LFFNet') == LFFNet.FORWARD_BYTES_PER_PIXEL == 5200
    assert forward_bytes_per_pixel('AHDRNet', num_feat=32, num_exposure=6) == 5600 * 32 / 64 * 2
    # An architecture without a measurement gets the largest one, scaled by its channels like the others.
    largest = max(cls.FORWARD_BYTES_PER_PIXEL for cls in MEASURED_ARCHS.values())
    for feat in (32, 128):
        assert forward_bytes_per_pixel(None, feat) == largest * feat / 64
    with pytest.raises(ValueError, match='arch'):
        forward_bytes_per_pixel('UNet')


def test_auto_tile_size_without_memory_info(monkeypatch):
    monkeypatch.setattr('lffnet_arch.tiling.available_memory', lambda device: None)
    assert auto_tile_size(5200, 'cpu', default=384) == 384
    with pytest.raises(ValueError, match='bytes_per_pixel'):
        auto_tile_size(0, 'cpu')
