"""scripts/width_tradeoff.py end to end at a tiny budget: iterations from equal time, training, the table and curve."""

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml

from scripts.measure import width

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def base(tmp_path):
    from lffnet_arch.data.simulator.demo import generate_demo_set

    data = generate_demo_set(tmp_path / 'demo', num_train=2, num_val=1, size=32, seed=1)
    opt = yaml.safe_load((REPO / 'options/train/LFFNet/train_LFFNet_demo.yml').read_text())
    opt['datasets']['train'].update(dataroot=str(data / 'Training'), gt_size=32, batch_size_per_gpu=2)
    opt['datasets']['val']['dataroot'] = str(data / 'Test')
    path = tmp_path / 'base.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def test_iterations_follow_equal_time(base):
    opt = yaml.safe_load(base.read_text())
    args = width.parse_args(['--base', str(base), '--output', 'x', '--widths', '8', '--minutes', '2'])
    fast = width.width_options(opt, 8, 0.25, args)
    slow = width.width_options(opt, 16, 1.0, args)
    assert (fast['train']['total_iter'], slow['train']['total_iter']) == (480, 120)
    assert fast['network_g']['num_feat'] == 8 and slow['network_g']['num_feat'] == 16
    assert fast['train']['scheduler']['periods'] == [480] and slow['val']['val_freq'] == 30  # 4 validations
    assert fast['name'].startswith('Width_f8_m2_') and opt['network_g']['num_feat'] != 8  # the base is not modified
    # Another speed is another run (the defect: a rerun restored the old scheduler and crashed).
    assert width.width_options(opt, 8, 0.5, args)['name'] != fast['name']
    assert width.width_options(opt, 8, 0.25, args)['name'] == fast['name']
    with pytest.raises(ValueError, match='width 8 must be positive'):
        width.width_options(opt, 8, 0.0, args)


def test_speeds_must_match_widths(base, capsys):
    with pytest.raises(SystemExit):
        width.parse_args(['--base', str(base), '--output', 'x', '--widths', '8', '16', '--minutes', '1',
                          '--seconds_per_iter', '0.5'])  # fmt: skip
    assert '--seconds_per_iter has 1 values for 2 --widths' in capsys.readouterr().err


def test_width_script_trains_and_reports(base, tmp_path):
    def clean() -> None:  # runs are named by their options: Width_f<w>_m0.05_<digest>
        for folder in (REPO / 'experiments').glob('Width_f[48]_m0.05_*'):
            shutil.rmtree(folder, ignore_errors=True)

    clean()  # left by an interrupted earlier run of this test
    out = tmp_path / 'width'
    # 3 s of training at 1.5 and 0.6 s per iteration: 2 and 5 iterations; with 2 validations the second run's fall
    # at iterations 2 and 4, and the one after training (iteration 5) reads as iteration 4 in the log
    args = [sys.executable, str(REPO / 'scripts/width_tradeoff.py'), '--base', str(base), '--output', str(out)]
    args += ['--widths', '4', '8', '--minutes', '0.05', '--seconds_per_iter', '1.5', '0.6', '--val_points', '2']
    try:
        run = subprocess.run(args, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        names = [next((out / 'options').glob(f'Width_f{w}_m0.05_*.yml')).stem for w in (4, 8)]
        iters = [yaml.safe_load((out / 'options' / f'{n}.yml').read_text())['train']['total_iter'] for n in names]
        assert iters == [2, 5]
        assert yaml.safe_load((out / 'width_speeds.yml').read_text()) == {names[0]: 1.5, names[1]: 0.6}
        table = (out / 'width.md').read_text()
        rows = {line.split('|')[1].strip(): line for line in table.splitlines() if line.startswith('| ')}
        for w, n in zip(('4', '8'), iters):
            cells = [c.strip() for c in rows[w].strip('|').split('|')]
            assert cells[3] == str(n)
            assert float(cells[5]) > 0 and '(at' not in cells[5]  # finished: no '(at N, unfinished)'
        assert [rows[w].split('|')[3].strip() for w in ('4', '8')] == ['1.500', '0.600']  # the speeds given
        assert float(rows['reference frame'].strip('|').split('|')[5]) > 0
        picture = cv2.imread(str(out / 'width_curves.png'))
        assert picture is not None and picture.shape[0] > 100
        again = subprocess.run(args, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0 and 'width 4: already trained' in again.stdout
    finally:
        clean()


def test_speeds_are_measured_at_each_width(base, capsys, monkeypatch):
    from scripts.measure import training_step

    timed = []
    measure = training_step.seconds_per_iteration
    spy = lambda opt, **kw: timed.append(opt) or measure(opt, **kw)  # noqa: E731
    monkeypatch.setattr(training_step, 'seconds_per_iteration', spy)
    seconds = width.measure_speeds(base, [4, 8], iters=1)
    assert [opt['network_g']['num_feat'] for opt in timed] == [4, 8]
    assert len(seconds) == 2 and all(0 < s < 60 for s in seconds)
    assert 'width 4:' in capsys.readouterr().out


def test_a_base_the_runs_cannot_use_is_refused_before_training(base, tmp_path, capsys):
    opt = yaml.safe_load(base.read_text())
    del opt['val']
    (tmp_path / 'noval.yml').write_text(yaml.safe_dump(opt))
    args = ['--base', str(tmp_path / 'noval.yml'), '--output', str(tmp_path / 'w'), '--widths', '4', '--minutes', '1']
    assert width.main([*args, '--seconds_per_iter', '1.0']) == 1
    assert 'noval.yml: val:val_freq: missing; training validates this often' in capsys.readouterr().err
    assert not (tmp_path / 'w').exists()
    typo = yaml.safe_load(base.read_text())
    typo['train']['precison'] = 'bf16'  # checked as training checks it, before any run starts
    (tmp_path / 'typo.yml').write_text(yaml.safe_dump(typo))
    args[1] = str(tmp_path / 'typo.yml')
    assert width.main([*args, '--seconds_per_iter', '1.0']) == 1
    assert 'train:precison: unknown option (did you mean precision?)' in capsys.readouterr().err
    assert not (tmp_path / 'w').exists()
    del opt['network_g']['num_feat']
    assert width.check_base(opt, Path('b.yml')) == 'b.yml: network_g has no num_feat, the width the runs change.'


def test_scaled_sets_are_scored_after_one_global_scale():
    opt = yaml.safe_load((REPO / 'options/train/LFFNet/train_LFFNet_RealHDR.yml').read_text())
    assert width.column_metrics(opt) == {
        'sim_kalantari': 'psnr_mu',
        'sim_handheld': 'psnr_mu_scaled',
        'memorial': 'psnr_mu_scaled',
    }
