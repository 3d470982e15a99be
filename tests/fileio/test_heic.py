"""HEIC/HEIF frames: 8- and 10-bit files read back upright (as a JPEG with the same EXIF orientation is) at their own
bit depth, with their EXIF exposure and capture times; errors name the file; a missing pillow-heif names the extra."""

import datetime
import sys

import numpy as np
import pytest
from camera_files import write_heic
from PIL import Image

from lffnet_arch.fileio.extras import MissingExtraError
from lffnet_arch.fileio.image import read_frame, read_ldr

H, W = 24, 40


@pytest.fixture
def heic():
    pytest.importorskip('pillow_heif')
    from lffnet_arch.fileio import heic

    return heic


def marked(dtype=np.uint8) -> np.ndarray:
    """A landscape frame, mid grey with a white block in its top-left corner and a dark one in its top-right."""
    top = np.iinfo(dtype).max
    img = np.full((H, W, 3), top // 2, dtype)
    img[:8, :8] = top
    img[:8, -8:] = top // 8
    return img


def test_8_bit_frame_upright_with_its_exif_times(tmp_path, heic):
    from lffnet_arch.deploy.bracket import read_exif_exposure
    from lffnet_arch.deploy.shoot import capture_time

    path = write_heic(tmp_path / 'IMG_0001.HEIC', marked(), 1 / 60, '2026:05:06 07:08:09', orientation=6)
    frame = heic.read_heic(path)
    assert frame.dtype == np.float32 and frame.shape == (W, H, 3)  # turned a quarter clockwise: portrait
    exif = Image.Exif()
    exif[274] = 6
    Image.fromarray(marked()).save(tmp_path / 'same.jpg', exif=exif, quality=100)
    jpeg = read_ldr(tmp_path / 'same.jpg')
    assert jpeg.shape == frame.shape
    for corner in (np.s_[:6, -6:], np.s_[-6:, -6:], np.s_[10:20, 4:10]):  # white block, dark block, grey middle
        np.testing.assert_allclose(frame[corner], jpeg[corner], atol=3 / 255)
    np.testing.assert_allclose(frame[:6, -6:], 1.0, atol=1 / 255)
    assert read_exif_exposure(path) == pytest.approx(1 / 60, rel=1e-6)
    assert capture_time(path) == datetime.datetime(2026, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc).timestamp()
    np.testing.assert_array_equal(read_frame(path), frame)


def test_capture_time_from_exif(tmp_path, heic):
    from lffnet_arch.deploy.shoot import capture_time

    first = write_heic(tmp_path / 'a.heif', marked(), 1 / 100, '2026:05:06 07:08:09')
    second = write_heic(tmp_path / 'b.heif', marked(), 1 / 25, '2026:05:06 07:08:12')
    assert capture_time(second) - capture_time(first) == 3


def test_10_bit_frame_keeps_its_precision(tmp_path, heic):
    """A 10-bit file's codes are divided by 1023: white is exactly 1 and a ramp keeps more than 256 levels."""
    ramp = np.linspace(0, 1, W * 8)[None, :, None] * np.ones((H, 1, 3))
    rgb = np.round(ramp * 65535).astype(np.uint16).reshape(H, W * 8, 3)
    rgb[:4, :4] = 65535
    frame = heic.read_heic(write_heic(tmp_path / 'ten.heic', rgb, 1 / 100))
    assert frame.shape == (H, W * 8, 3) and frame.dtype == np.float32
    np.testing.assert_array_equal(frame[:2, :2], 1.0)
    np.testing.assert_allclose(frame[8:], ramp[8:], atol=4 / 1023)
    assert len(np.unique(frame[12, :, 1])) > 256


@pytest.mark.parametrize('content', [b'', b'\0\0\0\x18ftypheic' + b'x' * 200])
def test_unreadable_heic_files_are_named(tmp_path, heic, content):
    bad = tmp_path / 'bad.heic'
    bad.write_bytes(content)
    with pytest.raises(ValueError, match='bad.heic'):
        heic.read_heic(bad)
    with pytest.raises(FileNotFoundError, match='gone.heic'):
        heic.read_heic(tmp_path / 'gone.heic')


def test_missing_pillow_heif_names_the_file_and_the_extra(tmp_path, monkeypatch):
    """Runs without pillow-heif too: the message says what to install and under which licences."""
    from lffnet_arch.deploy.bracket import read_exif_exposure

    path = tmp_path / 'IMG_0002.heic'
    path.write_bytes(b'\0' * 64)
    monkeypatch.setitem(sys.modules, 'pillow_heif', None)  # makes `import pillow_heif` fail
    for read in (read_frame, read_exif_exposure):
        with pytest.raises(MissingExtraError, match=r'IMG_0002\.heic.*lffnet_arch\[heic\].*GPL'):
            read(path)
