"""Where the time of a training iteration goes: data, forward, losses, backward and optimizer, per configuration.

Usage:
    python scripts/profile_training.py --opt options/train/LFFNet/train_LFFNet_RealHDR.yml \\
        --configs contiguous channels_last bf16 channels_last_bf16 --iters 8 --output training_profile.md

The model, losses, optimizer and training data are those of the options file (its ``datasets.train`` through the
same loader and sampler as ``lffnet_arch/train.py``); the network trains for real, ``--warmup`` untimed and
``--iters`` timed iterations per configuration, and the configurations take turns (``--rounds``) so that a change in
machine load shows in all of them alike. Configurations:

- ``contiguous``: PyTorch's default memory format, float32 (``train.memory_format: contiguous``, the default);
- ``channels_last``: the network's weights channels-last, so every convolution runs channels-last
  (``train.memory_format: channels_last``);
- ``bf16`` and ``channels_last_bf16``: the same with the forward pass under autocast to bfloat16
  (``train.precision: bf16``; losses, weights, gradients and the RFFT blocks' FFTs stay float32), which pays off
  only on CPUs with bfloat16 instructions (AVX512-BF16 or AMX).

Printed as markdown: iterations per second and seconds per phase (``data`` is the time spent waiting for the
loader, so data prepared by workers while the step runs costs nothing there), the simulator's own cost per batch
measured in the main process, and, from the torch profiler over two more iterations, the share of the step taken by
operation groups: convolutions (forward and backward), DO-Conv kernel composition (``einsum``), FFTs (the RFFT
blocks' and the frequency loss's), elementwise and reduction work, and the optimizer (on the CPU: the profile records
CPU activity only). Run it from the repository root (relative data paths are read against the working directory)
while nothing else uses the machine.
"""

import argparse
import copy
import statistics
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch

from lffnet_arch.commands.arguments import add_output, add_threads
from lffnet_arch.fileio.atomic import atomic_path

# name -> (train.memory_format, train.precision)
CONFIGS = {
    'contiguous': ('contiguous', 'fp32'),
    'channels_last': ('channels_last', 'fp32'),
    'bf16': ('contiguous', 'bf16'),
    'channels_last_bf16': ('channels_last', 'bf16'),
}
PHASES = ('data', 'forward', 'losses', 'backward', 'optimizer')
# Operation groups of the profile: the first group whose pattern is in an op's name takes its self time.
GROUPS = OrderedDict(
    [
        ('DO-Conv composition', ('einsum', 'bmm')),
        ('FFT', ('fft',)),
        ('convolution', ('conv',)),
        ('optimizer', ('adam', '_foreach', 'addcdiv', 'lerp')),
    ]
)


def _build(opt: dict, config: str):
    """(model, loader iterator) for one configuration, seeded alike."""
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.models import build_model

    from lffnet_arch.data.sampler import EpochSampler

    opt = copy.deepcopy(opt)
    opt['train']['memory_format'], opt['train']['precision'] = CONFIGS[config]
    torch.manual_seed(0)
    model = build_model(opt)
    dataset_opt = opt['datasets']['train']
    dataset_opt.setdefault('seed', opt.get('manual_seed', 0))
    train_set = build_dataset(dataset_opt)
    sampler = EpochSampler(train_set, 1, 0, dataset_opt.get('dataset_enlarge_ratio', 1))
    loader = build_dataloader(train_set, dataset_opt, opt['num_gpu'], False, sampler, opt.get('manual_seed', 0))
    return model, _batches(loader, sampler), train_set


def _batches(loader, sampler):
    """The loader's batches, epoch after epoch."""
    epoch = 0
    while True:
        sampler.set_position(epoch, 0)
        yield from loader
        epoch += 1


def _clock(model) -> float:
    """perf_counter after the device has finished its queued work."""
    if model.device.type == 'cuda':
        torch.cuda.synchronize(model.device)
    return time.perf_counter()


def _timed_step(model, loader) -> dict:
    """One real training iteration, phase by phase, through HDRModel's own training_forward and training_losses;
    its finiteness check (a gradient norm) is counted with the optimizer."""
    times = {}
    start = _clock(model)
    data = next(loader)
    model.feed_data(data)
    times['data'] = _clock(model) - start
    model.optimizer_g.zero_grad()
    start = _clock(model)
    output = model.training_forward()
    times['forward'] = _clock(model) - start
    start = _clock(model)
    losses = model.training_losses(output)
    times['losses'] = _clock(model) - start
    start = _clock(model)
    losses['l_total'].backward()
    times['backward'] = _clock(model) - start
    start = _clock(model)
    model._check_finite(losses, 0)
    model.optimizer_g.step()
    times['optimizer'] = _clock(model) - start
    return times


def _profile_groups(model, loader, iterations: int = 2) -> 'OrderedDict[str, float]':
    """Share of the profiled self CPU time per operation group over ``iterations`` steps (data excluded)."""
    from torch.profiler import ProfilerActivity, profile

    batches = [next(loader) for _ in range(iterations)]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for data in batches:
            model.feed_data(data)
            model.optimizer_g.zero_grad()
            model.training_losses(model.training_forward())['l_total'].backward()
            model.optimizer_g.step()
    totals = OrderedDict((name, 0.0) for name in [*GROUPS, 'other (elementwise, reductions, copies)'])
    for event in prof.key_averages():
        name = event.key.lower()
        group = next((g for g, patterns in GROUPS.items() if any(p in name for p in patterns)), None)
        totals[group or 'other (elementwise, reductions, copies)'] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return OrderedDict((name, value / whole) for name, value in totals.items())


def simulator_seconds_per_batch(train_set, batch: int, batches: int = 2) -> float:
    """Seconds to make one batch in the main process (what the loader's workers do in the background)."""
    takes_epoch = getattr(train_set, 'takes_epoch', False)
    start = time.perf_counter()
    for index in range(batch * batches):
        index %= len(train_set)
        train_set[(0, index) if takes_epoch else index]
    return (time.perf_counter() - start) / batches


def seconds_per_iteration(opt: dict, iters: int = 6, warmup: int = 2) -> float:
    """Median seconds of one training iteration of ``opt`` as its own ``train.memory_format`` and
    ``train.precision`` configure it (``warmup`` untimed iterations first)."""
    train = opt.get('train', {})
    wanted = (train.get('memory_format', 'contiguous'), train.get('precision', 'fp32'))
    config = next((name for name, value in CONFIGS.items() if value == wanted), None)
    if config is None:
        raise ValueError(f'train.memory_format / train.precision {wanted} is not one of {list(CONFIGS.values())}.')
    model, loader, _ = _build(opt, config)
    for _ in range(warmup):
        _timed_step(model, loader)
    return statistics.median(sum(_timed_step(model, loader).values()) for _ in range(iters))


def run(opt: dict, configs: Sequence[str], iters: int, warmup: int, rounds: int) -> list:
    """The markdown lines of the profile."""
    built = {config: _build(opt, config) for config in configs}
    samples = {config: {phase: [] for phase in PHASES} for config in configs}
    for model, loader, _ in built.values():
        for _ in range(warmup):
            _timed_step(model, loader)
    per_round = max(1, iters // rounds)
    for _ in range(rounds):
        for config, (model, loader, _) in built.items():
            for _ in range(per_round):
                for phase, seconds in _timed_step(model, loader).items():
                    samples[config][phase].append(seconds)
    train_opt = opt['datasets']['train']
    batch, crop = train_opt['batch_size_per_gpu'], train_opt.get('gt_size')
    lines = [
        f'Training step of `{opt["name"]}` ({opt["network_g"]["type"]}, num_feat '
        f'{opt["network_g"].get("num_feat")}), batch {batch} of {crop} x {crop}, {train_opt.get("num_worker_per_gpu")} '
        f'data worker(s), torch {torch.__version__}, {torch.get_num_threads()} threads; median of '
        f'{per_round * rounds} timed iterations per configuration after {warmup} warm-up, in {rounds} alternating '
        'rounds.',
        '',
        '| Configuration | Iterations / s | s / iteration | ' + ' | '.join(PHASES) + ' |',
        '|---|---:|---:|' + '---:|' * len(PHASES),
    ]
    for config in configs:
        medians = {phase: statistics.median(values) for phase, values in samples[config].items()}
        step = sum(medians.values())
        cells = ' | '.join(f'{medians[phase]:.3f}' for phase in PHASES)
        lines.append(f'| {config} | {1 / step:.3f} | {step:.3f} | {cells} |')
    first = configs[0]
    model, loader, train_set = built[first]
    lines += [
        '',
        f'The dataset makes one batch in {simulator_seconds_per_batch(train_set, batch):.3f} s in the main process '
        '(the loader workers do this while the step runs).',
        '',
    ]
    for config in configs:
        model, loader, _ = built[config]
        shares = _profile_groups(model, loader)
        lines += [
            f'Share of the step (forward, losses, backward, optimizer) by operation, `{config}`, torch profiler '
            'self CPU time over 2 iterations:',
            '',
            '| Operations | Share |',
            '|---|---:|',
        ]
        lines += [f'| {name} | {share:.1%} |' for name, share in shares.items()] + ['']
    return lines


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--opt', type=Path, required=True, help='training options file')
    parser.add_argument(
        '--configs', nargs='+', default=['contiguous', 'bf16'], choices=list(CONFIGS), help='configurations to time'
    )
    parser.add_argument('--iters', type=int, default=8, help='timed iterations per configuration (default: 8)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations first (default: 2)')
    parser.add_argument('--rounds', type=int, default=2, help='alternating rounds (default: 2)')
    add_threads(parser)
    add_output(parser, 'also write the tables to this markdown file', required=False)
    args = parser.parse_args(argv)
    if min(args.iters, args.rounds) < 1 or args.warmup < 0:
        parser.error('--iters and --rounds must be positive and --warmup not negative')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    from lffnet_arch.commands.options import parse_options

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.opt.is_file():
        print(f'Error: options file {args.opt} not found.', file=sys.stderr)
        return 1
    # Relative paths in the options are read against the working directory, as the installed lffnet-train does.
    opt, _ = parse_options(str(Path.cwd()), is_train=True, argv=['-opt', str(args.opt)])
    if 'train' not in opt.get('datasets', {}):
        print(f'Error: {args.opt} has no datasets.train section.', file=sys.stderr)
        return 1
    text = '\n'.join(run(opt, args.configs, args.iters, args.warmup, args.rounds))
    print(text)
    if args.output:
        with atomic_path(args.output) as tmp:
            tmp.write_text(text + '\n', encoding='utf-8')
    return 0
