"""What ``lffnet-inference`` tells and gives a photographer besides the HDR files: the alignment it found for each
frame, and a preview that is upright, carries the reference frame's ICC profile and can be a JPEG."""

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from test_inference import EXIF_RATIONALS, GAMMA, TIMES, _options, radiance, render, save_net, shifted_pair

from lffnet_arch.archs import LFFNet
from lffnet_arch.commands.inference import describe_alignment, main
from lffnet_arch.commands.inference_args import parse_arguments
from lffnet_arch.deploy import align_frames
from lffnet_arch.fileio.image import read_icc_profile

ORIENTATION = 0x0112
FOUND = re.compile(
    r'(IMG_\d\.jpg) shift dx ([+-]\d+\.\d+) px, dy ([+-]\d+\.\d+) px, rotation ([+-]\d+\.\d+) deg, converged'
)


@pytest.fixture
def checkpoint(tmp_path):
    return save_net(LFFNet(num_feat=8).eval(), tmp_path / 'net.pth')


def _save_jpeg(path: Path, frame: np.ndarray, rational: tuple, orientation: int = 1, **params) -> None:
    exif = Image.Exif()
    if orientation != 1:
        exif[ORIENTATION] = orientation
    exif.get_ifd(0x8769)[33434] = rational
    Image.fromarray(np.round(frame * 255).astype(np.uint8)).save(path, quality=95, exif=exif, **params)


def write_shifted_bracket(folder: Path, shifts: list, height: int = 96, width: int = 128) -> None:
    """JPEG frames IMG_0-2 (EXIF times TIMES) of one scene, frame i's content displaced by ``shifts[i]`` = (dx, dy)
    pixels: the scene point at (x, y) in a frame with no shift is at (x + dx, y + dy) in frame i."""
    folder.mkdir(parents=True)
    margin = 8
    # 6 stops of log-smooth radiance, 2**-8 to 2**-2: the long frame is a quarter clipped, not mostly
    scene = 2.0 ** (-2 - 6 * np.sqrt(radiance(3, height + 2 * margin, width + 2 * margin)))
    for i, ((dx, dy), time, rational) in enumerate(zip(shifts, TIMES, EXIF_RATIONALS)):
        crop = scene[margin - dy : margin - dy + height, margin - dx : margin - dx + width]
        _save_jpeg(folder / f'IMG_{i}.jpg', np.clip(crop * time / min(TIMES), 0, 1) ** (1 / GAMMA), rational)


def _argv(tmp_path: Path, folder: Path, checkpoint: Path, *more: str) -> list:
    return [
        *('--input', str(folder), '--output', str(tmp_path / 'out'), '--checkpoint', str(checkpoint)),
        *('--opt', str(_options(tmp_path)), '--device', 'cpu', '--response', 'gamma:2.2', *more),
    ]


@pytest.mark.parametrize('method', ['mtb', 'ecc'])
def test_align_frames_reports_the_shift_it_found(method):
    frames, times, _ = shifted_pair()  # the short frame's content lies 4 px right of and 3 px above the reference's
    aligned, info = align_frames(frames, times, ref_idx=1, method=method, return_info=True)
    np.testing.assert_array_equal(aligned[0], align_frames(frames, times, ref_idx=1, method=method)[0])
    assert info[1] == dict(reference=True, method=method, converged=True, dx=0.0, dy=0.0, rotation=0.0, note=None)
    moved = info[0]
    assert moved['converged'] and not moved['reference'] and moved['method'] == method and moved['note'] is None
    assert moved['dx'] == pytest.approx(4, abs=0.5) and moved['dy'] == pytest.approx(-3, abs=0.5)
    assert moved['rotation'] == pytest.approx(0, abs=0.2)


def test_ecc_that_does_not_converge_is_reported_and_the_frame_left_unaligned():
    flat = [np.full((32, 32, 3), 0.5, np.float32) for _ in range(3)]  # nothing to correlate: ECC gives up
    with pytest.warns(UserWarning, match=r'ECC alignment of frame [02] did not converge'):
        aligned, info = align_frames(flat, [1.0, 4.0, 16.0], ref_idx=1, method='ecc', return_info=True)
    assert aligned[0] is flat[0] or np.array_equal(aligned[0], flat[0])
    assert not info[0]['converged'] and info[0]['dx'] is None and info[0]['note'].endswith('left unaligned')
    phrase = describe_alignment(info, ['a.jpg', 'b.jpg', 'c.jpg'])
    assert (
        phrase.startswith('ecc onto b.jpg: a.jpg did not converge (')
        and 'left unaligned; c.jpg did not converge' in phrase
    )


def test_cli_reports_the_alignment_of_each_frame(tmp_path, checkpoint, capsys):
    shifts = [(3, -2), (0, 0), (-2, 1)]  # (dx, dy) of IMG_0, IMG_1 (the reference), IMG_2
    write_shifted_bracket(tmp_path / 'shaky', shifts)
    assert main(_argv(tmp_path, tmp_path / 'shaky', checkpoint, '--align', 'ecc')) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith('shaky: alignment '))
    assert line.startswith('shaky: alignment ecc onto IMG_1.jpg: ')
    found = {name: (float(dx), float(dy), float(rotation)) for name, dx, dy, rotation in FOUND.findall(line)}
    assert sorted(found) == ['IMG_0.jpg', 'IMG_2.jpg']
    for i in (0, 2):
        dx, dy, rotation = found[f'IMG_{i}.jpg']
        assert abs(dx - shifts[i][0]) < 0.5 and abs(dy - shifts[i][1]) < 0.5 and abs(rotation) < 0.5
    notes = json.loads((tmp_path / 'out' / 'shaky_response.json').read_text())['info']
    assert 'alignment' not in notes  # the response file holds the curve's notes only

    assert main(_argv(tmp_path, tmp_path / 'shaky', checkpoint, '--align', 'none', '--overwrite')) == 0
    assert 'shaky: alignment off (--align none)' in capsys.readouterr().out.splitlines()


def test_jpeg_preview_is_upright_and_carries_the_reference_frames_icc_profile(tmp_path, checkpoint, capsys):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    folder = tmp_path / 'portrait'
    folder.mkdir()
    for i, (frame, rational) in enumerate(zip(render(radiance(4, 48, 64)), EXIF_RATIONALS)):  # stored landscape
        extra = {'icc_profile': profile} if i == 1 else {}  # the reference frame, the middle one, has the profile
        _save_jpeg(folder / f'IMG_{i}.jpg', frame, rational, orientation=6, **extra)
    argv = _argv(tmp_path, folder, checkpoint, '--align', 'none', '--preview', 'jpg', '--jpeg_quality', '80')
    assert main(argv) == 0
    out = tmp_path / 'out'
    names = ['portrait.exr', 'portrait.hdr', 'portrait.jpg', 'portrait_response.json']
    assert sorted(p.name for p in out.iterdir()) == names
    with Image.open(out / 'portrait.jpg') as preview:
        assert preview.format == 'JPEG' and preview.size == (48, 64)  # (width, height): the frames turned upright
        assert preview.info.get('icc_profile') == profile
        assert preview.getexif().get(ORIENTATION, 1) == 1
        quantization = preview.quantization
    at_80 = io.BytesIO()
    Image.new('RGB', (16, 16)).save(at_80, 'JPEG', quality=80)
    assert quantization == Image.open(at_80).quantization  # written at --jpeg_quality 80

    capsys.readouterr()
    assert main([*argv, '--skip_done']) == 0  # the finished bracket's preview is the .jpg
    assert 'Summary: 0 fused, 1 skipped' in capsys.readouterr().out
    assert main([*argv[:-4], '--preview', 'png', '--skip_done']) == 0  # no .png yet: fused again
    assert 'Summary: 1 fused, 0 skipped' in capsys.readouterr().out
    with Image.open(out / 'portrait.png') as preview:
        assert preview.format == 'PNG' and preview.size == (48, 64) and preview.info.get('icc_profile') == profile
        assert preview.getexif().get(ORIENTATION, 1) == 1


def test_the_icc_profile_is_read_from_every_frame_format_that_embeds_one(tmp_path):
    pillow_heif = pytest.importorskip('pillow_heif')
    tifffile = pytest.importorskip('tifffile')
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    rgb = np.zeros((16, 16, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'f.png', icc_profile=profile)
    Image.fromarray(rgb).save(tmp_path / 'f.jpg', icc_profile=profile)
    tifffile.imwrite(tmp_path / 'f.tif', rgb.astype(np.uint16), photometric='rgb', extratags=[(34675, 7, 0, profile)])
    heif = pillow_heif.from_bytes(mode='RGB', size=(16, 16), data=rgb.tobytes())
    heif.save(tmp_path / 'f.heic', quality=-1, icc_profile=profile)
    for name in ('f.png', 'f.jpg', 'f.tif', 'f.heic'):
        assert read_icc_profile(tmp_path / name) == profile, name
    Image.fromarray(rgb).save(tmp_path / 'plain.jpg')
    (tmp_path / 'f.dng').write_bytes(b'RAW data is rendered in sRGB')
    assert read_icc_profile(tmp_path / 'plain.jpg') is None and read_icc_profile(tmp_path / 'f.dng') is None


@pytest.mark.parametrize('value', ['0', '101', 'best'])
def test_a_jpeg_quality_outside_1_to_100_is_refused_when_parsed(tmp_path, capsys, value):
    argv = ['--input', str(tmp_path), '--output', str(tmp_path / 'out'), '--preview', 'jpg', '--jpeg_quality', value]
    with pytest.raises(SystemExit) as info:
        parse_arguments(argv)
    assert info.value.code == 2
    assert f"argument --jpeg_quality: expected an integer from 1 to 100 (JPEG quality), got '{value}'" in (
        capsys.readouterr().err
    )


def test_a_jpeg_quality_without_a_jpeg_preview_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        parse_arguments(['--input', str(tmp_path), '--output', str(tmp_path / 'out'), '--jpeg_quality', '80'])
    assert info.value.code == 2
    assert '--jpeg_quality 80 sets the quality of a JPEG preview; add --preview jpg' in capsys.readouterr().err
    args, _ = parse_arguments(['--input', str(tmp_path), '--output', str(tmp_path / 'out'), '--preview', 'jpg'])
    assert (args.preview, args.jpeg_quality) == ('jpg', None)  # None: the default quality, 95
