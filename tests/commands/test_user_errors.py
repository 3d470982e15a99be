"""A user's mistake gets one clear line naming the file or option, before any work; nothing is half written."""

import errno
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lffnet_arch.commands import inference, simulate_brackets
from lffnet_arch.data.simulator.demo import DEMO_RADIANCE
from lffnet_arch.deploy import read_bracket

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('value', ['0', '-2.2', 'nan', 'inf'])
def test_a_gamma_that_cannot_be_one_is_refused_when_parsed(value, capsys):
    with pytest.raises(SystemExit):
        inference.build_parser().parse_args(['--input', 'x', '--output', 'y', '--gamma', value])
    assert f"--gamma: expected a finite number > 0, got '{value}'" in capsys.readouterr().err


def test_a_full_disk_leaves_none_of_a_brackets_outputs(tmp_path, monkeypatch):
    outputs = [tmp_path / f'scene{suffix}' for suffix in ('.hdr', '.exr', '.png')]
    hdr = np.full((8, 8, 3), 0.25, np.float32)
    real = inference.write_preview

    def full(path, *args, **kwargs):  # the preview, written last, finds the disk full
        raise OSError(errno.ENOSPC, 'No space left on device', str(path))

    monkeypatch.setattr(inference, 'write_preview', full)
    with pytest.raises(OSError, match='No space left'):
        inference.write_outputs(outputs, hdr, 'mulaw', overwrite=False)
    assert list(tmp_path.iterdir()) == []  # neither the .hdr nor the .exr, nor the staging folder
    monkeypatch.setattr(inference, 'write_preview', real)
    (tmp_path / 'scene.png').write_bytes(b'written by another run')
    with pytest.raises(FileExistsError, match=r'scene\.png appeared while this run was writing it'):
        inference.write_outputs(outputs, hdr, 'mulaw', overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['scene.png']  # the other run's file, alone
    inference.write_outputs(outputs, hdr, 'mulaw', overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['scene.exr', 'scene.hdr', 'scene.png']


def _jpeg_with_exposure(path: Path, level: float, seconds: tuple) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[33434] = seconds
    Image.fromarray(np.full((16, 16, 3), int(level * 255), np.uint8)).save(path, exif=exif)


def test_exif_times_that_repeat_or_contradict_the_frames_are_reported(tmp_path):
    for name, level in (('a.jpg', 0.1), ('b.jpg', 0.4), ('c.jpg', 0.9)):
        _jpeg_with_exposure(tmp_path / name, level, (1, 100))
    with pytest.raises(
        ValueError, match=r'EXIF ExposureTime of a\.jpg \(1/100 s\), b\.jpg .* repeats a value.*--exposures'
    ):
        read_bracket(tmp_path)
    for name, level, seconds in (('a.jpg', 0.1, (1, 25)), ('b.jpg', 0.4, (1, 100)), ('c.jpg', 0.9, (1, 400))):
        _jpeg_with_exposure(tmp_path / name, level, seconds)  # the brightest frame is said to be the shortest
    with pytest.warns(
        UserWarning, match=r'says b\.jpg \(1/100 s\) is the longer exposure, but it is darker than c\.jpg'
    ):
        read_bracket(tmp_path)


def test_simulated_sets_check_their_output_and_read_data_against_the_root(tmp_path, capsys):
    (tmp_path / 'file').write_text('x')
    argv = ['--input', str(DEMO_RADIANCE), '--num', '1', '--size', '32', '--output', str(tmp_path / 'file' / 'set')]
    assert simulate_brackets.main(argv) == 1
    err = capsys.readouterr().err
    assert f'--output {tmp_path / "file" / "set"} lies under {tmp_path / "file"}, which is a file' in err
    options = tmp_path / 'opt.yml'
    relative = Path('lffnet_arch/data/simulator/demo_radiance')  # relative to the checkout, as training reads it
    options.write_text(
        'name: x\nnetwork_g: {type: LFFNet}\ndatasets:\n  val_sim: {name: s, type: SimulatedBracketDataset, '
        f'dataroot: {relative}, gt_size: 32, num_samples: 1, styles: [kalantari]}}\n'
    )
    argv = ['--opt', str(options), '--dataset', 'val_sim', '--output', str(tmp_path / 'set')]
    assert simulate_brackets.main(argv, root=REPO) == 0
    assert (tmp_path / 'set' / 'simulated_set.json').is_file()
    (tmp_path / 'typo.yml').write_text(options.read_text().replace('num_samples', 'num_sample'))
    argv = ['--opt', str(tmp_path / 'typo.yml'), '--dataset', 'val_sim', '--output', str(tmp_path / 'set2')]
    assert simulate_brackets.main(argv, root=REPO) == 1
    assert 'datasets:val_sim:num_sample: unknown option (did you mean num_samples?)' in capsys.readouterr().err


@pytest.mark.parametrize(
    'content, message',
    [
        (
            'name: !!python/object/apply:os.system ["echo ran"]\n',
            'is not plain YAML (tags such as !!python are refused)',
        ),
        (
            'name: x\nnetwork_g: {type: LFFNet, num_fet: 8}\n',
            'network_g:num_fet: unknown option (did you mean num_feat?)',
        ),
    ],
)
def test_train_and_test_report_a_users_mistake_in_one_line(tmp_path, content, message):
    (tmp_path / 'o.yml').write_text(content)
    for script in ('train.py', 'test.py'):
        command = [sys.executable, str(REPO / 'lffnet_arch' / script), '-opt', str(tmp_path / 'o.yml')]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert result.returncode == 2, result.stderr[-2000:]
        assert message in result.stderr and 'Traceback' not in result.stderr
        assert result.stderr.strip().count('\n') == 0  # one line
    assert not (tmp_path / 'ran').exists()


EARLY_CHECK = """
import sys, lffnet_cli
try:
    lffnet_cli.inference(sys.argv[1:])
except SystemExit as stop:
    print('status', stop.code, 'torch' in sys.modules, 'basicsr' in sys.modules)
"""


@pytest.mark.parametrize(
    ('flags', 'message'),
    [
        (['--input', 'missing_bracket', '--output', 'out'], '--input not found: missing_bracket'),
        (['--input', 'a.jpg', 'b.jpg', '--output', 'out', '--exposures', '1'], '--exposures gives 1 times for 2'),
        (['--input', '.', '--output', 'out', '--checkpoint', 'none.pth'], '--checkpoint none.pth: no such file'),
        (['--input', '.', '--output', 'out', '--response', 'gamma:0'], "--response: Response spec 'gamma:0'"),
        (['--input', '.', '--output', 'out', '--tile', 'big'], '--tile'),
        (['--input', '.', '--output', 'a.jpg'], '--output a.jpg is a file'),
        (['--input', '.', '--output', 'out', '--preview', 'jpg', '--jpeg_quality', '0'], 'argument --jpeg_quality'),
        (['--input', '.', '--output', 'out', '--max_memory', 'abc'], 'argument --max_memory: expected a memory size'),
        (['--input', '.', '--output', 'out', '--max_memory', '0'], 'argument --max_memory'),
    ],
)
def test_the_command_checks_its_flags_before_importing_torch(tmp_path, flags, message):
    for name in ('a.jpg', 'b.jpg'):
        Image.new('RGB', (8, 8)).save(tmp_path / name)
    result = subprocess.run(
        [sys.executable, '-c', EARLY_CHECK, *flags], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == 'status 2 False False', result.stdout + result.stderr
    assert message in result.stderr


def test_lffnet_infer_checks_its_flags_first_too(tmp_path):
    code = EARLY_CHECK.replace('lffnet_cli.inference(sys.argv[1:])', "lffnet_cli.lffnet(['infer', *sys.argv[1:]])")
    result = subprocess.run(
        [sys.executable, '-c', code, '--input', 'nowhere', '--output', 'out'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == 'status 2 False False' and 'lffnet infer' in result.stderr
