"""OpenEXR through the OpenEXR bindings: RGB round trip, Y/RY/BY, luminance-only, multi-view, chromaticities."""

from types import SimpleNamespace

import numpy as np
import OpenEXR
import pytest

from lffnet_arch.fileio import exr as exr_io
from lffnet_arch.fileio import image
from tests.real_data import REAL_HDR_ROOT

AP0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
# ACES2065-1 (AP0, ACES white) -> linear Rec.709 (D65) with a Bradford adaptation, as published with the ACES
# reference transforms; an independent check of the XYZ route.
AP0_TO_REC709 = np.array([[2.52169, -1.13413, -0.38756], [-0.27648, 1.37272, -0.09624], [-0.01538, -0.15298, 1.16835]])


def _write(path, channels, **header):
    header = {'compression': OpenEXR.ZIP_COMPRESSION, 'type': OpenEXR.scanlineimage, **header}
    with OpenEXR.File(header, channels) as exr:
        exr.write(str(path))


def test_rgb_round_trip_through_write_hdr_is_exact(tmp_path):
    rgb = np.random.default_rng(0).uniform(0, 50, (5, 7, 3)).astype(np.float32)
    rgb[0, 0] = (3.0, 0.0, 0.0)  # a channel swap would show
    image.write_hdr(tmp_path / 'x.exr', rgb)
    np.testing.assert_array_equal(image.read_hdr(tmp_path / 'x.exr'), rgb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['x.exr']


def test_luminance_chroma_is_converted_with_rec709_weights(tmp_path):
    rgb = np.random.default_rng(1).uniform(0.05, 4, (4, 6, 3)).astype(np.float32)
    y = rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    channels = {'Y': y, 'RY': rgb[..., 0] / y - 1, 'BY': rgb[..., 2] / y - 1}
    _write(tmp_path / 'yc.exr', channels)
    back, info = exr_io.read_exr(tmp_path / 'yc.exr', return_info=True)
    assert info.layout == 'luminance_chroma'
    np.testing.assert_allclose(back, rgb, rtol=2e-3)


def test_subsampled_chroma_is_upsampled_to_the_luminance_grid():
    channel = SimpleNamespace(pixels=np.array([[1.0, 3.0]], np.float32))
    up = exr_io._full_resolution(channel, (2, 4))
    assert up.shape == (2, 4) and up.min() >= 1 and up.max() <= 3 and up[0, 0] < up[0, 3]


def test_luminance_only_is_gray(tmp_path):
    y = np.arange(12, dtype=np.float32).reshape(3, 4)
    _write(tmp_path / 'y.exr', {'Y': y})
    back, info = exr_io.read_exr(tmp_path / 'y.exr', return_info=True)
    assert info.layout == 'luminance'
    np.testing.assert_array_equal(back, np.repeat(y[..., None], 3, axis=2))


def test_multiview_reads_the_default_view(tmp_path):
    ones, zeros = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)
    channels = {'R': ones, 'G': 2 * ones, 'B': 3 * ones, 'right.R': zeros, 'right.G': zeros, 'right.B': zeros}
    _write(tmp_path / 'mv.exr', channels, multiView=['left', 'right'])
    back = exr_io.read_exr(tmp_path / 'mv.exr')
    np.testing.assert_array_equal(back[0, 0], [1, 2, 3])


def test_ap0_matrix_matches_the_published_one_and_keeps_white():
    matrix = exr_io.rgb_to_rgb_matrix(AP0)
    np.testing.assert_allclose(matrix, AP0_TO_REC709, atol=2e-3)
    np.testing.assert_allclose(matrix @ np.ones(3), np.ones(3), atol=1e-6)  # adapted white stays white
    np.testing.assert_allclose(exr_io.rgb_to_rgb_matrix(exr_io.REC709_CHROMATICITIES), np.eye(3), atol=1e-9)


def test_ap0_file_is_converted_and_negatives_are_clipped(tmp_path):
    rgb = np.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]], np.float32)  # white, and pure AP0 blue (out of gamut)
    _write(tmp_path / 'ap0.exr', {'RGB': rgb}, chromaticities=AP0)
    back, info = exr_io.read_exr(tmp_path / 'ap0.exr', return_info=True)
    np.testing.assert_allclose(back[0, 0], [1, 1, 1], atol=1e-3)
    expected_blue = np.maximum(AP0_TO_REC709 @ [0, 0, 1], 0)
    np.testing.assert_allclose(back[0, 1], expected_blue, atol=3e-3)
    assert back.min() >= 0 and info.negative_fraction == pytest.approx(2 / 6)


def test_bad_exr_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.exr'):
        exr_io.read_exr(tmp_path / 'missing.exr')
    bad = tmp_path / 'bad.exr'
    bad.write_bytes(b'\x76\x2f\x31\x01garbage')
    with pytest.raises(ValueError, match='bad.exr'):
        image.read_hdr(bad)
    _write(tmp_path / 'nan.exr', {'RGB': np.full((2, 2, 3), np.nan, np.float32)})
    with pytest.raises(ValueError, match='nan.exr.*non-finite'):
        exr_io.read_exr(tmp_path / 'nan.exr')
    _write(tmp_path / 'alpha.exr', {'A': np.ones((2, 2), np.float32)})
    with pytest.raises(ValueError, match=r'alpha.exr has no R, G, B or Y'):
        exr_io.read_exr(tmp_path / 'alpha.exr')


def test_damaged_exr_files_name_the_file(tmp_path):
    rgb = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    _write(tmp_path / 'good.exr', {'RGB': rgb})
    data = (tmp_path / 'good.exr').read_bytes()
    (tmp_path / 'truncated.exr').write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r'Cannot read EXR file .*truncated\.exr'):
        exr_io.read_exr(tmp_path / 'truncated.exr')
    for name, chroma in [
        ('coincident.exr', (0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3127, 0.329)),  # a singular primaries matrix
        ('white_y0.exr', (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.0)),  # a white point at y = 0
    ]:
        header = {'compression': OpenEXR.ZIP_COMPRESSION, 'type': OpenEXR.scanlineimage, 'chromaticities': chroma}
        with OpenEXR.File(header, {'RGB': rgb}) as exr:
            exr.write(str(tmp_path / name))
        with pytest.raises(ValueError, match=f'{name}: its chromaticities .* define no RGB colour space'):
            exr_io.read_exr(tmp_path / name)


def test_exr_windows_above_the_pixel_budget_are_refused_from_the_header(tmp_path):
    from lffnet_arch.fileio import limits

    _write(tmp_path / 'wide.exr', {'RGB': np.ones((40, 50, 3), np.float32)})
    limits.set_max_pixels(1999)
    try:
        with pytest.raises(ValueError, match=r'wide\.exr: 50 x 40 pixels .* above the pixel budget'):
            image.read_hdr(tmp_path / 'wide.exr')
    finally:
        limits.set_max_pixels(limits.DEFAULT_MAX_PIXELS)
    assert image.read_hdr(tmp_path / 'wide.exr').shape == (40, 50, 3)


@pytest.mark.parametrize('half, scale', [(True, 1e5), (False, 1e39)])
def test_the_exr_writer_refuses_values_it_would_store_as_inf_naming_the_target(tmp_path, half, scale):
    rgb = np.full((4, 4, 3), scale, np.float64)
    target = tmp_path / 'out.exr'
    with pytest.raises(ValueError, match=r'Refusing to write .*out\.exr: 48 values .* would store as Inf'):
        if half:
            exr_io.write_exr(target, rgb, half=True)
        else:
            image.write_hdr(target, rgb)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


@pytest.mark.skipif(not REAL_HDR_ROOT.is_dir(), reason='real HDR data not beside the checkout')
@pytest.mark.parametrize(
    'name, layout',
    [
        ('openexr-images-extra/LuminanceChroma/Flowers.exr', 'luminance_chroma'),
        ('openexr-images-extra/LuminanceChroma/Garden.exr', 'luminance'),
        ('openexr-images-extra/MultiView/Fog.exr', 'luminance'),
        ('openexr-images-extra/MultiView/Adjuster.exr', 'rgb'),
        ('openexr-images-extra/ScanLines/Carrots.exr', 'rgb'),
        ('openexr_images/ScanLines/Tree.exr', 'rgb'),
    ],
)
def test_real_exr_files(name, layout):
    rgb, info = exr_io.read_exr(REAL_HDR_ROOT / name, return_info=True)
    assert info.layout == layout
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and np.isfinite(rgb).all() and rgb.min() >= 0
    assert rgb.max() > 0 and info.negative_fraction < 0.05
    if name.endswith(('Carrots.exr', 'Tree.exr')):
        assert info.chromaticities != exr_io.REC709_CHROMATICITIES
