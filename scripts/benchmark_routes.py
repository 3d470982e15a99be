"""CPU routes for the network's forward pass, timed against eager fp32 in one run: bf16, channels-last, ONNX Runtime
over the project's own ONNX export, ``torch.compile`` and thread settings.

The input is a ``--tile`` x ``--tile`` crop (default 512) of a synthetic bracket's network input
(``scripts/make_synthetic_bracket.py``, the same scene as the memory benchmark), through the shipped model (or
``--checkpoint``). Every route runs ``--repeats`` times after one warm-up; the table gives the median seconds, the
ratio to eager fp32 (above 1 is faster), and the route's PSNR-mu against the eager fp32 output (the 0.1 dB rule of
the default is checked against the ground truth by the evaluator, docs/benchmark.md). A route that cannot run here
(no bf16 instructions, ONNX Runtime or a C++ compiler missing) gets a row saying why. Time only on a quiet machine:
nothing else may run while it measures. The CPU model is printed above the table.

Usage::

    python scripts/benchmark_routes.py --output routes.md
    python scripts/benchmark_routes.py --tile 384 --repeats 5 --routes fp32 bf16 channels_last
"""

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'scripts'))

from make_synthetic_bracket import scene, srgb_8bit  # noqa: E402

from lffnet_arch.deploy import load_model  # noqa: E402
from lffnet_arch.deploy.fusion import cpu_has_bf16  # noqa: E402
from lffnet_arch.hdr_input import mu_law, network_input  # noqa: E402
from lffnet_arch.response import Response  # noqa: E402
from lffnet_arch.threads import cpu_model  # noqa: E402

ROUTES = ('fp32', 'bf16', 'channels_last', 'channels_last_bf16', 'threads_1', 'compile', 'compile_bf16', 'onnxruntime')


def tile_input(size: int, seed: int = 0) -> torch.Tensor:
    """(1, 3, 6, size, size): a bracket of the synthetic scene at EV -2, 0, +2 through sRGB, 8-bit, gamma 2.2."""
    radiance = scene(size, size, seed)
    times = np.array([1.0, 4.0, 16.0])
    frames = [srgb_8bit(radiance * np.float32(0.18 * t / 4.0)).astype(np.float32) / 255.0 for t in times]
    return network_input(frames, times, response=Response.gamma(2.2))


def psnr_mu(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(torch.mean((mu_law(a.float().clamp(0, 1)) - mu_law(b.float().clamp(0, 1))) ** 2))
    return 10 * np.log10(1 / mse) if mse > 0 else float('inf')


def _timed(run: Callable[[], torch.Tensor], repeats: int) -> tuple:
    output = run()  # warm-up (and compilation)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        output = run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), output


def _route(name: str, net: torch.nn.Module, lq: torch.Tensor, workdir: Path) -> tuple:
    """(a callable running the route, a note); raises RuntimeError when the route cannot run here."""
    bf16 = torch.autocast('cpu', dtype=torch.bfloat16) if name.endswith('bf16') else contextlib.nullcontext()
    if name.endswith('bf16') and not cpu_has_bf16():
        raise RuntimeError('no bf16 instructions on this CPU (avx512_bf16 / amx_bf16)')
    if name in ('fp32', 'bf16', 'threads_1'):

        def run():
            with torch.no_grad(), bf16:
                return net(lq)

        return run, ''
    if name.startswith('channels_last'):
        last = net.to(memory_format=torch.channels_last)

        def run():
            with torch.no_grad(), bf16:
                return last(lq)

        return run, ''
    if name.startswith('compile'):
        compiled = torch.compile(net, dynamic=False)

        def run():
            with torch.no_grad(), bf16:
                return compiled(lq)

        return run, 'inductor, static shape'
    if name == 'onnxruntime':
        try:
            import onnxruntime
        except ImportError as error:
            raise RuntimeError('onnxruntime is not installed (pip install onnxruntime)') from error
        from lffnet_arch.deploy.onnx import export_onnx

        path = workdir / 'model.onnx'
        export_onnx(net, path, overwrite=True)
        session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
        feed = {'lq': lq.numpy()}

        def run():
            return torch.from_numpy(session.run(None, feed)[0])

        return run, f"onnxruntime {onnxruntime.__version__}, the export's real DFTs"
    raise ValueError(f'unknown route {name!r}; expected one of {ROUTES}')


def measure(args: argparse.Namespace) -> list:
    net = load_model(args.checkpoint)
    lq = tile_input(args.tile)
    threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory(prefix='benchmark_routes_') as workdir:
        for name in args.routes:
            print(f'{name} ...', flush=True)
            torch.set_num_threads(1 if name == 'threads_1' else threads)
            try:
                run, note = _route(name, net, lq, Path(workdir))
                seconds, output = _timed(run, args.repeats)
            except Exception as error:  # noqa: BLE001 - a route that cannot run is reported, not fatal
                rows.append({'route': name, 'error': f'{type(error).__name__}: {str(error).splitlines()[0][:160]}'})
                continue
            finally:
                torch.set_num_threads(threads)
                net = net.to(memory_format=torch.contiguous_format)
            rows.append({'route': name, 'seconds': seconds, 'output': output.float(), 'note': note})
    baseline = next((row for row in rows if row['route'] == 'fp32' and 'seconds' in row), None)
    for row in rows:
        if baseline is not None and 'seconds' in row:
            row['ratio'] = baseline['seconds'] / row['seconds']
            row['psnr'] = psnr_mu(row['output'], baseline['output'])
    return rows


def table(args: argparse.Namespace, rows: list) -> str:
    lines = [
        f'CPU: {cpu_model()}, {torch.get_num_threads()} threads; torch {torch.__version__}; the forward pass of the '
        f'shipped model on a {args.tile} x {args.tile} tile of the synthetic bracket, median of {args.repeats} '
        'after a warm-up.',
        '',
        '| Route | Seconds | Speed vs eager fp32 | PSNR-mu vs eager fp32 | Note |',
        '|---|---:|---:|---:|---|',
    ]
    for row in rows:
        if 'error' in row:
            lines.append(f'| {row["route"]} | | | | not run: {row["error"]} |')
            continue
        psnr = row.get('psnr', float('nan'))
        psnr_text = 'identical' if psnr == float('inf') else f'{psnr:.1f} dB'
        lines.append(
            f'| {row["route"]} | {row["seconds"]:.2f} | {row.get("ratio", float("nan")):.2f}x | {psnr_text} | '
            f'{row["note"]} |'
        )
    return '\n'.join(lines) + '\n'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tile', type=int, default=512, help='tile side in pixels (default: 512)')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs per route (default: 3)')
    parser.add_argument('--routes', nargs='+', choices=ROUTES, default=list(ROUTES), help='default: all')
    parser.add_argument('--checkpoint', type=Path, help='weights (default: the shipped LFFNet)')
    parser.add_argument('--output', type=Path, help='also write the markdown table here')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tile < 32 or args.repeats < 1:
        raise SystemExit('--tile must be at least 32 and --repeats at least 1')
    if 'fp32' not in args.routes:
        args.routes = ['fp32', *args.routes]  # the baseline
    text = table(args, measure(args))
    print(text)
    if args.output is not None:
        args.output.write_text(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
