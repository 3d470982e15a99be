"""Image files: Radiance round trip, errors naming the file, decoding checks, atomic writes; the mu-law curve."""

import numpy as np
import pytest

from lffnet_arch.fileio import image
from lffnet_arch.hdr_input import mu_law


def test_hdr_round_trip_is_rgb_and_close(tmp_path):
    img = np.zeros((4, 5, 3), np.float32)
    img[..., 0] = 0.5  # red only: a BGR/RGB swap would show
    image.write_hdr(tmp_path / 'x.hdr', img)
    back = image.read_hdr(tmp_path / 'x.hdr')
    assert back.dtype == np.float32 and back.shape == (4, 5, 3)
    np.testing.assert_allclose(back, img, atol=1e-6)
    assert not list(tmp_path.glob('.*.tmp'))


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.hdr'):
        image.read_hdr(tmp_path / 'nope.hdr')
    bad = tmp_path / 'bad.tif'
    bad.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='bad.tif'):
        image.read_ldr(bad)


def test_mu_law():
    x = np.array([0.0, 1.0, 0.01], np.float32)
    np.testing.assert_allclose(mu_law(x), np.log1p(5000 * x) / np.log(5001), rtol=1e-6)


def test_atomic_path_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    from lffnet_arch.fileio.atomic import atomic_path

    target = tmp_path / 'sub' / 'out.bin'
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b'first')
    assert target.read_bytes() == b'first'
    with pytest.raises(RuntimeError, match='interrupted'), atomic_path(target) as tmp:
        tmp.write_bytes(b'partial')
        raise RuntimeError('interrupted')
    assert target.read_bytes() == b'first'
    assert sorted(p.name for p in target.parent.iterdir()) == ['out.bin']


# ---------------------------------------------------------------- corrupt, truncated and hostile image files


def _smooth_image(height: int = 64, width: int = 96) -> np.ndarray:
    import cv2

    noise = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 2)


def _encoded(ext: str, img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _huge_png_header() -> bytes:
    """A valid PNG signature and IHDR claiming 100000 x 100000 RGB pixels, with a tiny IDAT."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack('>IIBBBBB', 100000, 100000, 8, 2, 0, 0, 0)
    return (
        b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'\0' * 64)) + chunk(b'IEND', b'')
    )


def _garbage_in_the_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    garbage = bytes(np.random.default_rng(1).integers(0, 256, 200, dtype=np.uint8))
    return data[:middle] + garbage + data[middle + 200 :]


CORRUPT_FILES = {
    'garbage.jpg': lambda: _garbage_in_the_middle(_encoded('.jpg', _smooth_image())),
    'truncated.jpg': lambda: _encoded('.jpg', _smooth_image())[:-400],
    'empty.png': lambda: b'',
    'huge.png': _huge_png_header,
    'truncated.png': lambda: _encoded('.png', _smooth_image())[:1000],
    'truncated.tif': lambda: _encoded('.tif', _smooth_image().astype(np.uint16) * 257)[:5000],
}


@pytest.mark.parametrize('name', sorted(CORRUPT_FILES))
def test_corrupt_ldr_files_are_refused_naming_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(CORRUPT_FILES[name]())
    with pytest.raises(ValueError, match=rf'Cannot decode LDR frame .*{name}'):
        image.read_ldr(path)


def test_a_jpeg_that_libjpeg_decodes_with_warnings_is_refused(tmp_path):
    """OpenCV returns an image for this file (libjpeg only warns on stderr); it is refused with the warning."""
    import cv2

    data = _garbage_in_the_middle(_encoded('.jpg', _smooth_image()))
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
    path = tmp_path / 'frame.jpg'
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r'frame\.jpg: the image data is corrupt \(Corrupt JPEG data'):
        image.read_ldr(path)


def test_intact_jpeg_still_decodes_and_stderr_is_restored(tmp_path, capfd):
    import sys

    img = _smooth_image()
    path = tmp_path / 'ok.jpg'
    path.write_bytes(_encoded('.jpg', img))
    frame = image.read_ldr(path)
    assert frame.shape == img.shape
    print('after decoding', file=sys.stderr)
    assert 'after decoding' in capfd.readouterr().err


@pytest.mark.parametrize('name', ['empty.hdr', 'truncated.hdr'])
def test_corrupt_hdr_files_are_refused_naming_the_file(tmp_path, name):
    path = tmp_path / name
    data = _encoded('.hdr', np.random.default_rng(0).random((32, 48, 3)).astype(np.float32))
    path.write_bytes(b'' if name == 'empty.hdr' else data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf'Cannot decode HDR image .*{name}'):
        image.read_hdr(path)


def test_non_finite_hdr_is_not_written(tmp_path):
    img = np.zeros((4, 4, 3), np.float32)
    img[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r'out\.hdr.*1 NaN/Inf'):
        image.write_hdr(tmp_path / 'out.hdr', img)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- atomic writes: exclusive finish, modes, leftovers


def test_atomic_path_without_overwrite_never_replaces_a_file_created_meanwhile(tmp_path):
    from lffnet_arch.fileio.atomic import atomic_path

    target = tmp_path / 'out.png'
    with pytest.raises(FileExistsError, match='out.png'), atomic_path(target, overwrite=False) as tmp:
        tmp.write_bytes(b'mine')
        target.write_bytes(b'the other run')  # a concurrent run finished first
    assert target.read_bytes() == b'the other run'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.png']
    with atomic_path(tmp_path / 'new.png', overwrite=False) as tmp:
        tmp.write_bytes(b'new')
    assert (tmp_path / 'new.png').read_bytes() == b'new'


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_final_files_get_the_mode_the_umask_asks_for(tmp_path, umask):
    import os
    import stat

    import torch

    from lffnet_arch.fileio.checkpoint import save_atomic

    old = os.umask(umask)
    try:
        save_atomic({'params': {'w': torch.zeros(1)}}, tmp_path / 'net.pth')
        image.write_hdr(tmp_path / 'x.hdr', np.zeros((2, 2, 3), np.float32), overwrite=False)
        image.imwrite_atomic(tmp_path / 'x.png', np.zeros((2, 2, 3), np.uint8))
    finally:
        os.umask(old)
    for name in ('net.pth', 'x.hdr', 'x.png'):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_temporaries_carry_the_pid_and_only_dead_writers_are_cleaned(tmp_path):
    import os
    import subprocess
    import sys

    from lffnet_arch.fileio.atomic import atomic_path, remove_stale_temporaries

    with atomic_path(tmp_path / 'a.pth') as tmp:
        assert f'.a.pth.{os.getpid()}.' in tmp.name
        live = tmp_path / tmp.name.replace('a.pth', 'b.pth')
        live.write_bytes(b'a live writer')  # this process is running: never removed
        dead_pid = subprocess.run(
            [sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True, check=True
        ).stdout.strip()
        dead = tmp_path / 'sub' / f'.net_g_4.pth.{dead_pid}.abc_123.tmp'
        dead.parent.mkdir()
        dead.write_bytes(b'killed while saving')
        unrelated = tmp_path / '.hidden_config'
        unrelated.write_text('x')
        assert remove_stale_temporaries(tmp_path) == []  # not recursive: sub/ untouched
        assert remove_stale_temporaries(tmp_path, recursive=True) == [(dead, int(dead_pid))]
        assert live.exists() and unrelated.exists() and not dead.exists()
        tmp.write_bytes(b'done')
    assert (tmp_path / 'a.pth').read_bytes() == b'done'


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding(tmp_path):
    """A small PNG whose header claims 20000 x 20000 pixels is refused at once, naming the file."""
    import struct
    import time
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack('>IIBBBBB', 20000, 20000, 8, 2, 0, 0, 0)
    png = (
        b'\x89PNG\r\n\x1a\n'
        + chunk(b'IHDR', header)
        + chunk(b'IDAT', zlib.compress(bytes(60001)))
        + chunk(b'IEND', b'')
    )
    (tmp_path / 'bomb.png').write_bytes(png)
    start = time.perf_counter()
    with pytest.raises(
        ValueError, match=r'bomb\.png: 20000 x 20000 pixels \(400 megapixels\) is above the pixel budget'
    ):
        image.read_ldr(tmp_path / 'bomb.png')
    assert time.perf_counter() - start < 2  # not decoded


def test_header_sizes_are_read_without_decoding(tmp_path):
    import cv2

    frame = np.zeros((20, 30, 3), np.uint16)
    for suffix in ('.png', '.tif', '.jpg'):
        cv2.imwrite(str(tmp_path / f'x{suffix}'), frame if suffix != '.jpg' else frame.astype(np.uint8))
        assert image.header_size(np.fromfile(tmp_path / f'x{suffix}', np.uint8)) == (20, 30)
    image.write_hdr(tmp_path / 'x.hdr', np.ones((20, 30, 3), np.float32))
    assert image.header_size(np.fromfile(tmp_path / 'x.hdr', np.uint8)) == (20, 30)


def test_a_set_written_meanwhile_by_another_run_is_kept_and_this_run_says_so(tmp_path, monkeypatch):
    """Two writers of one set folder (simulated sets, LMDBs, patches): the one that finishes second is refused."""
    from lffnet_arch.fileio import atomic

    target = tmp_path / 'set'
    first = atomic.staged_output_dir(target)
    first_tmp = first.__enter__()
    (first_tmp / 'a.txt').write_text('first')
    monkeypatch.setattr(atomic.os, 'getpid', lambda: 2**22 + 7)  # a second writer, as another process would be
    with atomic.staged_output_dir(target) as second_tmp:
        (second_tmp / 'a.txt').write_text('second')
    monkeypatch.undo()
    with pytest.raises(FileExistsError, match=r'set was written by another run while this one worked; it is kept'):
        first.__exit__(None, None, None)
    assert (target / 'a.txt').read_text() == 'second'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['set']  # the refused run left no partial folder
