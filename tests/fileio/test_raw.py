"""Camera RAW frames: DNGs of simulated RGGB data read back linear (twice the exposure, twice the values), neutral at
the level the black and white levels and the white balance give, clipped highlights neutral white, upright, with
their EXIF times; errors name the file; a missing rawpy names the extra to install."""

import sys

import cv2
import numpy as np
import pytest
from camera_files import BLACK, WHITE, mosaic, write_dng

from lffnet_arch.fileio.extras import MissingExtraError
from lffnet_arch.fileio.image import read_frame


def smooth_scene(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    """A smooth linear colour scene in [0.02, 0.45] (H, W, 3)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    return 0.02 + 0.43 * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)


@pytest.fixture
def raw_module():
    pytest.importorskip('rawpy')
    pytest.importorskip('exifread')
    from lffnet_arch.fileio import raw

    return raw


def test_twice_the_exposure_gives_twice_the_values_where_unclipped(tmp_path, raw_module):
    """LibRaw is run linear (bilinear demosaicing, gamma 1, no auto-brightening, the file's white level kept):
    unclipped values double with the exposure to within 1.5 counts of the 12-bit raw data (the rounding of both
    frames' raw values) times the largest white-balance gain, 2 (red): 3 / 3839 = 8e-4 of full scale, plus 0.1%."""
    scene = smooth_scene()
    short = raw_module.read_raw(write_dng(tmp_path / 'short.dng', mosaic(scene, 1.0)))
    long = raw_module.read_raw(write_dng(tmp_path / 'long.dng', mosaic(scene, 2.0)))
    assert short.dtype == np.float32 and short.shape == (40, 56, 3)
    assert 0 <= short.min() and long.max() <= 1
    inside = np.s_[2:-2, 2:-2]  # demosaicing borders
    np.testing.assert_allclose(long[inside], 2 * short[inside], rtol=1e-3, atol=1.5 * 2 / (WHITE - BLACK))
    # A brighter frame that clips somewhere does not change the scale of the rest (no white level adapted per frame).
    bright = scene.copy()
    bright[:8, :8] = 0.9  # clips at gain 2
    clipped = raw_module.read_raw(write_dng(tmp_path / 'clipped.dng', mosaic(bright, 2.0)))
    np.testing.assert_allclose(clipped[20:-2, 20:-2], long[20:-2, 20:-2], rtol=1e-6, atol=2e-5)


def test_levels_and_white_balance_come_from_the_file(tmp_path, raw_module):
    """A grey raw value v (after black) of the green channel comes out as (v / (white - black)) in all three
    channels: black and white levels from the file, the camera's white balance (AsShotNeutral) and matrix applied."""
    scene = np.full((24, 32, 3), 0.25, np.float32)
    frame = raw_module.read_raw(write_dng(tmp_path / 'grey.dng', mosaic(scene, 1.0)))
    green = (np.round(BLACK + 0.25 * (WHITE - BLACK)) - BLACK) / (WHITE - BLACK)
    np.testing.assert_allclose(frame, green, atol=2e-3)


def test_a_pixel_clipped_in_any_raw_channel_is_neutral_full_scale(tmp_path, raw_module):
    """Green clipped at the white level while red and blue are not: LibRaw alone gives a coloured pixel (the false
    hue of part-clipped data); the reader gives (1, 1, 1)."""
    import rawpy

    scene = np.full((24, 32, 3), 0.2, np.float32)
    scene[8:16, 8:16] = (0.3, 1.5, 0.2)  # only green clips
    scene[8:16, 20:28] = 2.0  # every channel clips
    path = write_dng(tmp_path / 'highlight.dng', mosaic(scene, 1.0))
    frame = raw_module.read_raw(path)
    np.testing.assert_array_equal(frame[8:16, 8:16], 1.0)
    np.testing.assert_array_equal(frame[8:16, 20:28], 1.0)
    np.testing.assert_allclose(frame[20:, :], 0.2, atol=2e-3)  # far from the highlights: untouched
    with rawpy.imread(str(path)) as raw:
        plain = raw.postprocess(**raw_module._postprocess_options(rawpy)) / 65535
    assert plain[10:14, 10:14, 0].max() < 0.5  # what the neutral rule replaces: red well below full scale


def test_orientation_is_applied(tmp_path, raw_module):
    scene = smooth_scene(24, 40)
    data = mosaic(scene, 1.0)
    upright = raw_module.read_raw(write_dng(tmp_path / 'o1.dng', data))
    for orientation, turn in ((6, -1), (8, 1), (3, 2)):  # 90 degrees clockwise, counter-clockwise, 180
        turned = raw_module.read_raw(write_dng(tmp_path / f'o{orientation}.dng', data, orientation=orientation))
        np.testing.assert_array_equal(turned, np.rot90(upright, turn))


def test_exif_times_and_read_frame(tmp_path, raw_module):
    path = write_dng(tmp_path / 'IMG_0001.DNG', mosaic(smooth_scene(), 1.0), 1 / 250, '2026:03:04 05:06:07')
    found = raw_module.raw_exif(path)
    assert found['ExposureTime'] == pytest.approx(1 / 250, rel=1e-12)
    assert found['DateTimeOriginal'] == '2026:03:04 05:06:07'
    assert raw_module.is_raw(path)
    np.testing.assert_array_equal(read_frame(path), raw_module.read_raw(path))
    bare = write_dng(tmp_path / 'bare.dng', mosaic(smooth_scene(), 1.0))
    assert raw_module.raw_exif(bare)['ExposureTime'] is None


@pytest.mark.parametrize('content', [b'', b'not a raw file at all' * 50])
def test_unreadable_raw_files_are_named(tmp_path, raw_module, content):
    bad = tmp_path / 'bad.nef'
    bad.write_bytes(content)
    with pytest.raises(ValueError, match='bad.nef'):
        raw_module.read_raw(bad)
    with pytest.raises(FileNotFoundError, match='gone.cr2'):
        raw_module.read_raw(tmp_path / 'gone.cr2')


def test_pixel_budget_is_checked_before_demosaicing(tmp_path, raw_module):
    from lffnet_arch.fileio.limits import max_pixels, set_max_pixels

    path = write_dng(tmp_path / 'big.dng', mosaic(smooth_scene(), 1.0))
    saved = max_pixels()
    set_max_pixels(100)
    try:
        with pytest.raises(ValueError, match='big.dng.*pixel budget'):
            raw_module.read_raw(path)
    finally:
        set_max_pixels(saved)


def test_missing_rawpy_names_the_file_and_the_extra(tmp_path, monkeypatch):
    """Runs without rawpy too: the reader's message says what to install and under which licences."""
    path = tmp_path / 'IMG_0001.CR3'
    path.write_bytes(b'\0' * 64)
    monkeypatch.setitem(sys.modules, 'rawpy', None)  # makes `import rawpy` fail
    with pytest.raises(MissingExtraError, match=r'IMG_0001\.CR3.*lffnet_arch\[raw\].*LGPL') as error:
        read_frame(path)
    assert isinstance(error.value, ValueError)
