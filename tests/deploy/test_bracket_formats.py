"""Brackets of camera RAW and HEIC frames: listed and read with their EXIF times (``--exposures`` still wins), RAW
brackets fused with the linear response, RAW and other frames refused together, shoots grouped by their capture
times, and a missing optional package reported with the extra to install."""

import json
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from camera_files import mosaic, write_dng, write_heic
from test_inference import _options, save_net

from lffnet_arch.archs import LFFNet
from lffnet_arch.commands.inference import find_brackets, main
from lffnet_arch.data.layout import FRAME_EXTENSIONS, find_scene_files, list_frames
from lffnet_arch.deploy.bracket import is_raw_bracket, raw_response, read_bracket
from lffnet_arch.fileio.image import read_hdr
from lffnet_arch.response import Response

TIMES = (1 / 400, 1 / 100, 1 / 25)
GAINS = (1.0, 4.0, 16.0)  # the times relative to the shortest


def scene(height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth linear colour scene in [0.005, 0.25] (H, W, 3)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    return 0.005 + 0.245 * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def write_raw_bracket(folder: Path, first: int = 1, second: int = 0) -> list:
    """Three DNGs of one scene at TIMES, taken one second apart from 10:00:``second``."""
    folder.mkdir(parents=True, exist_ok=True)
    linear = scene(seed=first)
    return [
        write_dng(folder / f'IMG_{first + i:04d}.dng', mosaic(linear, gain), t, f'2026:07:08 10:00:{second + i:02d}')
        for i, (t, gain) in enumerate(zip(TIMES, GAINS))
    ]


@pytest.fixture
def raw_ok():
    pytest.importorskip('rawpy')
    pytest.importorskip('exifread')


@pytest.fixture
def checkpoint(tmp_path):
    return save_net(LFFNet(num_feat=8).eval(), tmp_path / 'net.pth')


def test_raw_and_heic_files_are_listed_as_frames(tmp_path):
    names = ['a.DNG', 'b.nef', 'c.CR3', 'd.heic', 'e.HEIF', 'f.jpg', 'notes.txt', '.hidden.dng']
    for name in names:
        (tmp_path / name).write_bytes(b'x')
    assert [p.name for p in list_frames(tmp_path)] == ['a.DNG', 'b.nef', 'c.CR3', 'd.heic', 'e.HEIF', 'f.jpg']
    assert {'.dng', '.cr2', '.cr3', '.nef', '.arw', '.raf', '.orf', '.rw2', '.pef', '.srw'} < set(FRAME_EXTENSIONS)
    (tmp_path / 'exposure.txt').write_text('0\n2\n4\n')
    with pytest.raises(ValueError, match=r'a\.DNG.*training and test scenes take LDR frames'):
        find_scene_files(tmp_path, 6, with_gt=False)


def test_raw_bracket_linear_with_its_exif_times(tmp_path, raw_ok):
    paths = write_raw_bracket(tmp_path / 'raw')
    frames, times, listed, origin = read_bracket(tmp_path / 'raw', return_sources=True)
    assert times == pytest.approx(TIMES, rel=1e-9) and origin == 'EXIF' and listed == paths
    assert is_raw_bracket(listed)
    unclipped = frames[1] < 0.9
    assert unclipped.mean() > 0.5
    ratio = frames[1][unclipped & (frames[0] > 0.01)] / frames[0][unclipped & (frames[0] > 0.01)]
    assert np.median(ratio) == pytest.approx(4, rel=0.01)  # linear: four times the time, four times the values
    frames2, times2 = read_bracket(tmp_path / 'raw', exposures=[1, 4, 16])  # --exposures still wins
    assert times2.tolist() == [1, 4, 16]
    np.testing.assert_array_equal(frames2[2], frames[2])


def test_raw_and_other_frames_do_not_mix(tmp_path, raw_ok):
    paths = write_raw_bracket(tmp_path / 'mixed')
    cv2.imwrite(str(tmp_path / 'mixed' / 'IMG_0004.jpg'), np.full((32, 48, 3), 128, np.uint8))
    with pytest.raises(ValueError, match=r'mixes camera RAW frames \(IMG_0001.dng.*IMG_0004.jpg'):
        read_bracket(tmp_path / 'mixed')
    with pytest.raises(ValueError, match='IMG_0004.jpg'):
        read_bracket([paths[0], tmp_path / 'mixed' / 'IMG_0004.jpg'], exposures=[1, 2])
    assert not is_raw_bracket([tmp_path / 'mixed' / 'IMG_0004.jpg'])


def test_raw_response_is_linear_unless_one_is_given():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert raw_response('auto', None, 'b') == ('linear', None)
        linear = Response.linear()
        assert raw_response(linear, None, 'b') == (linear, None)  # linear given: nothing to warn about
    with pytest.warns(UserWarning, match='b: the frames are camera RAW files.*gamma 2.2'):
        assert raw_response('auto', 2.2, 'b') == ('auto', 2.2)
    srgb = Response.srgb()
    with pytest.warns(UserWarning, match='response srgb'):
        assert raw_response(srgb, None, 'b') == (srgb, None)


def test_command_fuses_a_raw_folder_with_the_linear_response(tmp_path, checkpoint, capsys, raw_ok):
    write_raw_bracket(tmp_path / 'raw')
    base = ['--input', str(tmp_path / 'raw'), '--checkpoint', str(checkpoint), '--opt', str(_options(tmp_path))]
    base += ['--align', 'none']
    assert main([*base, '--output', str(tmp_path / 'out')]) == 0
    out = capsys.readouterr().out
    assert 'raw: 3 frames by exposure (EXIF times): IMG_0001.dng 1/400 s' in out
    assert 'raw: response linear' in out
    written = json.loads((tmp_path / 'out' / 'raw_response.json').read_text())
    assert written['kind'] == 'linear'
    assert np.isfinite(read_hdr(tmp_path / 'out' / 'raw.exr')).all()
    with pytest.warns(UserWarning, match='camera RAW files'):  # an explicit choice wins, with a warning
        assert main([*base, '--output', str(tmp_path / 'g'), '--gamma', '2.2']) == 0
    assert json.loads((tmp_path / 'g' / 'raw_response.json').read_text())['kind'] == 'gamma'


def test_a_raw_shoot_is_grouped_by_capture_time(tmp_path, raw_ok):
    from lffnet_arch.deploy.shoot import capture_time, group_shoot

    write_raw_bracket(tmp_path / 'card', first=1, second=0)
    write_raw_bracket(tmp_path / 'card', first=4, second=30)
    paths = list_frames(tmp_path / 'card')
    assert capture_time(paths[3]) - capture_time(paths[0]) == 30
    assert [[p.name for p in g] for g in group_shoot(paths)] == [
        ['IMG_0001.dng', 'IMG_0002.dng', 'IMG_0003.dng'],
        ['IMG_0004.dng', 'IMG_0005.dng', 'IMG_0006.dng'],
    ]
    assert [name for name, _ in find_brackets([str(tmp_path / 'card')])] == ['IMG_0001', 'IMG_0004']


def test_heic_bracket_with_its_exif_times(tmp_path):
    pytest.importorskip('pillow_heif')
    folder = tmp_path / 'phone'
    folder.mkdir()
    linear = scene()
    for i, (t, gain) in enumerate(zip(TIMES, GAINS)):
        rgb = np.round(np.clip(linear * gain * 3, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
        write_heic(folder / f'IMG_{i}.HEIC', rgb, t, f'2026:07:08 10:00:0{i}', orientation=8)
    frames, times, paths, origin = read_bracket(folder, return_sources=True)
    assert times == pytest.approx(TIMES, rel=1e-6) and origin == 'EXIF' and not is_raw_bracket(paths)
    assert all(f.shape == (48, 32, 3) for f in frames)  # orientation 8: turned a quarter, portrait


def test_missing_raw_package_is_reported_with_the_extra(tmp_path, checkpoint, capsys, monkeypatch):
    folder = tmp_path / 'raw'
    folder.mkdir()
    for i in range(3):
        (folder / f'IMG_{i}.NEF').write_bytes(b'\0' * 64)
    monkeypatch.setitem(sys.modules, 'rawpy', None)  # makes `import rawpy` fail
    with pytest.raises(ValueError, match=r'IMG_0\.NEF.*pip install "lffnet_arch\[raw\]"'):
        read_bracket(folder)
    argv = ['--input', str(folder), '--output', str(tmp_path / 'out'), '--checkpoint', str(checkpoint)]
    assert main([*argv, '--opt', str(_options(tmp_path))]) == 1
    assert 'lffnet_arch[raw]' in capsys.readouterr().err


def test_exposures_given_make_a_folder_one_bracket_whatever_its_exif_says(tmp_path):
    from PIL import Image

    # Frames whose EXIF gives every one the same exposure time (as some published brackets do): as a shoot they look
    # like three repeats, three one-frame brackets; with --exposures the folder is the bracket the user says it is.
    folder = tmp_path / 'garden'
    folder.mkdir()
    for i in range(3):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x829A] = 0.05  # ExposureTime
        Image.fromarray(np.full((16, 16, 3), 60 * (i + 1), np.uint8)).save(folder / f'{i}.jpg', exif=exif)
    assert [name for name, _ in find_brackets([str(folder)])] == ['0', '1', '2']
    assert find_brackets([str(folder)], one_bracket=True) == [('garden', folder)]
