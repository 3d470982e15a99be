"""Speed benchmark: parameters, conv MACs, latency, peak memory, achieved GFLOP/s and training throughput of the
networks, as markdown (stdout, and --output, never overwritten without --overwrite); progress goes to stderr.

Usage:
    python scripts/benchmark.py --sizes 128x192 --runs 2 --no_train          # a quick look
    python scripts/benchmark.py --tiled_case 4000x3000 --tile 512 --output benchmark.md

Models (--archs): a registered architecture with its default options, e.g. ``AHDRNet``; ``-folded`` folds DO-Conv
(``fold_doconv``); ``:key=value,...`` sets options, e.g. ``LFFNet:doconv=none``; ``--opt NAME=PATH`` defines NAME
from an options YAML's ``network_g``. MACs follow docs/design.md §5 (:mod:`scripts.measure.profiling`).
Latency: median of --runs rounds in which the models take turns. Peak memory and the tiled case run each in a fresh
Python process (:func:`run_case`, case and result as JSON files). With --test_set and --checkpoint NAME=PATH it
appends the quality table of :func:`scripts.measure.quality.evaluate_test_set` (``scripts/evaluate_quality.py
--test_set``), the networks loaded as the rows define them. ``--help`` lists every flag.
"""

import argparse
import contextlib
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

import lffnet_arch  # noqa: F401  (before basicsr: applies the compat shim)
from lffnet_arch.commands.arguments import add_output, add_overwrite, add_threads
from lffnet_arch.deploy.model import create_network, load_network_options
from scripts.measure.cases import GRAD_MODES, MEMORY_FORMATS, load_weights, prepare, run_case, run_training
from scripts.measure.profiling import (
    REFERENCE_GMACS,
    TRAIN_LR,
    add_model_arguments,
    build_model,
    check_counts,
    count_conv_macs,
    count_parameters,
    log,
    markdown_table,
    matmul_gflops,
    model_specs,
    parse_model_spec,
    random_input,
    report_command,
    size_arg,
    time_interleaved,
)
from scripts.measure.quality import evaluate_test_set, metric_notes

MAC_SIZE = (1000, 1500)  # H x W of the MAC convention (docs/design.md §5)
GB = 1e9


# ---------------------------------------------------------------- formatting


def _gb(value: Optional[int]) -> Any:
    return '-' if value is None else round(value / GB, 2)


def machine_description(device: torch.device) -> str:
    """CPU model, logical CPUs available, memory, torch version (and GPU name on CUDA)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo', encoding='ascii', errors='replace') as file:
            names = [line.split(':', 1)[1].strip() for line in file if line.startswith('model name')]
        cpu = names[0] if names else cpu
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    memory = ''
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open('/proc/meminfo', encoding='ascii') as file:
            total = next(int(line.split()[1]) for line in file if line.startswith('MemTotal:'))
        memory = f', {total * 1024 / GB:.1f} GB RAM'
    text = f'{cpu}, {cpus} logical CPUs{memory}; Python {platform.python_version()}, torch {torch.__version__}'
    if device.type == 'cuda':
        text += f'; GPU {torch.cuda.get_device_name(device)}'
    return text


def _load() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return ', '.join(f'{v:.2f}' for v in os.getloadavg())
    return 'n/a'


# ---------------------------------------------------------------- command line


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument(
        '--sizes',
        nargs='+',
        type=size_arg,
        default=[MAC_SIZE],
        metavar='HxW',
        help='input sizes H x W for latency and memory (default: 1000x1500)',
    )
    parser.add_argument(
        '--runs', type=int, default=5, help='timed rounds, one forward pass of every model each (default: 5)'
    )
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds first (default: 1)')
    add_threads(parser)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu', help='default: cpu')
    parser.add_argument(
        '--memory_format',
        choices=tuple(MEMORY_FORMATS),
        default='channels_last',
        help='memory format of the networks (default: channels_last, the faster on CPU)',
    )
    parser.add_argument(
        '--grad_mode',
        choices=tuple(GRAD_MODES),
        default='inference',
        help='torch.inference_mode or torch.no_grad around the forward passes (default: inference)',
    )
    parser.add_argument(
        '--mm_size', type=int, default=2048, help='matrix side of the torch.mm rate measurement (default: 2048)'
    )
    parser.add_argument(
        '--no_memory',
        action='store_true',
        help='skip the per-case peak memory processes (faster; the tiled case keeps its own)',
    )
    parser.add_argument('--no_train', action='store_true', help='skip the training-throughput table')
    parser.add_argument('--train_iters', type=int, default=3, help='timed training iterations (default: 3)')
    parser.add_argument('--train_warmup', type=int, default=1, help='untimed training iterations (default: 1)')
    parser.add_argument('--train_batch', type=int, default=8, help='training batch size (default: 8)')
    parser.add_argument('--train_size', type=int, default=128, help='training patch side (default: 128)')
    parser.add_argument('--tiled_case', type=size_arg, metavar='HxW', help='also run a tiled H x W bracket')
    parser.add_argument('--tile', type=int, default=512, help='tile size of the tiled case (default: 512)')
    parser.add_argument('--tile_overlap', type=int, default=32, help='tile overlap in pixels (default: 32)')
    parser.add_argument(
        '--tiled_archs', nargs='+', default=['LFFNet-folded'], help='models of the tiled case (default: %(default)s)'
    )
    parser.add_argument(
        '--checkpoint',
        action='append',
        default=[],
        metavar='NAME=PATH',
        help='weights of model NAME for the quality table of benchmark.quality (repeatable)',
    )
    parser.add_argument(
        '--test_set', type=Path, help='Kalantari-layout test folder: add its table (evaluate_quality.py --test_set)'
    )
    parser.add_argument('--test_tile', type=int, help='tile size for the test-set forward passes (default: whole)')
    parser.add_argument('--max_scenes', type=int, help='use only the first N test scenes')
    add_output(parser, 'also write the markdown to this file', required=False)
    add_overwrite(parser, 'the --output file')
    args = parser.parse_args(argv)
    check_counts(
        parser,
        args,
        ('runs', 'train_iters', 'train_batch', 'train_size', 'tile', 'mm_size'),
        ('warmup', 'train_warmup'),
    )
    if not 0 <= args.tile_overlap < args.tile:
        parser.error(f'--tile_overlap must be in [0, --tile={args.tile}), got {args.tile_overlap}')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    return args


def _model_specs(args: argparse.Namespace) -> tuple:
    specs = model_specs(args.archs, args.opt)
    yaml_options = {name: load_network_options(path) for name, path in args.opt}
    tiled = [parse_model_spec(label, yaml_options) for label in dict.fromkeys(args.tiled_archs)]
    return specs, tiled


def _checkpoints(args: argparse.Namespace, specs: list) -> dict:
    """Row label -> checkpoint path; a ``-folded`` row falls back on its unfolded label's checkpoint.

    ``--checkpoint`` values are ``LABEL=PATH``; a label may itself hold ``=`` (``LFFNet:doconv=none``), so the
    longest row label followed by ``=`` is taken.
    """
    labels = sorted({s.label for s in specs} | {s.base_label for s in specs}, key=len, reverse=True)
    given = {}
    for text in args.checkpoint:
        label = next((label for label in labels if text.startswith(label + '=')), None)
        if label is None or not text[len(label) + 1 :]:
            raise ValueError(
                f'--checkpoint {text!r}: expected LABEL=PATH with LABEL one of the model rows '
                f"{[s.label for s in specs]} (or a folded row's unfolded label)."
            )
        path = Path(text[len(label) + 1 :])
        if not path.is_file():
            raise FileNotFoundError(f'--checkpoint {label}={path}: file not found.')
        given[label] = path
    found = {}
    for spec in specs:
        path = given.get(spec.label, given.get(spec.base_label))
        if path is not None:
            found[spec.label] = path
    return found


def _memory_cases(args: argparse.Namespace, specs: list, settings: dict) -> dict:
    """(label, size) -> result of a one-forward memory case, each in a fresh process."""
    results = {}
    cases = [(spec, size) for size in args.sizes for spec in specs]
    for index, (spec, (height, width)) in enumerate(cases, 1):
        log(f'[memory {index}/{len(cases)}] {spec.label} at {height}x{width} in a fresh process')
        case = dict(settings, kind='memory', spec=asdict(spec), height=height, width=width)
        results[(spec.label, (height, width))] = run_case(case)
    return results


def _timings(args: argparse.Namespace, specs: list, device: torch.device, size: tuple) -> dict:
    """label -> seconds of the timed forward passes at ``size``, the models taking turns in every round."""
    nets = {spec.label: prepare(build_model(spec), device, args.memory_format) for spec in specs}
    inputs = {label: random_input(net, *size)[0].to(device) for label, net in nets.items()}
    calls = {label: (lambda net=net, lq=inputs[label]: net(lq)) for label, net in nets.items()}
    total = (args.warmup + args.runs) * len(calls)
    with (
        tqdm(total=total, desc=f'latency {size[0]}x{size[1]}', unit='pass', file=sys.stderr, leave=False) as bar,
        GRAD_MODES[args.grad_mode](),
    ):
        return time_interleaved(calls, args.runs, args.warmup, device, progress=bar.update)


def _latency_section(args: argparse.Namespace, specs: list, device: torch.device, settings: dict) -> tuple:
    """Latency (and memory) of every (model, size).

    Returns:
        tuple: (render, timings): ``render(mm_rate)`` gives the markdown lines (the "% of mm rate" column needs the
        matrix-multiply rate, which is measured once more after the rounds); ``timings`` maps (label, size) to the
        timed seconds.
    """
    nets = {spec.label: build_model(spec) for spec in specs}
    params = {label: count_parameters(net) for label, net in nets.items()}
    macs = {
        (label, size): count_conv_macs(net, *size)
        for label, net in nets.items()
        for size in dict.fromkeys([MAC_SIZE, *args.sizes])
    }
    del nets
    memory = {} if args.no_memory else _memory_cases(args, specs, settings)
    timings, rows = {}, []
    for size in args.sizes:
        log(
            f'latency at {size[0]}x{size[1]}: {args.warmup} warm-up + {args.runs} timed rounds over {len(specs)} models'
        )
        for label, times in _timings(args, specs, device, size).items():
            timings[(label, size)] = times
            median = statistics.median(times)
            gflops = 2 * macs[(label, size)].total / median / 1e9
            peak = memory[(label, size)]['peak_bytes'] if memory else None
            rows.append(
                [
                    label,
                    params[label],
                    macs[(label, MAC_SIZE)].total / 1e9,
                    f'{size[0]}x{size[1]}',
                    macs[(label, size)].total / 1e9,
                    median,
                    min(times),
                    max(times),
                    gflops,
                    _gb(peak),
                ]
            )
    memory_name = 'Peak CUDA alloc (GB)' if args.device == 'cuda' else 'Peak RSS (GB)'
    headers = [
        'Model',
        'Params',
        f'MACs @{MAC_SIZE[0]}x{MAC_SIZE[1]} (G)',
        'Size (HxW)',
        'MACs @size (G)',
        f'Latency median of {args.runs} (s)',
        'min (s)',
        'max (s)',
        'GFLOP/s',
        '% of mm rate',
        memory_name,
    ]
    notes = _mac_notes(specs, macs)
    notes.append(
        f'- Latency: {args.warmup} warm-up and {args.runs} timed rounds in which the models take turns '
        '(so a change in machine load hits them alike), batch 1, random input (1, T, 6, H, W).'
    )
    bases = [r['base_bytes'] for r in memory.values() if r['base_bytes'] is not None]
    if bases and args.device == 'cpu':
        notes.append(
            f'- Peak RSS: one forward pass per case in a fresh process, the whole process (Python, torch, '
            f'model, forward pass); the process held {min(bases) / GB:.2f}-{max(bases) / GB:.2f} GB before '
            'the forward pass.'
        )

    def render(mm_rate: float) -> list:
        table = [[*row[:-1], 100 * row[-2] / mm_rate, row[-1]] for row in rows]
        return [markdown_table(headers, table), ''] + notes

    return render, timings


def _mac_notes(specs: list, macs: dict) -> list:
    """Say whether the paper's configurations reproduce docs/design.md §5 (``REFERENCE_GMACS``).

    Args:
        specs (list[ModelSpec]): The rows; an unfolded row without options is its architecture's paper configuration.
        macs (dict): (label, size) -> ``MacCount`` of the rows, at ``MAC_SIZE`` among others.
    """
    paper = {s.arch: macs[(s.label, MAC_SIZE)] for s in specs if not s.options and not s.fold}
    for arch in ('AHDRNet', 'LFFNet'):
        if arch not in paper:  # not a row of this run
            paper[arch] = count_conv_macs(create_network({'type': arch}), *MAC_SIZE)
    ahdrnet, lffnet = paper['AHDRNet'], paper['LFFNet']
    counted = {
        'AHDRNet': ahdrnet.total,
        'LFFNet': lffnet.total,
        'LFFNet without frequency-branch convs': lffnet.spatial,
    }
    agree = all(round(counted[k] / 1e9) == v for k, v in REFERENCE_GMACS.items())
    verdict = 'reproducing' if agree else 'which DIFFERS from'
    reference = ', '.join(f'{gmacs:,} G' for gmacs in REFERENCE_GMACS.values())
    return [
        f'- MACs: conv multiply-accumulates for one frame triple at H x W = {MAC_SIZE[0]} x {MAC_SIZE[1]} '
        '(docs/design.md §5: FFTs excluded, the frequency-branch 1x1 convs on H x (W/2+1) bins included), counted '
        f'with forward hooks on meta tensors: AHDRNet {ahdrnet.total / 1e9:,.1f} G, LFFNet {lffnet.total / 1e9:,.1f} '
        f'G ({lffnet.spatial / 1e9:,.1f} G without the frequency-branch convs), {verdict} §5 ({reference}). '
        'GFLOP/s = 2 x MACs @size / median latency.',
    ]


def _tiled_section(args: argparse.Namespace, specs: list, settings: dict) -> tuple:
    height, width = args.tiled_case
    rows, peaks = [], {}
    for spec in specs:
        log(f'tiled {spec.label} at {height}x{width}, tile {args.tile}')
        case = dict(
            settings,
            kind='tiled',
            spec=asdict(spec),
            height=height,
            width=width,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
        )
        result = run_case(case)  # its peak memory is the point, so always a process of its own
        peak = result['peak_bytes']
        peaks[spec.label] = peak
        rows.append(
            [
                spec.label,
                f'{height}x{width}',
                args.tile,
                args.tile_overlap,
                result['tiles'],
                result['seconds'],
                _gb(peak),
            ]
        )
    memory_name = 'Peak CUDA alloc (GB)' if args.device == 'cuda' else 'Peak RSS (GB)'
    lines = [
        f'### Tiled inference ({height} x {width} bracket)',
        '',
        markdown_table(['Model', 'Size (HxW)', 'Tile', 'Overlap', 'Tiles', 'Time (s)', memory_name], rows),
        '',
        '- The whole `lffnet_arch.deploy.fusion` call on a random 16-bit bracket: frames, network input '
        '(1, T, 6, H, W), tiled forward passes and the blended output, one run in a process of its own; the '
        'network in contiguous memory format, as `inference.load_model` returns it (the input, built from H x W x 3 '
        'frames, is channels-last-strided, so the convolutions run channels_last).',
    ]
    return lines, peaks


def _training_section(args: argparse.Namespace, specs: list, device: torch.device) -> list:
    rows = []
    skipped = [s.label for s in specs if s.fold]
    for spec in specs:
        if spec.fold:
            continue
        log(f'training {spec.label}: batch {args.train_batch} of {args.train_size}x{args.train_size}')
        times = run_training(spec, args, device)['times']
        median = statistics.median(times)
        rows.append(
            [
                spec.label,
                args.train_batch,
                f'{args.train_size}x{args.train_size}',
                median,
                1 / median,
                args.train_batch / median,
            ]
        )
    headers = [
        'Model',
        'Batch',
        'Patch',
        f'Seconds / iteration (median of {args.train_iters})',
        'Iterations / s',
        'Samples / s',
    ]
    lines = [
        '### Training throughput',
        '',
        markdown_table(headers, rows),
        '',
        f'- One iteration: forward, L1 + L_msc + 0.05 L_msed + 0.01 L_msfr on mu-law images, backward, Adam '
        f'(lr {TRAIN_LR:g}); {args.train_warmup} untimed warm-up iteration(s) first; train mode, same threads '
        'and memory format as above.',
    ]
    if skipped:
        lines.append(
            f'- Not trained: {", ".join(skipped)} (folding is an inference transform; a folded network '
            'trains as LFFNet:doconv=none).'
        )
    return lines


def _quality_section(args: argparse.Namespace, specs: list, checkpoints: dict, device: torch.device) -> list:
    """The quality table of ``--test_set``, by :func:`scripts.measure.quality.evaluate_test_set`."""
    nets = {s.label: load_weights(s, checkpoints[s.label]).to(device) for s in specs if s.label in checkpoints}
    log(f'test set {args.test_set}: {len(nets)} network(s) and the classical merges (benchmark.quality)')
    lines = evaluate_test_set(args.test_set, nets, args.test_tile, args.tile_overlap, args.max_scenes)
    return lines + metric_notes()


def run_benchmark(args: argparse.Namespace) -> str:
    """Run everything the arguments ask for and return the markdown report."""
    specs, tiled_specs = _model_specs(args)
    checkpoints = _checkpoints(args, specs)
    if args.checkpoint and args.test_set is None:
        raise ValueError('--checkpoint is used for the quality table, which needs --test_set FOLDER.')
    if args.test_set is not None and not args.test_set.is_dir():
        raise FileNotFoundError(f'--test_set {args.test_set}: folder not found.')
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda: CUDA is not available to torch on this machine.')
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {
        'threads': torch.get_num_threads(),
        'device': args.device,
        'memory_format': args.memory_format,
        'grad_mode': args.grad_mode,
    }
    load_start = _load()
    log('matrix-multiply rate ...')
    mm_start = matmul_gflops(args.mm_size, device=device)
    grad = 'torch.inference_mode()' if args.grad_mode == 'inference' else 'torch.no_grad()'
    lines = [
        '## LFFNet / AHDRNet benchmark',
        '',
        f'- Machine: {machine_description(device)}',
        f'- Settings (every row): device {args.device}, {settings["threads"]} intra-op threads, memory format '
        f'{args.memory_format}, {grad}, fp32, batch 1, eager mode (DO-Conv folded only in `-folded` rows); '
        f'{args.warmup} warm-up + {args.runs} timed rounds'
        + ('' if args.no_memory else ', peak memory of each case in a fresh process')
        + '.',
    ]
    section, timings = _latency_section(args, specs, device, settings)
    mm_end = matmul_gflops(args.mm_size, device=device)
    mm_rate = max(mm_start, mm_end)
    lines += [
        f'- fp32 matrix multiply (torch.mm {args.mm_size} x {args.mm_size}, best of 5, measured before and after the '
        f'latency rounds): {mm_start:,.1f} and {mm_end:,.1f} GFLOP/s; "% of mm rate" uses {mm_rate:,.1f}.',
        f'- Load average (1, 5, 15 min) at the start: {load_start}; after the latency rounds: {_load()}.',
        '',
    ] + section(mm_rate)
    tiled_peaks = {}
    if args.tiled_case:
        section, tiled_peaks = _tiled_section(args, tiled_specs, settings)
        lines += [''] + section
    if not args.no_train:
        lines += [''] + _training_section(args, specs, device)
    if args.test_set is not None:
        lines += [''] + _quality_section(args, specs, checkpoints, device)
    lines += ['', f'- Load average at the end: {_load()}.']
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Command-line entry point; returns the markdown it prints (and writes to --output)."""
    return report_command(parse_args(argv), run_benchmark)
