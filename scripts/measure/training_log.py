"""Read a BasicSR training log (``experiments/<name>/train_<name>_<time>.log``) into curves.

What BasicSR 1.4.2 writes and what is read from it:

- the options dump at the top: ``name``, ``val_freq`` and ``total_iter``;
- ``Start training from epoch: E, iter: I``: the start of the wall clock (a resumed run starts at iteration I);
- one line per ``logger.print_freq`` iterations: ``[<name>..][epoch: E, iter: N, lr:(...)] [eta: ..., time (data):
  ...] l_x: v l_y: v ...``: the learning rate and every logged loss at iteration N;
- after each validation, ``Validation <dataset>`` followed by one ``# <metric>: <value>\\tBest: ...`` line per metric,
  and, with ``val.report_baseline``, ``Reference-frame baseline on <dataset> ...: <metric>: <value>, ...``.

A validation's iteration is the last logged training iteration rounded up to a multiple of ``val_freq`` (capped at
``total_iter``), since the validation message carries none; the validation BasicSR repeats after the last
iteration replaces the one logged at that iteration. Wall time is seconds since the start line, read from the
timestamps (validation time included).
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional, Union

__all__ = ['TrainingLog', 'find_training_log', 'parse_experiment_logs', 'parse_training_log']

_STAMP = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+: (.*)$')
_TRAIN = re.compile(r'\[epoch:\s*\d+, iter:\s*([\d,]+), lr:\(([^)]*)\)\]\s*\[[^\]]*\]\s*(.*)$')
_PAIR = re.compile(r'(\S+): ([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))')
_METRIC = re.compile(r'^\s*# (\S+): ([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))')
_BASELINE = re.compile(r'^Reference-frame baseline on (\S+) .*?: (\S+: .*)$')
_START = re.compile(r'^Start training from epoch: \d+, iter: (\d+)')
_OPTION = re.compile(r'^\s*(name|val_freq|total_iter): (\S+)\s*$')


@dataclass
class TrainingLog:
    """Curves of one training log.

    Attributes:
        path (Path): The log file.
        name (str): The experiment's ``name`` (the file stem when the options dump is missing).
        losses (dict[str, list[tuple[int, float]]]): ``l_<name>`` -> (iteration, value) per logged iteration.
        lr (list[tuple[int, float]]): (iteration, learning rate of the first parameter group).
        validation (dict[str, dict[str, list[tuple[int, float, float]]]]): dataset -> metric -> (iteration,
            wall seconds, value).
        baselines (dict[str, dict[str, float]]): dataset -> metric -> the reference-frame baseline.
        val_freq (int, optional): ``val.val_freq`` of the options dump.
        total_iter (int, optional): ``train.total_iter`` of the options dump.
        start_iter (int): The iteration the log's run started (resumed) from.
        duration (float): Seconds from the start line to the last timestamp (0 without a start line).
    """

    path: Path
    name: str
    losses: dict = field(default_factory=dict)
    lr: list = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)
    val_freq: Optional[int] = None
    total_iter: Optional[int] = None
    start_iter: int = 0
    duration: float = 0.0


def find_training_log(path: Union[str, Path]) -> Path:
    """``path`` itself if it is a file, else the newest ``train_*.log`` in the experiment folder ``path``.

    Raises:
        FileNotFoundError: Neither a file nor a folder with a ``train_*.log``.
    """
    path = Path(path)
    if path.is_file():
        return path
    logs = sorted(path.glob('train_*.log')) if path.is_dir() else []
    if not logs:
        raise FileNotFoundError(f'{path}: expected a BasicSR training log or an experiment folder holding train_*.log.')
    return logs[-1]


def _validation_iter(last_iter: int, log: TrainingLog) -> int:
    if not log.val_freq:
        return last_iter
    rounded = math.ceil(last_iter / log.val_freq) * log.val_freq
    return min(rounded, log.total_iter) if log.total_iter else rounded


def _add_point(points: list, point: tuple) -> None:
    if points and points[-1][0] == point[0]:
        points[-1] = point  # BasicSR validates again after the last iteration: keep one point per iteration
    else:
        points.append(point)


def _number(text: str) -> Optional[int]:
    try:
        return int(float(text))
    except ValueError:
        return None


def parse_training_log(path: Union[str, Path]) -> TrainingLog:
    """Parse a BasicSR training log (see the module docstring).

    Args:
        path (str | Path): The log, or an experiment folder (its newest ``train_*.log``).

    Returns:
        TrainingLog: The curves.

    Raises:
        FileNotFoundError: No log at ``path``.
        ValueError: The file has no training iteration and no validation (not a BasicSR training log).
    """
    path = find_training_log(path)
    log = TrainingLog(path=path, name=path.stem)
    start: Optional[datetime] = None
    now: Optional[datetime] = None
    last_iter = 0
    dataset: Optional[str] = None
    for line in path.read_text(encoding='utf-8', errors='replace').splitlines():
        stamped = _STAMP.match(line)
        if not stamped:
            metric = _METRIC.match(line)
            if metric and dataset is not None:
                seconds = (now - start).total_seconds() if start and now else math.nan
                points = log.validation.setdefault(dataset, {}).setdefault(metric.group(1), [])
                _add_point(points, (_validation_iter(last_iter, log), seconds, float(metric.group(2))))
                continue
            option = _OPTION.match(line)
            if option and start is None:
                key, value = option.groups()
                if key == 'name' and log.name == path.stem:
                    log.name = value
                elif key in ('val_freq', 'total_iter') and getattr(log, key) is None:
                    setattr(log, key, _number(value))
            continue
        now = datetime.strptime(stamped.group(1), '%Y-%m-%d %H:%M:%S,%f')
        message = stamped.group(2)
        dataset = None
        if start is not None:
            log.duration = (now - start).total_seconds()
        if _START.match(message):
            start, last_iter = now, int(_START.match(message).group(1))
            log.start_iter = last_iter
        elif message.startswith('Validation '):
            dataset = message.split(' ', 1)[1].strip()
        elif _BASELINE.match(message):
            name, values = _BASELINE.match(message).groups()
            log.baselines[name] = {key: float(value) for key, value in _PAIR.findall(values)}
        elif _TRAIN.search(message):
            iteration, lrs, rest = _TRAIN.search(message).groups()
            last_iter = int(iteration.replace(',', ''))
            first_lr = lrs.split(',')[0].strip()
            if first_lr:
                log.lr.append((last_iter, float(first_lr)))
            for key, value in _PAIR.findall(rest):
                log.losses.setdefault(key, []).append((last_iter, float(value)))
    if not log.losses and not log.validation:
        raise ValueError(f'{path}: no training iteration or validation found; expected a BasicSR training log.')
    return log


def parse_experiment_logs(folder: Union[str, Path]) -> TrainingLog:
    """One run's curves from every ``train_*.log`` of its experiment folder, oldest first.

    A run resumed with ``--auto_resume`` writes a new log from the resumed iteration on. The logs are joined in
    order: points a later log redoes (from its start iteration on) replace the earlier ones, and its wall times
    continue from the training time of the logs before it (time between runs not counted). ``path`` is the newest
    log.

    Raises:
        FileNotFoundError: The folder holds no ``train_*.log``.
        ValueError: None of them holds a training iteration or validation (logs without are skipped).
    """
    folder = Path(folder)
    paths = sorted(folder.glob('train_*.log')) if folder.is_dir() else []
    if not paths:
        raise FileNotFoundError(f'{folder}: expected an experiment folder holding train_*.log.')
    merged: Optional[TrainingLog] = None
    offset = 0.0
    for path in paths:
        try:
            part = parse_training_log(path)
        except ValueError:  # a run stopped before its first logged iteration: nothing to join
            continue
        if merged is None:
            merged, offset = part, part.duration
            continue
        keep = part.start_iter
        merged.lr = [p for p in merged.lr if p[0] <= keep] + part.lr
        for key, points in part.losses.items():
            merged.losses[key] = [p for p in merged.losses.get(key, []) if p[0] <= keep] + points
        for dataset, metrics in part.validation.items():
            for metric, points in metrics.items():
                old = merged.validation.setdefault(dataset, {}).get(metric, [])
                merged_points: list = []
                joined = [p for p in old if p[0] <= keep] + [(p[0], p[1] + offset, p[2]) for p in points]
                for point in joined:
                    _add_point(merged_points, point)
                merged.validation[dataset][metric] = merged_points
        merged.baselines.update(part.baselines)
        merged.val_freq = part.val_freq or merged.val_freq
        merged.total_iter = part.total_iter or merged.total_iter
        merged.path = part.path
        offset += part.duration
    if merged is None:
        raise ValueError(
            f'{folder}: none of its logs has a training iteration or validation: {[p.name for p in paths]}.'
        )
    merged.duration = offset
    return merged
