"""Time and peak memory of ``lffnet-inference`` on synthetic brackets of given sizes, per route (``--precision``),
quiet and beside a competing process, against another revision's defaults, and how far its bounded output (strips,
or tiles with ``--tile N``) is from the whole-image output.

For each ``--sizes`` entry (megapixels: 12 is 4000 x 3000, 45 is 8192 x 5504) the script writes a synthetic 3-frame
8-bit JPEG bracket (``scripts/make_synthetic_bracket.py``), runs ``lffnet-inference`` on it with its defaults (the
shipped model, fp32, ECC alignment, ``--tile auto`` under ``--max_memory``, the fusion preview) and reads the peak
resident memory of that process: ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` taken in a small wrapper process
around it (this script itself stays small and imports neither torch nor NumPy, because Linux carries a parent's peak
into a child it starts). Seconds are wall time, not to be trusted while other work shares the machine.

PSNR-mu of the bounded output against the whole-image output: the whole image at once needs about 2.6 kB a pixel
(the shipped model's forward pass), so the whole bracket is the reference only when that fits in the available
memory (``--reference auto``); otherwise a centred crop (``--crop``, default 2400x1800) of the decoded frames is
fused twice, under the same bound (in strips) or with the tile the bound chose for the full bracket, and whole, and
the two compared (``crop`` in the table). ``--reference none`` skips it.

Rows per size: one per ``--precisions`` entry (default ``auto fp32``); with ``--busy`` the first again while another
CPU-bound process (torch matrix products with its default threads) shares the machine; with ``--baseline CHECKOUT``
the ``lffnet-inference`` of that checkout (e.g. ``git worktree add ../before COMMIT``) with its own defaults, at
``--baseline_sizes``, which gives the speed column. PSNR-mu against the fp32 route compares the full outputs.

Usage::

    git worktree add ../before 1b1787b   # the revision to compare with
    python scripts/benchmark_memory.py --sizes 12 45 --busy --baseline ../before --output memory.md
    python scripts/benchmark_memory.py --sizes 12 --max_memory 2GB --reference none
"""

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
WHOLE_BYTES_PER_PIXEL = 2600  # the shipped LFFNet's forward pass (lffnet_arch.archs.forward_bytes_per_pixel)
# The competing CPU-bound process of the busy rows: torch matrix products with torch's default threads.
COMPETITOR = 'import torch\na = torch.randn(1024, 1024)\nwhile True:\n    a = (a @ a).clamp_(-1, 1)\n'
# Runs a command and writes its wall time and its peak RSS (getrusage of the children, kibibytes on Linux) as JSON.
WRAPPER = """
import json, resource, subprocess, sys, time
start = time.monotonic()
code = subprocess.run(sys.argv[2:]).returncode
seconds = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (1 if sys.platform == 'darwin' else 1024)
json.dump({'returncode': code, 'seconds': seconds, 'peak_bytes': peak}, open(sys.argv[1], 'w'))
"""
# Centre crop of a bracket's decoded frames as lossless PNGs with an exposure.txt (EV from the EXIF times).
CROP = """
import math, sys
from pathlib import Path
from PIL import Image
from lffnet_arch.deploy.bracket import read_exif_exposure
source, target, width, height = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
target.mkdir(parents=True, exist_ok=True)
frames = sorted(source.glob('*.jpg'))
times = [read_exif_exposure(p) for p in frames]
for path in frames:
    with Image.open(path) as image:
        left, top = (image.width - width) // 2, (image.height - height) // 2
        image.crop((left, top, left + width, top + height)).save(target / (path.stem + '.png'))
(target / 'exposure.txt').write_text(''.join(f'{math.log2(t / min(times))!r}\\n' for t in times))
"""
# PSNR-mu of two .exr files (the first against the second).
PSNR = """
import json, sys
import numpy as np
from lffnet_arch.fileio.image import read_hdr
from lffnet_arch.hdr_input import mu_law
a, b = (np.clip(read_hdr(p), 0, 1) for p in sys.argv[1:3])
mse = float(np.mean((mu_law(a) - mu_law(b)) ** 2))
print(json.dumps({'psnr_mu': 10 * np.log10(1 / mse) if mse > 0 else float('inf')}))
"""


def _size_of(megapixels: float) -> tuple:
    """``make_synthetic_bracket.size_of``, imported here only (it brings NumPy and OpenCV; the measured processes
    are the wrapper's children, whose peak does not include this process's)."""
    sys.path.insert(0, str(ROOT / 'scripts'))
    from make_synthetic_bracket import size_of

    return size_of(megapixels)


def _inference_command() -> list:
    found = shutil.which('lffnet-inference')
    return [found] if found else [sys.executable, str(ROOT / 'scripts' / 'inference_hdr.py')]


def _measured(command: list, log: Path) -> dict:
    """Run ``command`` in a wrapper process; its return code, seconds and peak RSS, its output in ``log``."""
    with tempfile.NamedTemporaryFile('r', suffix='.json') as result, open(log, 'w') as output:
        subprocess.run([sys.executable, '-c', WRAPPER, result.name, *command], stdout=output, stderr=output, check=True)
        return json.load(open(result.name))


def _python(code: str, *args: str) -> str:
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    done = subprocess.run([sys.executable, '-c', code, *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f'helper process failed: {done.stderr.strip()[-2000:]}')
    return done.stdout


def _available_bytes() -> Optional[int]:
    try:
        with open('/proc/meminfo', encoding='ascii') as file:
            return next(int(line.split()[1]) * 1024 for line in file if line.startswith('MemAvailable:'))
    except (OSError, StopIteration):
        return None


def _tile_of(log: Path) -> str:
    """How the run split the image, from the bracket's line in its output: ``strips N`` (rows), a tile side, or
    ``whole``."""
    text = log.read_text(errors='replace')
    strips = re.search(r': whole-image result in strips of (\d+) rows', text)
    if strips:
        return f'strips {strips.group(1)}'
    match = re.search(r': tiles of (\d+) x \d+ px', text)
    return match.group(1) if match else ('whole' if 'whole image at once' in text else '?')


def _fuse(bracket: Path, out: Path, log: Path, flags: Sequence[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    result = _measured([*_inference_command(), '--input', str(bracket), '--output', str(out), *flags], log)
    if result['returncode']:
        raise RuntimeError(f'lffnet-inference failed on {bracket} (exit {result["returncode"]}); see {log}')
    precision = re.search(r'bracket\(s\) on \S+(?: with \d+ thread\(s\))?, (\w+) \(', log.read_text(errors='replace'))
    return {**result, 'tile': _tile_of(log), 'precision': precision.group(1) if precision else '?'}


def _psnr(first: Path, second: Path) -> float:
    return json.loads(_python(PSNR, str(first), str(second)))['psnr_mu']


def _reference(
    args: argparse.Namespace, folder: Path, bracket: Path, run: dict, size: tuple, output: str = 'out'
) -> tuple:
    """(PSNR-mu of the bounded output against the whole image, what was compared)."""
    width, height = size
    name = bracket.name
    args = argparse.Namespace(**{**vars(args), 'flags': ['--precision', args.precisions[0], *args.flags]})
    available = _available_bytes() or 0
    if args.reference == 'none':
        return None, 'not measured (--reference none)'
    if args.reference == 'auto' and width * height * WHOLE_BYTES_PER_PIXEL + 2 * 10**9 < available:
        whole = _fuse(bracket, folder / 'whole', folder / 'whole.log', ['--tile', 'none', *args.flags])
        return _psnr(
            folder / output / f'{name}.exr', folder / 'whole' / f'{name}.exr'
        ), f'whole image ({whole["tile"]})'
    crop_w, crop_h = (int(v) for v in args.crop.lower().split('x'))
    if crop_w * crop_h * WHOLE_BYTES_PER_PIXEL + 2 * 10**9 > available:
        return None, f'not possible: even the {args.crop} crop does not fit in the available memory'
    if run['tile'] in ('whole', '?'):
        return float('inf'), 'the bounded run was the whole image'
    crop = folder / 'crop'
    _python(CROP, str(bracket), str(crop), str(crop_w), str(crop_h))
    if run['tile'].startswith('strips'):  # the crop in strips under the same bound
        flags, what = ['--max_memory', args.max_memory, *args.flags], 'strips'
    else:
        flags, what = ['--tile', run['tile'], *args.flags], f'{run["tile"]}-px tiles'
    bounded = _fuse(crop, folder / 'crop_tiled', folder / 'crop_tiled.log', flags)
    _fuse(crop, folder / 'crop_whole', folder / 'crop_whole.log', ['--tile', 'none', *args.flags])
    psnr = _psnr(folder / 'crop_tiled' / 'crop.exr', folder / 'crop_whole' / 'crop.exr')
    return psnr, f'centred {args.crop} crop, {what} ({bounded["tile"]}) vs the whole crop at once'


def _baseline_command(checkout: Path) -> list:
    """``lffnet-inference`` of another checkout (e.g. a worktree of an earlier commit), run from its own code."""
    code = f'import sys; sys.path.insert(0, {str(checkout)!r}); import lffnet_cli; sys.exit(lffnet_cli.inference())'
    return [sys.executable, '-c', code]


def _bracket(args: argparse.Namespace, megapixels: float) -> Path:
    bracket = args.workdir / f'{megapixels:g}MP' / 'bracket'
    if not (bracket / 'IMG_2.jpg').is_file():
        print(f'{megapixels:g} MP: writing the synthetic bracket', flush=True)
        script = ROOT / 'scripts' / 'make_synthetic_bracket.py'
        subprocess.run(
            [sys.executable, str(script), '--megapixels', f'{megapixels:g}', '--output', str(bracket)], check=True
        )
    return bracket


def _busy(run: Callable[[], dict]) -> dict:
    """``run()`` while another CPU-bound process (torch matrix products, default threads) shares the machine."""
    competitor = subprocess.Popen([sys.executable, '-c', COMPETITOR], env={**os.environ, 'OMP_WAIT_POLICY': ''})
    try:
        time.sleep(3)  # the competitor is running before the measured command starts
        return run()
    finally:
        competitor.kill()
        competitor.wait()


def _rows(args: argparse.Namespace, megapixels: float) -> list:
    """The rows of one size: each precision, the busy run, the baseline; the whole-image reference of the first."""
    folder = args.workdir / f'{megapixels:g}MP'
    bracket, size, name = _bracket(args, megapixels), _size_of(megapixels), f'{megapixels:g} MP'
    rows = []
    for precision in args.precisions:
        flags = ['--max_memory', args.max_memory, '--precision', precision, *args.flags]
        print(f'{name}: lffnet-inference --precision {precision}', flush=True)
        run = _fuse(bracket, folder / f'out_{precision}', folder / f'{precision}.log', flags)
        rows.append({'route': f'--precision {precision} ({run["precision"]})', 'output': f'out_{precision}', **run})
        if args.busy and precision == args.precisions[0]:
            print(f'{name}: the same with a competing process', flush=True)
            log = folder / f'{precision}_busy.log'
            busy = _busy(lambda: _fuse(bracket, folder / 'out_busy', log, flags))  # noqa: B023 - run at once
            rows.append({'route': f'--precision {precision}, busy', 'output': 'out_busy', **busy})
    if args.baseline is not None and megapixels in args.baseline_sizes:
        print(f'{name}: the baseline {args.baseline}', flush=True)
        command = _baseline_command(args.baseline)
        log = folder / 'baseline.log'
        shutil.rmtree(folder / 'out_baseline', ignore_errors=True)
        run = _measured([*command, '--input', str(bracket), '--output', str(folder / 'out_baseline')], log)
        if run['returncode']:
            raise RuntimeError(f'the baseline failed on {bracket} (exit {run["returncode"]}); see {log}')
        split = _tile_of(log).replace('?', 'not reported')
        rows.append(
            {'route': f'baseline: {args.baseline.name} defaults', 'output': 'out_baseline', **run, 'tile': split}
        )
    fp32 = next((row for row in rows if row['route'].startswith('--precision fp32 ')), None)
    baseline = next((row for row in rows if row['route'].startswith('baseline')), None)
    for row in rows:
        row.update(size=size, megapixels=megapixels)
        row['speed'] = baseline['seconds'] / row['seconds'] if baseline else None
        if fp32 is not None:
            row['vs_fp32'] = _psnr(folder / row['output'] / 'bracket.exr', folder / fp32['output'] / 'bracket.exr')
    first = rows[0]
    run = {'tile': first['tile']}
    print(f'{name}: peak {first["peak_bytes"] / 1e6:.0f} MB, {first["tile"]}; reference', flush=True)
    first['psnr_mu'], first['compared'] = _reference(args, folder, bracket, run, size, first['output'])
    return rows


def _cpu_model() -> str:
    """``lffnet_arch.threads.cpu_model``, loaded from its file: importing the package would bring torch into this
    process, which stays small (see above); the module itself needs only the standard library."""
    spec = importlib.util.spec_from_file_location('_lffnet_threads', ROOT / 'lffnet_arch' / 'threads.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cpu_model()


def _table(args: argparse.Namespace, rows: list) -> str:
    lines = [
        f'`lffnet-inference` (shipped LFFNet, ECC alignment, fusion preview), `--max_memory {args.max_memory}`'
        f'{" " + " ".join(args.flags) if args.flags else ""}; CPU: {_cpu_model()}; peak RSS of the inference process '
        '(getrusage of the children); seconds are wall time, comparable only within one quiet run (the busy rows '
        'share the machine with another CPU-bound process on purpose).',
        '',
        '| Size | Route | Split | Peak RSS | Seconds | Speed vs baseline | PSNR-mu vs the fp32 route |',
        '|---|---|---:|---:|---:|---:|---:|',
    ]
    for row in rows:
        width, height = row['size']
        speed = '' if row.get('speed') is None else f'{row["speed"]:.2f}x'
        vs_fp32 = row.get('vs_fp32')
        psnr = '' if vs_fp32 is None else ('identical' if vs_fp32 == float('inf') else f'{vs_fp32:.1f} dB')
        lines.append(
            f'| {row["megapixels"]:g} MP ({width} x {height}) | {row["route"]} | {row["tile"]} | '
            f'{row["peak_bytes"] / 1e6:.0f} MB | {row["seconds"]:.0f} | {speed} | {psnr} |'
        )
    lines += ['', '| Size | PSNR-mu bounded vs whole | Compared |', '|---|---:|---|']
    for row in rows:
        if 'compared' in row:
            width, height = row['size']
            psnr = '' if row['psnr_mu'] is None else f'{row["psnr_mu"]:.2f} dB'
            lines.append(
                f'| {row["megapixels"]:g} MP ({width} x {height}) | {psnr} | {row["route"]}: {row["compared"]} |'
            )
    return '\n'.join(lines) + '\n'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=float, nargs='+', default=[12, 45], help='megapixels (default: 12 45)')
    parser.add_argument('--output', type=Path, help='also write the markdown table here')
    parser.add_argument('--workdir', type=Path, help='brackets and outputs (default: a temporary folder, removed)')
    parser.add_argument('--max_memory', default='2.5GB', help="lffnet-inference's --max_memory (default: 2.5GB)")
    parser.add_argument(
        '--precisions',
        nargs='+',
        default=['auto', 'fp32'],
        choices=('auto', 'fp32', 'bf16', 'fp16'),
        help='a row per --precision; the first also gets the busy row and the whole-image reference '
        '(default: auto fp32)',
    )
    parser.add_argument('--busy', action='store_true', help='also run the first precision beside a CPU-bound process')
    parser.add_argument(
        '--baseline',
        type=Path,
        help='a checkout of another revision (e.g. git worktree add ../before COMMIT) whose lffnet-inference runs '
        "with its own defaults, the speed column's reference",
    )
    parser.add_argument(
        '--baseline_sizes', type=float, nargs='+', default=[12], help='sizes the baseline runs at (default: 12)'
    )
    parser.add_argument(
        '--reference',
        choices=('auto', 'crop', 'none'),
        default='auto',
        help='whole-image reference: the whole bracket where it fits, else a crop (auto); always a crop; or none',
    )
    parser.add_argument('--crop', default='2400x1800', help='crop of the reference where the whole does not fit')
    parser.add_argument('flags', nargs='*', help='more lffnet-inference flags, after --')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    temporary = args.workdir is None
    args.workdir = Path(tempfile.mkdtemp(prefix='benchmark_memory_')) if temporary else args.workdir
    try:
        rows = [row for megapixels in args.sizes for row in _rows(args, megapixels)]
    finally:
        if temporary:
            shutil.rmtree(args.workdir, ignore_errors=True)
    table = _table(args, rows)
    print(table)
    if args.output is not None:
        args.output.write_text(table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
