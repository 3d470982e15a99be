"""GPU benchmark in a few minutes: inference latency at 1000 x 1500 in fp32 and bf16, and training iterations per
second, for AHDRNet, LFFNet and the folded LFFNet (and any network named with --archs or --opt), as markdown tables.

Usage:
    python scripts/benchmark_gpu.py [--archs AHDRNet LFFNet LFFNet-folded] [--opt NAME=OPTIONS.yml ...]
        [--size 1000x1500] [--precisions fp32 bf16] [--runs 10] [--warmup 3]
        [--train_batch 8] [--train_size 128] [--train_iters 10] [--train_warmup 3]
        [--tf32 default|off] [--budget_s 270] [--device cuda] [--output FILE.md [--overwrite]]

    # the reference run on one GPU (about 1-3 minutes on an H100 or H200), with SwinIR through HDRAdapter
    python scripts/benchmark_gpu.py --opt SwinIR=options/train/SwinIR/train_SwinIR_Kalantari.yml \\
        --output gpu_benchmark.md

Models (--archs): a registered architecture with its default (the paper's) options; ``-folded`` folds DO-Conv into
plain convolutions (the inference form). ``--opt NAME=PATH`` adds a model NAME built from the ``network_g`` of an
options YAML (e.g. SwinIR through HDRAdapter).

What it measures, every case on the same device and settings (printed above the tables):
- Latency: batch 1, random input (1, T, 6, H, W), ``torch.inference_mode``, channels_last, cuDNN autotuning on;
  ``--warmup`` untimed then ``--runs`` timed forward passes, each synchronised; median and min in ms, megapixels
  per second, and the peak of ``torch.cuda.max_memory_allocated`` during the case. fp32 runs the network in
  float32 (cuDNN may use TF32 for convolutions, PyTorch's default; ``--tf32 off`` forbids it); bf16 runs it under
  ``torch.autocast(dtype=torch.bfloat16)`` with float32 weights (the RFFT blocks' FFTs stay in float32).
- Training: iterations per second at ``--train_batch`` random crops of ``--train_size``, forward (autocast for
  bf16), LFFNet's losses (L1 + L_msc + 0.05 L_msed + 0.01 L_msfr on mu-law images, in float32), backward and an
  Adam step; median of ``--train_iters`` after ``--train_warmup``. ``-folded`` rows are inference-only.
- Brackets (``--brackets 12 45``): the shipped LFFNet fuses a synthetic bracket of that many megapixels (the scene
  of ``scripts/make_synthetic_bracket.py``, 8-bit frames in memory, gamma 2.2, no alignment) through ``fuse`` on the
  device: the whole image at once when ``torch.cuda.mem_get_info`` shows room for it, else the exact strip-wise pass
  under ``--bracket_memory`` (its strips go to the device, its feature maps to the host's scratch folder). One timed
  run each after the shapes are known; seconds and the peak of ``torch.cuda.max_memory_allocated``.
- Budget: a case times fewer passes than asked when its first pass shows they would not fit in what is left of
  ``--budget_s``, and no case starts once it is spent (skipped cases are listed), so a slow network cannot push the
  run far past it.

The markdown goes to stdout (and --output, never overwritten without --overwrite); progress goes to stderr. On a
machine without CUDA, ``--device cpu`` runs the same code (used by the tests on tiny sizes).
"""

import argparse
import contextlib
import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Sequence
from typing import Optional

import torch

import lffnet_arch  # noqa: F401  (before basicsr: applies the compat shim)
from lffnet_arch.commands.arguments import add_output, add_overwrite
from scripts.measure.profiling import (
    TRAIN_LR,
    ModelSpec,
    add_model_arguments,
    build_model,
    check_counts,
    count_parameters,
    log,
    markdown_table,
    model_specs,
    random_input,
    report_command,
    size_arg,
    time_calls,
    training_losses,
)

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16}
GB = 1e9


def _build(spec: ModelSpec, device: torch.device) -> torch.nn.Module:
    return build_model(spec).to(device=device, memory_format=torch.channels_last)


def _markdown(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = [[str(v) for v in row] for row in rows]
    return markdown_table(headers, cells, numeric=[False] + [True] * (len(headers) - 1))


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _reset_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device: torch.device) -> Optional[float]:
    return torch.cuda.max_memory_allocated(device) / GB if device.type == 'cuda' else None


def _fitted_runs(first_seconds: float, runs: int, warmup: int, seconds_left: float) -> tuple:
    """(timed runs, further warm-ups) that fit in ``seconds_left`` after a first call of ``first_seconds``."""
    affordable = int(seconds_left / max(first_seconds, 1e-6))
    further_warmup = max(min(warmup - 1, affordable - 1), 0)
    return max(1, min(runs, affordable - further_warmup)), further_warmup


def latency_case(
    net: torch.nn.Module, precision: str, args: argparse.Namespace, device: torch.device, seconds_left: float
) -> dict:
    """Timed forward passes of one model in one precision; fewer than --runs when the budget would not allow them.

    The first (untimed) pass counts as a warm-up and estimates the time per pass.
    """
    height, width = args.size
    lq = random_input(net, height, width)[0].to(device)
    net.eval()
    _reset_peak(device)
    with torch.inference_mode(), _autocast(device, precision):
        first = time_calls(lambda: net(lq), 1, 0, device)[0]
        out = net(lq)
        if out.shape[-2:] != (height, width) or not torch.isfinite(out.float()).all():
            raise RuntimeError(f'expected a finite (1, 3, {height}, {width}) output, got {tuple(out.shape)}')
        runs, warmup = _fitted_runs(first, args.runs, args.warmup, seconds_left)
        times = time_calls(lambda: net(lq), runs, warmup, device)
    return {'times': times, 'peak_gb': _peak_gb(device)}


def training_case(
    net: torch.nn.Module, precision: str, args: argparse.Namespace, device: torch.device, seconds_left: float
) -> dict:
    """Timed training iterations of one model in one precision (losses in float32), fitted to the budget as
    :func:`latency_case` fits its passes."""
    net.train()
    losses = training_losses(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=TRAIN_LR, betas=(0.9, 0.999))
    lq, gt = (x.to(device) for x in random_input(net, args.train_size, args.train_size, batch=args.train_batch))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, precision):
            output = net(lq)
        sum(loss(output.float(), gt) for loss in losses).backward()
        optimizer.step()

    _reset_peak(device)
    first = time_calls(step, 1, 0, device)[0]
    runs, warmup = _fitted_runs(first, args.train_iters, args.train_warmup, seconds_left)
    times = time_calls(step, runs, warmup, device)
    return {'times': times, 'peak_gb': _peak_gb(device)}


def _fmt(value: Optional[float], digits: int = 1) -> str:
    return '-' if value is None else f'{value:,.{digits}f}'


def describe(device: torch.device) -> str:
    """Device, driver-side versions and host, for the report's first line."""
    text = f'Python {platform.python_version()}, torch {torch.__version__}'
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        text = (
            f'{torch.cuda.get_device_name(device)} ({props.total_memory / 2**30:.0f} GiB, compute capability '
            f'{props.major}.{props.minor}); CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}; ' + text
        )
    else:
        text = f'CPU {platform.machine()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} threads; ' + text
    return text


class Budget:
    """Wall-clock budget of the whole run: cases start only while time is left."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.perf_counter()

    def left(self) -> bool:
        return time.perf_counter() - self.start < self.seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        return max(self.seconds - self.elapsed(), 0.0)


def run(args: argparse.Namespace) -> str:
    """Run every case the arguments ask for and return the markdown report."""
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda: CUDA is not available to torch on this machine (use --device cpu to try).')
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        if args.tf32 == 'off':
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
    budget = Budget(args.budget_s)
    latency, training, skipped = [], [], []
    params = {}
    for spec in model_specs(args.archs, args.opt):
        label = spec.label
        net = _build(spec, device)
        params[label] = count_parameters(net)
        for precision in args.precisions:
            if not budget.left():
                skipped.append(f'{label} {precision} latency')
                continue
            log(f'[{budget.elapsed():5.0f} s] latency {label} {precision} at {args.size[0]}x{args.size[1]}')
            latency.append((label, precision, latency_case(net, precision, args, device, budget.remaining())))
        del net
        if spec.fold or args.no_train:
            continue
        for precision in args.precisions:
            if not budget.left():
                skipped.append(f'{label} {precision} training')
                continue
            log(f'[{budget.elapsed():5.0f} s] training {label} {precision}')
            net = _build(dataclasses.replace(spec, fold=False), device)
            training.append((label, precision, training_case(net, precision, args, device, budget.remaining())))
            del net
    brackets = []
    for megapixels in args.brackets:
        for precision in args.precisions:
            if not budget.left():
                skipped.append(f'{megapixels:g} MP {precision} bracket')
                continue
            log(f'[{budget.elapsed():5.0f} s] bracket {megapixels:g} MP {precision}')
            brackets.append((megapixels, precision, bracket_case(megapixels, precision, args, device)))
    return report(args, device, params, latency, training, skipped, budget.elapsed(), brackets)


def synthetic_frames(megapixels: float) -> tuple:
    """(three 8-bit frames of the synthetic scene at EV -2, 0, +2, their times): the memory benchmark's scene."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, which holds make_synthetic_bracket
    from make_synthetic_bracket import scene, size_of, srgb_8bit

    width, height = size_of(megapixels)
    radiance = scene(width, height)
    times = [1.0, 4.0, 16.0]
    frames = [srgb_8bit(radiance * (0.18 * t / 4.0)) for t in times]
    return frames, times


def bracket_case(megapixels: float, precision: str, args: argparse.Namespace, device: torch.device) -> dict:
    """Seconds and peak device memory of fusing a synthetic bracket with the shipped LFFNet."""
    from lffnet_arch.deploy import fuse, load_model

    frames, times = synthetic_frames(megapixels)
    net = load_model(device=device)
    height, width = frames[0].shape[:2]
    whole_bytes = height * width * net.FORWARD_BYTES_PER_PIXEL * net.num_feat / 64
    free = torch.cuda.mem_get_info(device)[0] if device.type == 'cuda' else 0
    bound = None if whole_bytes < 0.8 * free else int(args.bracket_memory * GB)
    _reset_peak(device)
    start = time.perf_counter()
    _, _, info = fuse(
        frames, times, net, response='gamma:2.2', precision=precision, max_memory=bound, return_response=True
    )
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    split = 'whole image' if info['strip_rows'] is None else f'strips of {info["strip_rows"]} rows'
    return {'seconds': seconds, 'peak_gb': _peak_gb(device), 'split': split, 'size': (width, height)}


def report(
    args: argparse.Namespace,
    device: torch.device,
    params: dict,
    latency: list,
    training: list,
    skipped: list,
    seconds: float,
    brackets: Sequence = (),
) -> str:
    """The markdown tables."""
    height, width = args.size
    tf32 = 'TF32 forbidden' if args.tf32 == 'off' else 'TF32 convolutions allowed (PyTorch default)'
    reference = {p: statistics.median(r['times']) for label, p, r in latency if label == 'AHDRNet'}
    rows = []
    for label, precision, result in latency:
        median = statistics.median(result['times'])
        versus = f'{median / reference[precision]:.2f}' if precision in reference else '-'
        rows.append(
            [
                label,
                f'{params[label]:,}',
                precision,
                len(result['times']),
                _fmt(median * 1e3),
                _fmt(min(result['times']) * 1e3),
                _fmt(height * width / median / 1e6, 2),
                versus,
                _fmt(result['peak_gb'], 2),
            ]
        )
    lines = [
        '## GPU benchmark' if device.type == 'cuda' else '## Benchmark (CPU run of the GPU script)',
        '',
        f'- Device: {describe(device)}',
        f'- Settings: batch 1, random input (1, T, 6, {height}, {width}), torch.inference_mode, channels_last, '
        f'cuDNN autotuning; {args.warmup} warm-up + up to {args.runs} timed passes per case (fewer where the budget '
        f'would not allow them); fp32 with {tf32}; bf16 = autocast with float32 weights, FFTs in float32.',
        '',
        f'### Inference latency at {height} x {width}',
        '',
        _markdown(
            [
                'Model',
                'Params',
                'Precision',
                'Timed passes',
                'Median (ms)',
                'Min (ms)',
                'Megapixels / s',
                'Time vs AHDRNet',
                'Peak alloc (GB)',
            ],
            rows,
        ),
    ]
    if training:
        lines += _training_section(args, training)
    if brackets:
        bracket_rows = [
            [
                f'{mp:g} MP ({r["size"][0]} x {r["size"][1]})',
                precision,
                r['split'],
                f'{r["seconds"]:.1f}',
                _fmt(r['peak_gb'], 2),
            ]
            for mp, precision, r in brackets
        ]
        lines += [
            '',
            '### Brackets through fuse (shipped LFFNet)',
            '',
            _markdown(['Bracket', 'Precision', 'Split', 'Seconds', 'Peak alloc (GB)'], bracket_rows),
        ]
    if skipped:
        lines += ['', f'- Skipped after the {args.budget_s:g} s budget: {", ".join(skipped)}.']
    lines += ['', f'- Whole run: {seconds:.0f} s.']
    return '\n'.join(lines) + '\n'


def _training_section(args: argparse.Namespace, training: list) -> list:
    """The markdown lines of the training-throughput table."""
    rows = []
    for label, precision, result in training:
        median = statistics.median(result['times'])
        rows.append(
            [
                label,
                precision,
                args.train_batch,
                f'{args.train_size}x{args.train_size}',
                len(result['times']),
                _fmt(1 / median, 2),
                _fmt(args.train_batch / median),
                _fmt(result['peak_gb'], 2),
            ]
        )
    return [
        '',
        '### Training throughput',
        '',
        _markdown(
            [
                'Model',
                'Precision',
                'Batch',
                'Patch',
                'Timed iterations',
                'Iterations / s',
                'Samples / s',
                'Peak (GB)',
            ],
            rows,
        ),
        '',
        f'- One iteration: forward (autocast for bf16), L1 + L_msc + 0.05 L_msed + 0.01 L_msfr on mu-law images in '
        f'float32, backward, Adam (lr {TRAIN_LR:g}); median of up to {args.train_iters} timed iterations after '
        f'{args.train_warmup} warm-up ones (fewer where the budget would not allow them). Folded rows are '
        'inference-only.',
    ]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument('--size', type=size_arg, default=(1000, 1500), metavar='HxW', help='default: 1000x1500')
    parser.add_argument(
        '--precisions', nargs='+', choices=tuple(PRECISIONS), default=list(PRECISIONS), help='default: fp32 bf16'
    )
    parser.add_argument('--runs', type=int, default=10, help='timed forward passes per case (default: 10)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed forward passes first (default: 3)')
    parser.add_argument('--no_train', action='store_true', help='skip the training table')
    parser.add_argument('--train_batch', type=int, default=8, help='default: 8')
    parser.add_argument('--train_size', type=int, default=128, help='training crop side (default: 128)')
    parser.add_argument('--train_iters', type=int, default=10, help='timed training iterations (default: 10)')
    parser.add_argument('--train_warmup', type=int, default=3, help='untimed training iterations (default: 3)')
    parser.add_argument('--tf32', choices=('default', 'off'), default='default', help="fp32 convolutions' TF32")
    parser.add_argument('--budget_s', type=float, default=270.0, help='start no case after this (default: 270)')
    parser.add_argument('--device', default='cuda', help='cuda, cuda:N or cpu (default: cuda)')
    parser.add_argument(
        '--brackets', type=float, nargs='*', default=[], metavar='MP', help='synthetic brackets to fuse, e.g. 12 45'
    )
    parser.add_argument(
        '--bracket_memory', type=float, default=16.0, help='GB for the strip-wise pass where a bracket does not fit'
    )
    add_output(parser, 'also write the markdown to this file', required=False)
    add_overwrite(parser, 'the --output file')
    args = parser.parse_args(argv)
    check_counts(parser, args, ('runs', 'train_batch', 'train_size', 'train_iters'), ('warmup', 'train_warmup'))
    if args.budget_s <= 0:
        parser.error(f'--budget_s must be > 0, got {args.budget_s}')
    try:
        torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device must be 'cuda', 'cuda:N' or 'cpu', got {args.device!r}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Command-line entry point; returns the markdown it prints (and writes to --output)."""
    return report_command(parse_args(argv), run)
