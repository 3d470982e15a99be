"""The benchmark's measurement cases: loading a row's network, one forward pass at one size in a fresh process (its
peak memory its own), one tiled bracket through ``fuse``, and the training step's throughput. The report around them
is :mod:`scripts.measure.speed`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from lffnet_arch.archs import fold_doconv
from lffnet_arch.deploy.model import load_network
from lffnet_arch.fileio.atomic import atomic_path
from lffnet_arch.tiling import tile_positions
from scripts.measure.profiling import (
    TRAIN_LR,
    ModelSpec,
    build_model,
    current_rss_bytes,
    peak_rss_bytes,
    random_input,
    time_calls,
    training_losses,
)

REPO = Path(__file__).resolve().parents[2]  # the checkout root, which the case's child process imports from
MEMORY_FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}
GRAD_MODES = {'inference': torch.inference_mode, 'no_grad': torch.no_grad}


# ---------------------------------------------------------------- models


def load_weights(spec: ModelSpec, checkpoint: Path) -> torch.nn.Module:
    """The row's network with ``checkpoint`` loaded strictly (``params_ema``, else ``params``), then folded."""
    net, _ = load_network(checkpoint, spec.network_options)
    return (fold_doconv(net) if spec.fold else net).eval()


def prepare(net: torch.nn.Module, device: torch.device, memory_format: str) -> torch.nn.Module:
    return net.to(device=device, memory_format=MEMORY_FORMATS[memory_format])


# ---------------------------------------------------------------- cases (run in a fresh process for memory)


def _set_threads(threads: int) -> None:
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _reset_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def _memory(device: torch.device, peak: bool) -> Optional[int]:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) if peak else torch.cuda.memory_allocated(device)
    return peak_rss_bytes() if peak else current_rss_bytes()


def run_memory_case(case: dict) -> dict:
    """One forward pass of one model at one size; returns ``seconds``, ``base_bytes`` and ``peak_bytes``."""
    _set_threads(case['threads'])
    device = torch.device(case['device'])
    spec = ModelSpec(**case['spec'])
    net = prepare(build_model(spec), device, case['memory_format'])
    lq = random_input(net, case['height'], case['width'])[0].to(device)
    _reset_peak(device)
    base = _memory(device, peak=False)
    with GRAD_MODES[case['grad_mode']]():
        seconds = time_calls(lambda: net(lq), runs=1, device=device)[0]
    return {'seconds': seconds, 'base_bytes': base, 'peak_bytes': _memory(device, peak=True)}


def run_tiled_case(case: dict) -> dict:
    """One random bracket through ``inference.fuse`` with tiles; returns ``seconds``, ``tiles``, memory."""
    from lffnet_arch.deploy import fuse

    _set_threads(case['threads'])
    device = torch.device(case['device'])
    spec = ModelSpec(**case['spec'])
    # Contiguous, as inference.load_model returns networks, so the case measures what users of fuse() get.
    net = prepare(build_model(spec), device, 'contiguous')
    height, width, tile, overlap = case['height'], case['width'], case['tile'], case['tile_overlap']
    frames_count = getattr(net, 'num_exposure', 3)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 65536, (height, width, 3), dtype=np.uint16) for _ in range(frames_count)]
    times = 4.0 ** np.arange(frames_count)
    tiles = len(tile_positions(height, tile, overlap)) * len(tile_positions(width, tile, overlap))
    _reset_peak(device)
    base = _memory(device, peak=False)
    with (
        tqdm(
            total=tiles, desc=f'{spec.label} tiled {height}x{width}', unit='tile', file=sys.stderr, leave=False
        ) as bar,
        GRAD_MODES[case['grad_mode']](),
    ):
        start = time.perf_counter()
        hdr = fuse(frames, times, net, tile_size=tile, tile_overlap=overlap, progress=bar, response='gamma:2.2')
        seconds = time.perf_counter() - start
    if hdr.shape != (height, width, 3) or not np.isfinite(hdr).all():
        raise RuntimeError(f'Tiled case: expected a finite ({height}, {width}, 3) result, got {hdr.shape}.')
    return {'seconds': seconds, 'tiles': tiles, 'base_bytes': base, 'peak_bytes': _memory(device, peak=True)}


CASE_RUNNERS = {'memory': run_memory_case, 'tiled': run_tiled_case}


def run_case_file(case_path: str, result_path: str) -> None:
    """Child side of :func:`run_case`: read the case from one JSON file, write its result to another."""
    case = json.loads(Path(case_path).read_text(encoding='utf-8'))
    result = CASE_RUNNERS[case['kind']](case)
    with atomic_path(result_path) as tmp:
        Path(tmp).write_text(json.dumps(result), encoding='utf-8')


def run_case(case: dict) -> dict:
    """Run a case in a fresh Python process, so its peak memory is its own; case and result travel as JSON files."""
    with tempfile.TemporaryDirectory(prefix='lffnet_benchmark_') as folder:
        case_path, result_path = Path(folder) / 'case.json', Path(folder) / 'result.json'
        case_path.write_text(json.dumps(case), encoding='utf-8')
        code = (
            'import sys; sys.path.insert(0, sys.argv[1]); '
            'from scripts.measure.cases import run_case_file; run_case_file(*sys.argv[2:])'
        )
        command = [sys.executable, '-c', code, str(REPO), str(case_path), str(result_path)]
        done = subprocess.run(command, check=False)
        if done.returncode != 0 or not result_path.is_file():
            raise RuntimeError(
                f'Benchmark case {case["spec"]["label"]} ({case["kind"]}, {case["height"]}x'
                f'{case["width"]}) failed in its subprocess (exit code {done.returncode}); its error is '
                'printed above.'
            )
        return json.loads(result_path.read_text(encoding='utf-8'))


# ---------------------------------------------------------------- training throughput


def run_training(spec: ModelSpec, args: argparse.Namespace, device: torch.device) -> dict:
    """Seconds per training iteration (forward, LFFNet's losses, backward, Adam step) at the training batch."""
    net = prepare(build_model(spec), device, args.memory_format).train()
    losses = training_losses(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=TRAIN_LR, betas=(0.9, 0.999))
    lq, gt = random_input(net, args.train_size, args.train_size, batch=args.train_batch)
    lq, gt = lq.to(device), gt.to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        output = net(lq)
        sum(loss(output, gt) for loss in losses).backward()
        optimizer.step()

    with tqdm(
        total=args.train_warmup + args.train_iters, desc=f'train {spec.label}', unit='it', file=sys.stderr, leave=False
    ) as bar:
        times = time_calls(step, args.train_iters, args.train_warmup, device, progress=bar.update)
    return {'times': times}
