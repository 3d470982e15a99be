"""A shoot folder: frames of many brackets grouped by capture time and exposure sequence, a dry run, skipping finished
brackets, and a failing bracket reported while the rest go on."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_inference import _options, save_net

from lffnet_arch.archs import LFFNet
from lffnet_arch.commands.inference import main
from lffnet_arch.deploy.shoot import MAX_FRAMES, capture_time, group_shoot

SECONDS = [(1, 400), (1, 100), (1, 25)]


def _frame(path: Path, level: float, exposure=None, taken=None, seed: int = 0) -> None:
    exif = Image.Exif()
    if exposure is not None:
        exif.get_ifd(0x8769)[33434] = exposure
    if taken is not None:
        exif.get_ifd(0x8769)[36867] = f'2026:12:07 10:{taken // 60:02d}:{taken % 60:02d}'
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.2, 1.8, 48)[None, :, None] * level * (0.8 + 0.4 * rng.random((40, 48, 3)))
    Image.fromarray(np.clip(ramp * 255, 0, 255).astype(np.uint8)).save(path, exif=exif, quality=95)


def _shoot(folder: Path, brackets: int = 2, gap: int = 10) -> None:
    folder.mkdir()
    for b in range(brackets):
        for i, (level, exposure) in enumerate(zip((0.15, 0.45, 0.9), SECONDS)):
            _frame(folder / f'IMG_{3 * b + i:04d}.jpg', level, exposure, taken=b * gap + i, seed=b)


def test_frames_are_grouped_by_capture_gaps_then_by_repeating_exposures(tmp_path):
    _shoot(tmp_path / 'gaps')
    paths = sorted((tmp_path / 'gaps').iterdir())
    assert capture_time(paths[1]) - capture_time(paths[0]) == 1
    assert [[p.name for p in g] for g in group_shoot(paths)] == [
        ['IMG_0000.jpg', 'IMG_0001.jpg', 'IMG_0002.jpg'],
        ['IMG_0003.jpg', 'IMG_0004.jpg', 'IMG_0005.jpg'],
    ]
    _shoot(tmp_path / 'burst', gap=3)  # no gap over 2 s: the repeating exposure pattern splits them
    assert [len(g) for g in group_shoot(sorted((tmp_path / 'burst').iterdir()))] == [3, 3]
    (tmp_path / 'plain').mkdir()
    for i in range(12):  # no EXIF at all: file order, three a bracket
        _frame(tmp_path / 'plain' / f'f{i:02d}.jpg', 0.5)
    assert [len(g) for g in group_shoot(sorted((tmp_path / 'plain').iterdir()))] == [3, 3, 3, 3]
    assert MAX_FRAMES == 9


@pytest.fixture
def checkpoint(tmp_path):
    return save_net(LFFNet(num_feat=8).eval(), tmp_path / 'net.pth')


def test_a_shoot_folder_dry_run_failures_summary_and_skip_done(tmp_path, checkpoint, capsys):
    _shoot(tmp_path / 'card', brackets=3)
    (tmp_path / 'card' / 'IMG_0004.jpg').write_bytes(b'not a jpeg')  # the second bracket cannot be read
    base = ['--input', str(tmp_path / 'card'), '--checkpoint', str(checkpoint), '--opt', str(_options(tmp_path))]
    base += ['--output', str(tmp_path / 'out'), '--align', 'none', '--response', 'srgb']
    assert main([*base, '--dry_run']) == 0
    out = capsys.readouterr().out
    assert 'IMG_0000: IMG_0000.jpg, IMG_0001.jpg, IMG_0002.jpg' in out and '3 bracket(s); nothing fused' in out
    assert not (tmp_path / 'out').exists()

    assert main(base) == 1  # one bracket failed: the exit code says so, the others are written
    captured = capsys.readouterr()
    assert 'FAILED (IMG_0003.jpg, IMG_0004.jpg, IMG_0005.jpg)' in captured.err and 'IMG_0004.jpg' in captured.err
    assert 'Summary: 2 fused, 0 skipped (outputs present), 1 failed.' in captured.out
    names = sorted(p.name for p in (tmp_path / 'out').iterdir())
    assert 'IMG_0000.exr' in names and 'IMG_0006.exr' in names and not any(n.startswith('IMG_0003') for n in names)

    _frame(tmp_path / 'card' / 'IMG_0004.jpg', 0.45, SECONDS[1], taken=11, seed=1)  # the card read again
    before = (tmp_path / 'out' / 'IMG_0000.exr').stat().st_mtime_ns
    assert main([*base, '--skip_done']) == 0
    assert 'Summary: 1 fused, 2 skipped (outputs present), 0 failed.' in capsys.readouterr().out
    assert (tmp_path / 'out' / 'IMG_0000.exr').stat().st_mtime_ns == before  # finished brackets untouched
    assert (tmp_path / 'out' / 'IMG_0003.exr').is_file()
    with pytest.raises(SystemExit):  # without a flag, today's rule: existing outputs are an error
        main(base)
