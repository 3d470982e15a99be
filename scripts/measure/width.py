"""The width trade-off: networks of several widths, each trained for the same wall time, scored on validation.

Usage:
    # measure each width's seconds per iteration here (nothing else running), then train each for 8 minutes' worth
    python scripts/width_tradeoff.py --base options/train/LFFNet/train_LFFNet_RealHDR.yml --widths 16 32 48 \\
        --minutes 8 --output results/width
    # the same with speeds measured before (e.g. by scripts/profile_training.py), so the runs may go anywhere
    python scripts/width_tradeoff.py --base options/train/LFFNet/train_LFFNet_RealHDR.yml --widths 16 32 48 \\
        --minutes 8 --seconds_per_iter 0.363 0.654 1.056 --output results/width

A wider network learns more per iteration and runs fewer iterations in the same time; which wins depends on the
budget. Each width trains the base options (data, crop, batch, losses, optimiser, precision) with ``num_feat`` set
to the width and ``minutes x 60 / seconds_per_iter`` iterations, its cosine schedule spanning them, and validates
``--val_points`` times. The iteration counts are fixed before training from the speeds, so the runs themselves can
share the machine with other work without changing their results (only their wall time).

Each run is ``python lffnet_arch/train.py -opt <output>/options/<name>.yml --auto_resume``, like the Table 2 runs:
the same command continues an interrupted measurement, a finished run is reused and one finished with other options
is refused. The report, ``<output>/width.md`` (parameters, seconds per iteration, iterations, the final validation
of every set beside the reference frame's) and ``<output>/width_curves.png`` (validation PSNR-mu against equal-time
minutes), reads the runs' logs.
"""

import argparse
import copy
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import yaml
from basicsr.archs import build_network

from lffnet_arch.commands.arguments import add_output
from lffnet_arch.fileio.atomic import atomic_path
from lffnet_arch.fileio.image import imwrite_atomic
from scripts.measure.plot import Series, grid, line_chart
from scripts.measure.quality import val_dataset
from scripts.measure.table2 import REPO, options_digest, read_base, train_all
from scripts.measure.training_log import parse_experiment_logs


def column_metrics(opt: dict) -> dict:
    """Each validation set's table metric: PSNR-mu after one global scale for sets marked ``scoring: scaled`` (no
    absolute scale, as scripts/evaluate_quality.py reads them), PSNR-mu otherwise."""
    datasets = opt.get('datasets', {})
    sets = (value for key, value in datasets.items() if key.startswith('val') and isinstance(value, dict))
    return {d['name']: 'psnr_mu_scaled' if val_dataset(d)[1] else 'psnr_mu' for d in sets if 'name' in d}


def run_name(width: int, minutes: float) -> str:
    return f'Width_f{width}_m{minutes:g}'


def width_options(base: dict, width: int, seconds_per_iter: float, args: argparse.Namespace) -> dict:
    """The base options at ``width`` channels with the iterations ``args.minutes`` give at ``seconds_per_iter``."""
    if seconds_per_iter <= 0:
        raise ValueError(f'seconds per iteration of width {width} must be positive, got {seconds_per_iter}.')
    iters = max(1, round(args.minutes * 60 / seconds_per_iter))
    opt = copy.deepcopy(base)
    opt['name'] = run_name(width, args.minutes)
    opt['network_g']['num_feat'] = width
    train_opt = opt['train']
    train_opt['total_iter'] = iters
    if train_opt.get('scheduler', {}).get('type') == 'CosineAnnealingRestartLR':
        train_opt['scheduler']['periods'] = [iters]
        train_opt['scheduler']['restart_weights'] = [1]
    data = opt['datasets']['train']
    if 'num_samples' in data:  # one pass of new brackets over the run, as in the base options
        data['num_samples'] = iters * data['batch_size_per_gpu']
    val_freq = max(1, iters // args.val_points)
    opt['val']['val_freq'] = val_freq
    opt['val']['save_img'] = False
    opt['logger']['save_checkpoint_freq'] = val_freq
    # The log's validation lines carry no iteration: a loss line printed at each validation dates them.
    opt['logger']['print_freq'] = min(int(opt['logger'].get('print_freq', val_freq)), val_freq)
    opt['name'] = f'{opt["name"]}_{options_digest(opt)}'  # named by its full options: another speed, another run
    return opt


def latest_run(given: dict, width: int, minutes: float) -> Optional[str]:
    """The name of the last run given to ``width`` (the speeds file lists runs in the order they were started)."""
    names = [name for name in given if name.startswith(f'{run_name(width, minutes)}_')]
    return names[-1] if names else None


def check_base(base: dict, path: Path) -> Optional[str]:
    """Why ``base`` cannot drive the width trade-off, or None."""
    if not isinstance(base.get('network_g'), dict) or 'num_feat' not in base['network_g']:
        return f'{path}: network_g has no num_feat, the width the runs change.'
    if not isinstance(base.get('val'), dict) or not any(key.startswith('val') for key in base.get('datasets', {})):
        return f'{path}: the runs are scored by validation; expected a val section and a datasets.val* set.'
    if not isinstance(base.get('logger'), dict):
        return f'{path}: expected a logger section (print_freq, save_checkpoint_freq).'
    return None


def speeds_path(output: Path) -> Path:
    """The seconds per iteration each run was given, by run name (written before training, read by the report)."""
    return output / 'width_speeds.yml'


def read_speeds(output: Path) -> dict:
    path = speeds_path(output)
    return (yaml.safe_load(path.read_text(encoding='utf-8')) or {}) if path.is_file() else {}


def measure_speeds(base_path: Path, widths: list, iters: int = 6) -> list:
    """Seconds per training iteration of each width, measured here (two warm-up and ``iters`` timed iterations);
    relative data paths are read against the checkout, as the runs read them."""
    from lffnet_arch.commands.options import parse_options
    from scripts.measure.training_step import seconds_per_iteration

    speeds = []
    for width in widths:
        argv = ['-opt', str(base_path), '--force_yml', f'network_g:num_feat={width}']
        opt, _ = parse_options(str(REPO), is_train=True, argv=argv)  # paths read as the runs read them
        speeds.append(seconds_per_iteration(opt, iters=iters))
        print(f'width {width}: {speeds[-1]:.3f} s per iteration', flush=True)
    return speeds


def report(args: argparse.Namespace, output: Path) -> list:
    runs, unreadable = {}, {}
    given = read_speeds(output)
    for width in args.widths:
        name = latest_run(given, width, args.minutes)
        if name is None:
            continue  # not run yet
        folder = REPO / 'experiments' / name
        try:
            log = parse_experiment_logs(folder)
        except (FileNotFoundError, ValueError):
            continue  # not run yet
        stored = folder / f'{name}.yml'
        try:
            opt = yaml.safe_load(stored.read_text(encoding='utf-8'))
            iters = opt['train']['total_iter']
        except (OSError, yaml.YAMLError, TypeError, KeyError) as error:
            unreadable[width] = f'{stored} unreadable ({type(error).__name__})'
            continue
        finished = (folder / 'models' / 'net_g_latest.pth').is_file()  # written when training ends
        runs[width] = (log, opt, iters, finished)
    # Every validation set of the runs, in log order, scored with its column's metric (PSNR-mu by default).
    sets = list(dict.fromkeys(name for log, *_ in runs.values() for name in log.validation))
    scored = {name: m for _, opt, *_ in runs.values() for name, m in column_metrics(opt).items()}
    metric = {name: scored.get(name, 'psnr_mu') for name in sets}
    rows, series, baselines = [], [], {}
    for width in args.widths:
        if width not in runs:
            rows.append(f'| {width} | {unreadable.get(width, "not run yet")} |' + ' |' * (3 + len(sets)))
            continue
        log, opt, iters, finished = runs[width]
        seconds = given.get(opt['name'], args.minutes * 60 / iters)
        params = sum(p.numel() for p in build_network(dict(opt['network_g'])).parameters())
        cells, hours = [], 0.0
        for name in sets:
            points = log.validation.get(name, {}).get(metric[name], [])
            if log.baselines.get(name, {}).get(metric[name]) is not None:
                baselines[name] = log.baselines[name][metric[name]]
            if not points:
                cells.append('')
                continue
            last_iter, last_seconds, value = points[-1]
            hours = max(hours, last_seconds / 3600)
            cells.append(f'{value:.2f}' + ('' if finished else f' (at {last_iter:,}, unfinished)'))
            if name == sets[0]:
                series.append(Series(f'width {width}', [p[0] * seconds / 60 for p in points], [p[2] for p in points]))
        rows.append(f'| {width} | {params:,} | {seconds:.3f} | {iters:,} | {hours:.2f} | ' + ' | '.join(cells) + ' |')
    lines = [
        f'Width trade-off at equal time: {args.minutes:g} minutes of training per width at its seconds per '
        'iteration; the last validation of each set (dB).',
        '',
        '| Width | Parameters | s / iteration | Iterations | Hours (this run) | '
        + ' | '.join(f'{name} {metric[name]}' for name in sets)
        + ' |',
        '|---:|---:|---:|---:|---:|' + '---:|' * len(sets),
        *rows,
    ]
    if baselines:
        lines.append(
            '| reference frame | | | | | '
            + ' | '.join(f'{baselines[n]:.2f}' if n in baselines else '' for n in sets)
            + ' |'
        )
    with atomic_path(output / 'width.md') as tmp:
        tmp.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    if series:
        hlines = [('reference frame', baselines[sets[0]])] if sets[0] in baselines else []
        chart = line_chart(
            series, f'{metric[sets[0]]} on {sets[0]} (dB)', 'minutes at the measured speed', hlines=hlines
        )
        imwrite_atomic(output / 'width_curves.png', np.ascontiguousarray(grid([chart], columns=1)[..., ::-1]))
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--base', type=Path, required=True, help='options file of the runs (data, losses, budget)')
    add_output(parser, 'folder for the options, console logs and report')
    parser.add_argument('--widths', type=int, nargs='+', required=True, help='num_feat of each run')
    parser.add_argument('--minutes', type=float, required=True, help='training time of every width, in minutes')
    parser.add_argument(
        '--seconds_per_iter',
        type=float,
        nargs='+',
        help='measured seconds per iteration of each width, in the order of --widths (default: measure here)',
    )
    parser.add_argument('--val_points', type=int, default=4, help='validations per run (default: 4)')
    parser.add_argument('--report_only', action='store_true', help='do not train; report the runs made so far')
    args = parser.parse_args(argv)
    if min(args.widths) < 1 or args.minutes <= 0 or args.val_points < 1:
        parser.error('--widths, --minutes and --val_points must be positive')
    if args.seconds_per_iter is not None:
        if len(args.seconds_per_iter) != len(args.widths):
            parser.error(
                f'--seconds_per_iter has {len(args.seconds_per_iter)} values for {len(args.widths)} --widths; '
                'give one per width, in the same order'
            )
        if min(args.seconds_per_iter) <= 0:
            parser.error('--seconds_per_iter values must be positive')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    base = read_base(args.base)
    if base is None:
        return 1
    problem = check_base(base, args.base)
    if problem:
        print(f'Error: {problem}', file=sys.stderr)
        return 1
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        speeds = args.seconds_per_iter or measure_speeds(args.base, args.widths)
        runs = [(f'width {w}', width_options(base, w, seconds, args)) for w, seconds in zip(args.widths, speeds)]
        given = read_speeds(args.output)
        for (_, opt), seconds in zip(runs, speeds):  # this run's names last: the report reads the latest
            given.pop(opt['name'], None)
            given[opt['name']] = float(seconds)
        with atomic_path(speeds_path(args.output)) as tmp:
            tmp.write_text(yaml.safe_dump(given, sort_keys=False), encoding='utf-8')
        if train_all(runs, args.output) != 0:
            return 1
    print('\n'.join(report(args, args.output)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
