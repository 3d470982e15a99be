"""HDR file helpers: Radiance round trip, errors naming the file, the shared tonemapper."""

import numpy as np
import pytest

from lffnet_arch.utils import hdr_util


def test_hdr_round_trip_is_rgb_and_close(tmp_path):
    img = np.zeros((4, 5, 3), np.float32)
    img[..., 0] = 0.5  # red only: a BGR/RGB swap would show
    hdr_util.write_hdr(tmp_path / 'x.hdr', img)
    back = hdr_util.read_hdr(tmp_path / 'x.hdr')
    assert back.dtype == np.float32 and back.shape == (4, 5, 3)
    np.testing.assert_allclose(back, img, atol=1e-6)
    assert not list(tmp_path.glob('.*.tmp'))


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.hdr'):
        hdr_util.read_hdr(tmp_path / 'nope.hdr')
    bad = tmp_path / 'bad.tif'
    bad.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='bad.tif'):
        hdr_util.read_ldr(bad)


def test_mu_law_and_preview():
    x = np.array([0.0, 1.0, 0.01], np.float32)
    np.testing.assert_allclose(hdr_util.mu_law(x), np.log1p(5000 * x) / np.log(5001), rtol=1e-6)
    hdr = np.random.default_rng(0).uniform(0, 0.02, (8, 8, 3)).astype(np.float32)
    preview = hdr_util.tonemap_preview(hdr)
    assert preview.dtype == np.uint8 and preview.max() == 255  # a dim image is normalised, not left dark


def test_atomic_path_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    from lffnet_arch.utils.file_util import atomic_path

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
