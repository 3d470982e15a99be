"""Plot training curves from BasicSR training logs into one PNG: losses and validation metrics against iterations
(and, with --wall_time, the metrics against wall-clock time).

Usage:
    python scripts/plot_training_curves.py LOG_OR_EXPERIMENT [...] --output curves.png [--labels NAME ...]
        [--metrics psnr_mu ...] [--losses l_total ...] [--wall_time] [--columns 2] [--overwrite]

    # one run: every loss and every validation metric
    python scripts/plot_training_curves.py experiments/LFFNet_demo --output LFFNet_demo_curves.png
    # several runs on shared axes, PSNR-mu against iterations and wall time
    python scripts/plot_training_curves.py experiments/AHDRNet_demo experiments/LFFNet_demo \\
        --metrics psnr_mu --wall_time --output compare.png

Each argument is a log file or an experiment folder (its newest ``train_*.log``). Panels: the losses (log scale;
with one run every logged ``l_*``, with several the ``l_total`` of each, or those named by --losses), then one panel
per validation dataset and metric (the reference-frame baseline, when the log has it, as a dashed line), then with
--wall_time the same metrics against minutes since the start of training. Iterations of the validations are read as
``scripts.measure.training_log`` explains. The PNG is never overwritten without --overwrite.
"""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from lffnet_arch.commands.arguments import add_output, add_overwrite
from lffnet_arch.fileio.image import imwrite_atomic
from scripts.measure.plot import Series, grid, line_chart
from scripts.measure.training_log import TrainingLog, parse_experiment_logs, parse_training_log


def loss_chart(logs: Sequence[TrainingLog], labels: Sequence[str], losses: Optional[Sequence[str]]) -> np.ndarray:
    """Losses against iterations, log scale."""
    series = []
    for log, label in zip(logs, labels):
        keys = losses or (sorted(log.losses) if len(logs) == 1 else ['l_total'])
        for key in keys:
            points = log.losses.get(key, [])
            name = key if len(logs) == 1 else f'{label} {key}'
            series.append(Series(name, [p[0] for p in points], [p[1] for p in points]))
    return line_chart(series, 'training loss (log scale)', 'iteration', log_y=True)


def metric_charts(
    logs: Sequence[TrainingLog], labels: Sequence[str], metrics: Optional[Sequence[str]], wall_time: bool
) -> list:
    """One chart per (dataset, metric) against iterations, and with ``wall_time`` one against minutes."""
    keys = []
    for log in logs:
        for dataset, values in log.validation.items():
            for metric in values:
                if (metrics is None or metric in metrics) and (dataset, metric) not in keys:
                    keys.append((dataset, metric))
    charts = []
    for axis in ('iteration', 'minutes') if wall_time else ('iteration',):
        for dataset, metric in keys:
            series = []
            for log, label in zip(logs, labels):
                points = log.validation.get(dataset, {}).get(metric, [])
                xs = [p[0] for p in points] if axis == 'iteration' else [p[1] / 60 for p in points]
                series.append(Series(label, xs, [p[2] for p in points]))
            baselines = [log.baselines[dataset][metric] for log in logs if metric in log.baselines.get(dataset, {})]
            baseline = baselines[0] if baselines else None
            hlines = [('reference frame', baseline)] if baseline is not None else []
            xlabel = 'iteration' if axis == 'iteration' else 'wall time since the start of training (min)'
            charts.append(line_chart(series, f'{metric} on {dataset}', xlabel, hlines=hlines))
    return charts


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('logs', nargs='+', type=Path, help='training logs or experiment folders (their logs joined)')
    add_output(parser, 'PNG to write')
    parser.add_argument('--labels', nargs='+', help='legend names of the runs (default: the experiment names)')
    parser.add_argument('--metrics', nargs='+', help='validation metrics to plot (default: all in the logs)')
    parser.add_argument('--losses', nargs='+', help='losses to plot (default: all of one run, l_total of several)')
    parser.add_argument('--wall_time', action='store_true', help='also plot the metrics against wall-clock time')
    parser.add_argument('--columns', type=int, default=2, help='charts per row (default: 2)')
    add_overwrite(parser, 'the --output file')
    args = parser.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.logs):
        parser.error(f'--labels: expected {len(args.logs)} names (one per log), got {len(args.labels)}.')
    if args.columns < 1:
        parser.error(f'--columns must be >= 1, got {args.columns}.')
    if args.output.suffix.lower() != '.png':
        parser.error(f'--output must be a .png file, got {args.output}.')
    return args


def main(argv: Optional[Sequence[str]] = None) -> Path:
    """Command-line entry point; returns the PNG written."""
    args = parse_args(argv)
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f'{args.output} already exists; pass --overwrite to replace it.')
    # An experiment folder joins the logs of a resumed run; a file is read alone.
    logs = [parse_experiment_logs(path) if path.is_dir() else parse_training_log(path) for path in args.logs]
    labels = args.labels or [log.name for log in logs]
    charts = [loss_chart(logs, labels, args.losses)] + metric_charts(logs, labels, args.metrics, args.wall_time)
    if args.metrics and len(charts) == 1:
        found = sorted({m for log in logs for values in log.validation.values() for m in values})
        raise ValueError(f'--metrics {" ".join(args.metrics)}: none is in the logs, which have {found}.')
    args.output.parent.mkdir(parents=True, exist_ok=True)
    imwrite_atomic(args.output, grid(charts, args.columns)[..., ::-1])
    print(f'wrote {args.output} ({len(charts)} charts)')
    return args.output
