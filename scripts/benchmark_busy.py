"""The demo training on a quiet machine and beside one competing CPU-bound process, in one run: the thread policy's
measure (lffnet_arch/threads.py). Prints a markdown table of wall times and their ratio to the quiet run.

The competitor is another PyTorch process multiplying matrices with torch's default threads and environment, as a
second job of another user would. Rows: quiet; busy with the policy (passive OpenMP waiting, threads from the usable
cores); busy with OpenMP's default waiting (``OMP_WAIT_POLICY`` set empty, which the policy keeps), to show what the
waiting policy is worth. The training is the README's demo (options/train/LFFNet/train_LFFNet_demo.yml) shortened to
``--iters`` iterations with one validation at the end; the ratio, not the seconds, is the figure to compare.

    python scripts/benchmark_busy.py --iters 300 --output busy.md
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root

from lffnet_arch.threads import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMPETITOR = 'import torch\na = torch.randn(1024, 1024)\nwhile True:\n    a = (a @ a).clamp_(-1, 1)\n'


def _options(iters: int, folder: Path) -> Path:
    opt = yaml.safe_load((REPO / 'options/train/LFFNet/train_LFFNet_demo.yml').read_text())
    opt['name'] = f'busy_benchmark_{os.getpid()}'
    opt['train']['total_iter'] = iters
    for scheduler_key in ('periods', 'milestones'):
        if scheduler_key in opt['train'].get('scheduler', {}):
            opt['train']['scheduler'][scheduler_key] = [iters]
    opt['val']['val_freq'] = iters
    opt['logger']['save_checkpoint_freq'] = iters
    path = folder / 'demo.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def _train(options: Path, env: dict, limit: float = None) -> float:
    """Wall seconds of one training run from a fresh process (the demo set must exist, see the README); ``inf`` when
    it is stopped at ``limit`` seconds."""
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, str(REPO / 'lffnet_arch' / 'train.py'), '-opt', str(options)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        return float('inf')
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f'training failed:\n{result.stderr[-3000:]}')
    return seconds


def _with_competitor(options: Path, env: dict, limit: float) -> float:
    foreign = {k: v for k, v in os.environ.items() if k not in ('OMP_WAIT_POLICY', 'OMP_NUM_THREADS')}
    competitor = subprocess.Popen([sys.executable, '-c', COMPETITOR], env=foreign)
    try:
        time.sleep(3)  # the competitor is running before the training starts
        return _train(options, env, limit)
    finally:
        competitor.kill()
        competitor.wait()


def _cell(value: float, limit: float) -> str:
    return f'> {limit:.1f} (stopped)' if value == float('inf') else f'{value:.2f}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, default=300, help='demo training iterations per run (default: 300)')
    parser.add_argument('--output', help='also write the table to this markdown file')
    parser.add_argument(
        '--limit', type=float, default=8.0, help='stop a busy run at this multiple of the quiet time (default: 8)'
    )
    args = parser.parse_args(argv)
    if args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}.')
    if not (REPO / 'datasets' / 'demo' / 'Training').is_dir():
        parser.error('the demo set is missing: run python scripts/data_preparation/generate_demo_set.py first.')
    base = {k: v for k, v in os.environ.items() if k not in ('OMP_WAIT_POLICY', 'OMP_NUM_THREADS')}
    with tempfile.TemporaryDirectory() as folder:
        options = _options(args.iters, Path(folder))
        name = yaml.safe_load(options.read_text())['name']
        try:
            quiet = _train(options, base)
            print(f'quiet: {quiet:.1f} s', flush=True)
            limit = args.limit * quiet
            busy = _with_competitor(options, base, limit)
            print(f'busy, the thread policy: {busy:.1f} s', flush=True)
            busy_default = _with_competitor(options, {**base, 'OMP_WAIT_POLICY': ''}, limit)
            print(f"busy, OpenMP's default waiting: {busy_default:.1f} s", flush=True)
        finally:
            for sub in ('experiments', 'tb_logger', 'results'):
                for path in (REPO / sub).glob(f'{name}*'):
                    subprocess.run(['rm', '-rf', str(path)], check=False)
    cpu = cpu_model()
    lines = [
        f'Demo training, {args.iters} iterations, {os.cpu_count()} cores ({cpu}):',
        '',
        '| run | seconds | against quiet |',
        '|---|---:|---:|',
        f'| quiet | {quiet:.1f} | 1.00 |',
        f'| beside one CPU-bound process, the thread policy | {_cell(busy, limit)} | '
        f'{_cell(busy / quiet, args.limit)} |',
        f"| beside one CPU-bound process, OpenMP's default waiting | {_cell(busy_default, limit)} | "
        f'{_cell(busy_default / quiet, args.limit)} |',
    ]
    table = '\n'.join(lines)
    print(table)
    if args.output:
        Path(args.output).write_text(table + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
