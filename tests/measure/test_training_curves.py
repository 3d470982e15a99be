"""Training-log parsing (BasicSR 1.4.2's log format), OpenCV line charts and scripts/plot_training_curves.py."""

import importlib
import math
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from scripts.measure.plot import PALETTE, Series, grid, line_chart, nice_ticks
from scripts.measure.training_log import find_training_log, parse_experiment_logs, parse_training_log

T0 = datetime(2026, 1, 2, 3, 4, 5)


def _stamp(seconds: float) -> str:
    moment = T0 + timedelta(seconds=seconds)
    return moment.strftime('%Y-%m-%d %H:%M:%S,') + f'{moment.microsecond // 1000:03d}'


def write_log(path: Path, name: str = 'toy', total_iter: int = 250, print_freq: int = 30, val_freq: int = 100) -> Path:
    """A log as BasicSR writes it: options dump, start line, iteration lines, validations, a final validation."""
    lines = [
        f'{_stamp(0)} INFO: ',
        f'  name: {name}',
        '  train:[',
        f'    total_iter: {total_iter}',
        '  ]',
        '  val:[',
        f'    val_freq: {float(val_freq)}',
        '  ]',
        f'{_stamp(1)} INFO: Start training from epoch: 0, iter: 0',
    ]

    def validation(seconds: float, iteration: int) -> list:
        psnr = 20 + iteration / 50
        return [
            f'{_stamp(seconds)} INFO: Validation demo_test',
            f'\t # psnr_mu: {psnr:.4f}\tBest: {psnr:.4f} @ {iteration} iter',
            f'\t # pu21_psnr: {psnr - 5:.4f}\tBest: {psnr - 5:.4f} @ {iteration} iter',
            '',
            f'{_stamp(seconds)} INFO: Reference-frame baseline on demo_test (its HDR-domain image as the output): '
            'psnr_mu: 21.5000, pu21_psnr: 16.2500',
        ]

    for iteration in range(1, total_iter + 1):
        seconds = 1 + 2 * iteration
        if iteration % print_freq == 0:
            loss = 1.0 / iteration
            lines.append(
                f'{_stamp(seconds)} INFO: [{name[:5]}..][epoch:  0, iter: {iteration:8,d}, lr:(1.000e-03,)] '
                f'[eta: 0:01:00, time (data): 2.000 (0.001)] l_l1: {loss:.4e} l_msc: {2 * loss:.4e} '
                f'l_total: {3 * loss:.4e} '
            )
        if iteration % val_freq == 0:
            lines += validation(seconds + 0.5, iteration)
    lines.append(f'{_stamp(2 * total_iter + 2)} INFO: End of training. Time consumed: 0:08:22')
    lines += validation(2 * total_iter + 3, total_iter) + validation(2 * total_iter + 4, total_iter)
    path.write_text('\n'.join(lines) + '\n')
    return path


def test_parse_losses_validations_iterations_and_wall_time(tmp_path):
    log = parse_training_log(write_log(tmp_path / 'train_toy_20260102_030405.log'))
    assert log.name == 'toy' and log.val_freq == 100 and log.total_iter == 250
    assert [p[0] for p in log.losses['l_total']] == list(range(30, 251, 30))
    assert log.losses['l_msc'][0][1] == pytest.approx(2 / 30, rel=1e-4)
    assert log.lr[0] == (30, 1e-3)
    points = log.validation['demo_test']['psnr_mu']
    # Logged at 90 and 180 (print_freq 30 does not divide val_freq 100): read as 100 and 200; the final
    # validation at total_iter 250 is kept once although BasicSR logs it twice.
    assert [p[0] for p in points] == [100, 200, 250]
    assert [p[2] for p in points] == pytest.approx([22.0, 24.0, 25.0])
    assert [p[1] for p in points] == pytest.approx([200.5, 400.5, 503.0])  # seconds since the start line
    assert log.baselines == {'demo_test': {'psnr_mu': 21.5, 'pu21_psnr': 16.25}}


def test_resumed_run_joins_its_logs(tmp_path):
    """A run stopped after iteration 150 and resumed from its checkpoint at 100: two logs, one curve."""
    first = write_log(tmp_path / 'full.log').read_text().splitlines()
    cut = next(i for i, line in enumerate(first) if line.startswith(_stamp(1 + 2 * 150)))  # the line at iteration 150
    (tmp_path / 'train_toy_20260102_030405.log').write_text('\n'.join(first[: cut + 1]) + '\n')
    resumed = [
        f'{_stamp(1000)} INFO: ',
        '  name: toy',
        '    total_iter: 250',
        '    val_freq: 100.0',
        f'{_stamp(1001)} INFO: Start training from epoch: 0, iter: 100',
        f'{_stamp(1101)} INFO: [toy..][epoch:  0, iter:      200, lr:(5.000e-04,)] [eta: 0:00:10, time (data): '
        '1.000 (0.001)] l_l1: 1.0000e-02 l_total: 3.0000e-02',
        f'{_stamp(1102)} INFO: Validation demo_test',
        '\t # psnr_mu: 30.0000\tBest: 30.0000 @ 200 iter',
        f'{_stamp(1151)} INFO: [toy..][epoch:  0, iter:      250, lr:(1.000e-04,)] [eta: 0:00:00, time (data): '
        '1.000 (0.001)] l_l1: 5.0000e-03 l_total: 1.5000e-02',
        f'{_stamp(1152)} INFO: Validation demo_test',
        '\t # psnr_mu: 31.0000\tBest: 31.0000 @ 250 iter',
    ]
    (tmp_path / 'train_toy_20260102_040000.log').write_text('\n'.join(resumed) + '\n')
    newest = parse_training_log(tmp_path)
    assert [p[0] for p in newest.validation['demo_test']['psnr_mu']] == [200, 250]
    log = parse_experiment_logs(tmp_path)
    points = log.validation['demo_test']['psnr_mu']
    assert [p[0] for p in points] == [100, 200, 250]
    assert [p[2] for p in points] == pytest.approx([22.0, 30.0, 31.0])
    # The first log ran 300 s (start line at 1 s, last line at 301 s); the resumed one's times continue from there.
    assert [p[1] for p in points] == pytest.approx([200.5, 300 + 101, 300 + 151])
    # Loss points after the checkpoint (iteration 120 and 150 of the first log) are replaced by the resumed run's.
    assert [p[0] for p in log.losses['l_total']] == [30, 60, 90, 200, 250]
    assert log.duration == pytest.approx(300 + 151) and log.start_iter == 0
    with pytest.raises(FileNotFoundError, match='train_\\*.log'):
        parse_experiment_logs(tmp_path / 'nothing')


def test_find_log_in_an_experiment_folder_and_refuse_other_files(tmp_path):
    write_log(tmp_path / 'train_toy_20260101_000000.log')
    newest = write_log(tmp_path / 'train_toy_20260102_000000.log')
    assert find_training_log(tmp_path) == newest
    with pytest.raises(FileNotFoundError, match='train_\\*.log'):
        find_training_log(tmp_path / 'missing')
    other = tmp_path / 'notes.txt'
    other.write_text('hello\n')
    with pytest.raises(ValueError, match='BasicSR training log'):
        parse_training_log(other)


def test_nice_ticks_cover_the_range_in_round_steps():
    ticks = nice_ticks(0.13, 9.7)
    assert ticks[0] <= 0.13 and ticks[-1] >= 9.7
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0]) and steps[0] in (1, 2, 5)
    assert nice_ticks(3, 3)[0] <= 3 <= nice_ticks(3, 3)[-1]
    with pytest.raises(ValueError, match='finite'):
        nice_ticks(0, math.inf)


def test_line_chart_draws_each_series_in_its_colour():
    chart = line_chart(
        [Series('a', [0, 1, 2], [1, 2, 3]), Series('b', [0, 1, 2], [3, float('nan'), 1])],
        'title',
        'x',
        hlines=[('baseline', 2.0)],
        size=(200, 300),
    )
    assert chart.shape == (200, 300, 3) and chart.dtype == np.uint8
    for color in PALETTE[:2]:
        assert (np.abs(chart.astype(int) - color).sum(axis=2) == 0).sum() > 20, color
    assert (chart == 255).all(axis=2).mean() > 0.5  # mostly white background
    log_chart = line_chart([Series('loss', [1, 2, 3], [1.0, 0.1, -1.0])], log_y=True, size=(200, 300))
    assert (np.abs(log_chart.astype(int) - PALETTE[0]).sum(axis=2) == 0).any()  # the non-positive point is skipped
    with pytest.raises(ValueError, match='no room'):
        line_chart([], size=(40, 40))
    assert grid([chart, chart, chart], columns=2).shape == (400, 600, 3)


def test_script_plots_one_or_several_runs(tmp_path, capsys):
    script = importlib.import_module('scripts.measure.training_curves')
    run_a = tmp_path / 'a'
    run_b = tmp_path / 'b'
    run_a.mkdir()
    run_b.mkdir()
    write_log(run_a / 'train_a_20260102_030405.log', name='a')
    write_log(run_b / 'train_b_20260102_030405.log', name='b', total_iter=300)
    out = tmp_path / 'curves.png'
    script.main([str(run_a), '--output', str(out)])
    single = cv2.imread(str(out))
    assert single.shape == (2 * 360, 2 * 560, 3)  # losses, psnr_mu, pu21_psnr in a 2-column grid
    with pytest.raises(FileExistsError, match='--overwrite'):
        script.main([str(run_a), '--output', str(out)])
    script.main([str(run_a), str(run_b), '--metrics', 'psnr_mu', '--wall_time', '--output', str(out), '--overwrite'])
    assert cv2.imread(str(out)).shape == (2 * 360, 2 * 560, 3)  # losses, psnr_mu vs iteration and vs time
    assert 'wrote' in capsys.readouterr().out
    with pytest.raises(ValueError, match='none is in the logs'):
        script.main([str(run_a), '--metrics', 'lpips', '--output', str(tmp_path / 'x.png')])
    with pytest.raises(SystemExit):
        script.main([str(run_a), str(run_b), '--labels', 'only-one', '--output', str(tmp_path / 'y.png')])
