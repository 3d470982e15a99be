"""Preview tone mappers, the shared tone mapping of compared images, the error map, the comparison picture and the
inference command's --tonemap."""

import cv2
import numpy as np
import pytest
import torch

from lffnet_arch.hdr_input import mu_law
from lffnet_arch.tonemap import (
    ERROR_MAX,
    TONEMAPPERS,
    comparison_image,
    error_map,
    tonemap,
    tonemap_together,
)


def _hdr(seed: int = 0, shape=(24, 32, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.001, 1.0, shape[1], dtype=np.float32)[None, :, None] ** 3
    return (ramp * (0.5 + rng.random(shape, dtype=np.float32))).astype(np.float32)


@pytest.mark.parametrize('method', TONEMAPPERS)
def test_every_tonemapper_gives_an_8bit_rgb_preview(method):
    hdr = _hdr()
    hdr[0, 0] = [np.nan, np.inf, -1.0]
    out = tonemap(hdr, method)
    assert out.shape == hdr.shape and out.dtype == np.uint8
    assert out.max() > 128  # bright parts are shown bright ...
    # ... and the ramp's dark end darker than its bright end: the operators keep the order of luminance.
    assert out[:, :4].mean() < out[:, -4:].mean()


def test_mulaw_is_the_projects_preview_and_unknown_names_are_refused():
    hdr = _hdr()
    # 'mulaw': the 99.5th percentile maps to 1, then the mu-law curve of the losses and metrics.
    expected = np.round(mu_law((hdr / np.percentile(hdr, 99.5)).clip(0, 1)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(tonemap(hdr, 'mulaw'), expected)
    with pytest.raises(ValueError, match='tonemap must be one of'):
        tonemap(hdr, 'filmic')
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        tonemap(hdr[..., 0], 'mulaw')


@pytest.mark.parametrize('method', TONEMAPPERS)
def test_compared_images_are_tonemapped_alike(method):
    gt = _hdr()
    dark = gt * 0.25
    # Alone, each image is normalised by its own percentile, so a uniformly darker prediction looks like the GT ...
    alone = [tonemap(image, method) for image in (dark, gt)]
    together = tonemap_together([dark, gt], method)
    if method == 'mulaw':
        np.testing.assert_array_equal(alone[0], alone[1])
    # ... together (normalised by the GT, one adaptation), it is shown darker, as it is.
    assert together[0].astype(float).mean() < together[1].astype(float).mean() - 5
    same = tonemap_together([gt, gt], method)
    local = 2 if method == 'mantiuk' else 0  # Mantiuk's local contrast pyramid reaches across the seam a little
    assert np.abs(same[0].astype(int) - same[1]).max() <= local


def test_error_map_has_a_fixed_scale():
    gt = _hdr()
    zero = error_map(gt, gt)
    assert (zero == zero[0, 0]).all()
    big = error_map(np.zeros_like(gt), np.ones_like(gt))
    assert (big == big[0, 0]).all() and not np.array_equal(big[0, 0], zero[0, 0])
    # An error of ERROR_MAX / 2 in mu-law units sits in the middle of the colour scale, whatever the scene.
    x = np.float32(0.5)
    y = np.expm1((mu_law(x) + ERROR_MAX / 2) * np.log1p(5000)) / 5000
    mid = error_map(np.full((4, 4, 3), y, np.float32), np.full((4, 4, 3), x, np.float32))
    expected = cv2.applyColorMap(np.array([[128]], np.uint8), cv2.COLORMAP_INFERNO)[0, 0, ::-1]
    assert np.abs(mid[0, 0].astype(int) - expected.astype(int)).max() <= 6


def test_comparison_picture_layout():
    gt = _hdr(shape=(20, 30, 3))
    ldrs = [np.clip(gt * t, 0, 1) ** (1 / 2.2) for t in (1.0, 4.0, 16.0, 64.0)]
    picture = comparison_image(ldrs, gt * 0.9, gt, 'drago', min_width=64)
    zoom, band = 3, 24  # 30 px wide -> enlarged 3x to reach 64
    assert picture.dtype == np.uint8
    assert picture.shape == (2 * (20 * zoom + band), 4 * 30 * zoom, 3)  # max(T, 3) columns, two rows
    first = np.round(ldrs[0] * 255).astype(np.uint8).repeat(zoom, 0).repeat(zoom, 1)
    np.testing.assert_array_equal(picture[band : band + 20 * zoom, : 30 * zoom], first)  # inputs as captured
    assert not picture[-20 * zoom :, -30 * zoom :].any()  # the unused fourth bottom panel is blank
    with pytest.raises(ValueError, match='shape'):
        comparison_image(ldrs, gt[:10], gt)


def test_inference_command_tonemap_choice(tmp_path):
    from lffnet_arch.archs import LFFNet
    from lffnet_arch.commands.inference import main

    bracket = tmp_path / 'bracket'
    bracket.mkdir()
    radiance = _hdr(shape=(24, 32, 3))
    for i, ev in enumerate((0, 2, 4)):
        frame = np.clip(radiance * 2**ev, 0, 1) ** (1 / 2.2)
        cv2.imwrite(str(bracket / f'{i}.tif'), np.round(frame[..., ::-1] * 65535).astype(np.uint16))
    (bracket / 'exposure.txt').write_text('0\n2\n4\n')
    torch.save({'params': LFFNet(num_feat=8, num_block=1).state_dict()}, tmp_path / 'net.pth')
    previews = {}
    for method in ('mulaw', 'drago'):
        out = tmp_path / method
        assert main(['--input', str(bracket), '--output', str(out), '--checkpoint', str(tmp_path / 'net.pth'),
                     '--tonemap', method]) == 0  # fmt: skip
        previews[method] = cv2.imread(str(out / 'bracket.png'))
    assert previews['mulaw'].shape == previews['drago'].shape == (24, 32, 3)
    assert not np.array_equal(previews['mulaw'], previews['drago'])
    with pytest.raises(SystemExit):
        main(['--input', str(bracket), '--output', str(tmp_path / 'x'), '--checkpoint', 'n.pth', '--tonemap', 'x'])


def test_drago_previews_print_no_opencv_warning():
    # OpenCV warns once per process, so a fresh process: an earlier Drago call in this one would hide the warning.
    import subprocess
    import sys

    code = (
        'import numpy as np, cv2.utils.logging as log\n'
        'from lffnet_arch.tonemap import tonemap\n'
        'level = log.getLogLevel()\n'
        'image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)\n'
        "assert tonemap(image, 'drago').shape == (16, 16, 3)\n"
        'assert log.getLogLevel() == level\n'
    )
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'MatExpr' not in run.stderr  # what OpenCV's Drago prints about itself at its default log level


def test_the_srgb_table_is_at_most_one_code_from_the_formula():
    from lffnet_arch.response.families import srgb_encode
    from lffnet_arch.tonemap import FUSION_STOPS, _virtual_exposures

    linear = np.linspace(0.0, 1.0, 1_000_003, dtype=np.float32).reshape(1, -1, 1).repeat(3, axis=2)
    exposures = _virtual_exposures(linear * 2.0 ** -FUSION_STOPS[-1])  # the brightest stop spans all of [0, 1]
    formula = np.round(srgb_encode(linear.astype(np.float64)) * 255)
    difference = np.abs(exposures[-1].astype(np.int64) - formula)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
