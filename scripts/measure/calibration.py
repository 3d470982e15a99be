"""Response calibration error: how far each calibration method's inverse response is from the true one, on brackets
simulated through camera response families, held-out ones included.

Usage::

    python scripts/calibration_error.py --num 4 --size 256 [--families slog3 random] [--seed 0] \\
        [--radiance datasets/real_hdr] [--output calibration.md [--overwrite]]

Brackets: the capture simulator (:func:`lffnet_arch.data.simulator.capture.simulate_bracket`, ``handheld`` style:
a crop of a real radiance map, 3 frames 1 to 3 stops apart, camera shake, one or two moving objects, shot and read
noise, veiling glare, clipping at the raw level) renders linear 16-bit frames (a gamma of 1, no pedestal, no JPEG);
each family's curve (:mod:`lffnet_arch.response.families`, per-channel differences included) then encodes them, with
a black pedestal drawn from [0, 0.06] for half of the brackets, as 8-bit JPEG at quality 75 to 97. The log
encodings and ``random`` curves (:data:`lffnet_arch.response.HELD_OUT_FAMILIES`) are responses that the simulator's
``kalantari`` and ``handheld`` styles never draw. Radiance maps: ``--radiance``, else
``datasets/real_hdr`` when it exists, else the demo crops bundled with the package.

Methods: every method of :func:`lffnet_arch.response.calibrate_response`, and OpenCV's ``CalibrateDebevec`` and
``CalibrateRobertson`` with their defaults (8-bit input, which the JPEG frames are).

Error: |log2(g_est / g_true)| in stops at 1024 codes, after fitting one scale per channel (the median log ratio:
a bracket fixes each channel's curve only up to a factor, its white balance), over the codes the frames cover
without their clipped ends: from the bracket's 1st percentile code + 0.02, and no lower than the code of twice the
read noise (below it the frames hold noise, not signal), to its 99th percentile code, at most 0.98 (saturation and
JPEG ringing). The table gives the median and 90th percentile over the codes, channels and brackets of a family,
and the 90th percentile after one scale shared by the three channels (which also counts errors in their balance),
with the median seconds per calibration on this machine and how many brackets a method failed on (raised
ValueError).
"""

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from tqdm import tqdm

from lffnet_arch.commands.arguments import add_output, add_overwrite, positive_int
from lffnet_arch.data.simulator.capture import canvas_size, settings_for_style, simulate_bracket
from lffnet_arch.data.simulator.demo import DEMO_RADIANCE
from lffnet_arch.data.simulator.radiance import load_radiance_maps
from lffnet_arch.response import FAMILIES, HELD_OUT_FAMILIES, METHODS, Response, calibrate_response, draw_curve
from lffnet_arch.response.calibrate import AUTO_METHOD
from scripts.measure.profiling import markdown_table, report_command

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RADIANCE = REPO / 'datasets' / 'real_hdr'
# Linear frames from the simulator; the response, the pedestal and the JPEG are applied here.
LINEAR_CAPTURE = {
    'responses': ('gamma',),
    'gamma': (1.0, 1.0),
    'bit_depth': 16,
    'jpeg_quality': None,
    'black_level': (0.0, 0.0),
    'num_objects': (1, 2),
}
SETTINGS = settings_for_style('handheld', LINEAR_CAPTURE)
JPEG_QUALITY = (75, 97)
MAX_BLACK_LEVEL = 0.06
CODES = np.linspace(0.0, 1.0, 1024)
OPENCV_METHODS = ('opencv-debevec', 'opencv-robertson')


def _encode(rng: np.random.Generator, linear: np.ndarray, curve) -> np.ndarray:
    """Linear frame -> decoded 8-bit JPEG codes in [0, 1] (float32), through the camera curve."""
    codes = np.round(curve(linear) * 255).astype(np.uint8)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(codes[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('OpenCV failed to encode a JPEG frame.')
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def simulate(maps: Sequence, family: str, size: int, seed: Sequence[int]) -> dict:
    """One bracket of a family: frames (T, H, W, 3) in [0, 1], exposure times, the true response, the read noise."""
    bracket = simulate_bracket(maps, SETTINGS, size, seed)
    rng = np.random.default_rng([*seed, 1])
    black = float(rng.uniform(0.0, MAX_BLACK_LEVEL)) if rng.random() < 0.5 else 0.0
    curve = draw_curve(family, rng, black_level=black)
    frames = np.stack([_encode(rng, ldr.astype(np.float64) / 65535.0, curve) for ldr in bracket.ldrs])
    return {
        'frames': frames,
        'times': 2.0**bracket.evs,
        'curve': curve,
        'true': Response.from_forward(curve),
        'read_noise': bracket.info['read_noise'],
    }


def _opencv(name: str, frames: np.ndarray, times: np.ndarray) -> Response:
    """OpenCV's calibration with its defaults. Robertson leaves codes that no pixel has (below a pedestal) NaN:
    they take the value of the nearest code that has one."""
    calibrate = cv2.createCalibrateDebevec() if name == 'opencv-debevec' else cv2.createCalibrateRobertson()
    images = [np.ascontiguousarray(np.round(f[..., ::-1] * 255).astype(np.uint8)) for f in frames]
    response = calibrate.process(images, times.astype(np.float32))[:, 0, ::-1].astype(np.float64)
    codes = np.arange(256) / 255.0
    for c in range(3):
        finite = np.isfinite(response[:, c])
        if not finite.any():
            raise ValueError(f'{name}: no finite response in channel {"RGB"[c]}.')
        response[:, c] = np.interp(codes, codes[finite], response[finite, c])
    return Response.from_samples(codes, response)


def calibrate(name: str, frames: np.ndarray, times: np.ndarray) -> Response:
    """The response of one method (ours by name, or ``opencv-debevec`` / ``opencv-robertson``)."""
    if name in OPENCV_METHODS:
        return _opencv(name, frames, times)
    return calibrate_response(list(frames), times, method=name)[0]


def evaluation_range(case: dict, channel: int) -> tuple:
    """The codes the bracket covers without its clipped ends (see the module docstring)."""
    codes = case['frames'][..., channel]
    low, high = np.percentile(codes, [1, 99])
    floor = float(case['curve'](np.full(1, 2.0 * case['read_noise']))[0, channel])
    return max(low + 0.02, floor), min(high, 0.98)


def errors(case: dict, estimate: Response, shared: bool = False) -> np.ndarray:
    """|log2(g_est / g_true)| in stops over the evaluation range of every channel, after one scale per channel, or
    with ``shared`` one scale for all three (which also counts errors in the balance between channels)."""
    ratios = []
    for c in range(3):
        low, high = evaluation_range(case, c)
        inside = (CODES >= low) & (CODES <= high)
        estimated = np.maximum(estimate.table[c, inside], 1e-12)
        ratios.append(np.log2(estimated / np.maximum(case['true'].table[c, inside], 1e-12)))
    if shared:
        scale = np.median(np.concatenate(ratios))
        return np.abs(np.concatenate(ratios) - scale)
    return np.concatenate([np.abs(r - np.median(r)) for r in ratios if r.size])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--num', type=positive_int, default=8, help='brackets per family (default: %(default)s)')
    parser.add_argument('--size', type=positive_int, default=256, help='frame side in pixels (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the brackets (default: %(default)s)')
    parser.add_argument(
        '--families', nargs='+', choices=FAMILIES, default=list(FAMILIES), help='response families (default: all)'
    )
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=[m for m in METHODS if m != 'auto'] + list(OPENCV_METHODS),
        help='methods to compare (default: all; auto is one of them)',
    )
    parser.add_argument(
        '--radiance',
        type=Path,
        nargs='+',
        help='radiance maps: folders (searched recursively for .hdr/.exr) or files (default: datasets/real_hdr if '
        "it exists, else the package's demo crops)",
    )
    add_output(parser, 'also write the markdown to this file', required=False)
    add_overwrite(parser, 'the --output file')
    return parser


def _radiance_maps(paths: Optional[list]) -> tuple:
    roots = paths or [DEFAULT_RADIANCE if DEFAULT_RADIANCE.is_dir() else DEMO_RADIANCE]
    return ', '.join(map(str, roots)), load_radiance_maps(roots)


def frame_size(maps: Sequence, size: int) -> int:
    """``size``, or less where the smallest radiance map cannot hold the scene crop that camera shake needs."""
    side = min(min(m.image.shape[:2]) for m in maps)
    while size > 16 and canvas_size(SETTINGS, size) > side:
        size -= 8
    return size


def run(args: argparse.Namespace) -> str:
    """Simulate, calibrate and tabulate; returns the markdown."""
    root, maps = _radiance_maps(args.radiance)
    size = frame_size(maps, args.size)
    methods = args.methods or [m for m in METHODS if m != 'auto'] + list(OPENCV_METHODS)
    found = {(f, m): [] for f in args.families for m in methods}
    balanced = {key: [] for key in found}
    seconds = {key: [] for key in found}
    failed = dict.fromkeys(found, 0)
    jobs = [(f, i) for f in args.families for i in range(args.num)]
    for family, index in tqdm(jobs, desc='brackets', unit='bracket'):
        case = simulate(maps, family, size, (args.seed, FAMILIES.index(family), index))
        for method in methods:
            start = time.perf_counter()
            try:
                estimate = calibrate(method, case['frames'], case['times'])
            except ValueError:
                failed[(family, method)] += 1
                continue
            seconds[(family, method)].append(time.perf_counter() - start)
            found[(family, method)].append(errors(case, estimate))
            balanced[(family, method)].append(errors(case, estimate, shared=True))
    rows = []
    for family in args.families:
        for method in methods:
            key = (family, method)
            values = np.concatenate(found[key]) if found[key] else np.full(1, np.nan)
            shared = np.concatenate(balanced[key]) if balanced[key] else np.full(1, np.nan)
            rows.append(
                [
                    family + (' (held out)' if family in HELD_OUT_FAMILIES else ''),
                    method + (' (auto)' if method == AUTO_METHOD else ''),
                    float(np.median(values)),
                    float(np.percentile(values, 90)),
                    float(np.percentile(shared, 90)),
                    float(np.median(seconds[key])) if seconds[key] else float('nan'),
                    failed[key],
                ]
            )
    shrunk = f' (the radiance maps are too small for {args.size} with camera shake)' if size < args.size else ''
    header = (
        f'{args.num} brackets per family, {size} x {size}{shrunk}, seed {args.seed}, radiance maps from {root} '
        f'({len(maps)}). Error in stops over the covered codes after one scale per channel (median, p90), and p90 '
        'after one scale for all three channels; seconds per calibration (median).\n\n'
    )
    headers = ['family', 'method', 'median', 'p90', 'p90, one scale for RGB', 'seconds', 'failed']
    return header + markdown_table(headers, rows) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    report_command(args, run)
    return 0
