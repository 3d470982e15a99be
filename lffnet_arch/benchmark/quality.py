"""Quality evaluation: trained networks beside classical merges on the validation sets of an options file.

Usage:
    python scripts/evaluate_quality.py --opt options/train/LFFNet/train_LFFNet_RealHDR.yml \\
        --model LFFNet=experiments/LFFNet_RealHDR/models/net_g_latest.pth \\
        --model AHDRNet=experiments/AHDRNet_RealHDR/models/net_g_latest.pth --output quality.md

Every ``val*`` dataset of the options file is evaluated (simulated held-out brackets, real stacks such as the
Memorial Church), each scene by every method:

- ``reference frame``: L_ref ** 2.2 / t_ref, the networks' own HDR-domain input (what a fusion network must beat);
- ``MergeDebevec (gamma 2.2)``: OpenCV's merge with the response the networks assume;
- ``CalibrateDebevec + MergeDebevec`` and ``AlignMTB + CalibrateDebevec + MergeDebevec``: OpenCV's pipeline for
  a bracket of unknown response, without and with global alignment to the reference frame;
- ``MergeMertens``: exposure fusion (display-referred; linearised with gamma 2.2), scored after a global scale;
- each ``--model``: whole-image inference.

Scoring follows each dataset's ``scoring`` option: ``direct`` (the default: Kalantari's protocol, for sets whose
GT is in the units of the shortest exposure) or ``scaled`` (one global scale fitted first, see
``lffnet_arch.metrics.scaled_metric``, for real stacks and cameras of unknown response). Methods whose output has
no known scale (the calibrated merges, Mertens) are always scored after the fit; the table marks them. Each cell
is the mean over the set's scenes; ``< ref`` counts the scenes on which a method is below the reference frame in
PSNR-mu or SSIM-mu.
"""

import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import yaml
from basicsr.data import build_dataset
from tqdm import tqdm

from lffnet_arch.deploy import align_frames, fuse, load_model
from lffnet_arch.metrics import calculate_psnr_l, calculate_psnr_mu, calculate_ssim_mu, match_scale
from lffnet_arch.utils.hdr_util import network_input, reference_frame_hdr
from lffnet_arch.utils.merge import (
    linearize_display,
    merge_debevec,
    merge_debevec_calibrated,
    merge_mertens,
)

METRICS = OrderedDict(psnr_mu=calculate_psnr_mu, psnr_l=calculate_psnr_l, ssim_mu=calculate_ssim_mu)
HEADERS = {'psnr_mu': 'PSNR-mu', 'psnr_l': 'PSNR-L', 'ssim_mu': 'SSIM-mu'}


def _reference_frame(frames: list, times: np.ndarray, ref_idx: int) -> np.ndarray:
    return reference_frame_hdr(network_input(frames, times)[0], ref_idx).permute(1, 2, 0).numpy()


def classical_methods(ref_idx: int) -> 'OrderedDict[str, tuple]':
    """name -> (function(frames, times) -> HDR, whether its output has the units of the exposure times)."""

    def mtb_calibrated(frames, times):
        return merge_debevec_calibrated(align_frames(frames, times, ref_idx, 'mtb'), times)

    return OrderedDict(
        [
            ('reference frame', (lambda frames, times: _reference_frame(frames, times, ref_idx), True)),
            ('MergeDebevec (gamma 2.2)', (lambda frames, times: merge_debevec(frames, times)[0], True)),
            ('CalibrateDebevec + MergeDebevec', (merge_debevec_calibrated, False)),
            ('AlignMTB + CalibrateDebevec + MergeDebevec', (mtb_calibrated, False)),
            ('MergeMertens', (lambda frames, times: linearize_display(merge_mertens(frames)), False)),
        ]
    )


def score(pred: np.ndarray, gt: np.ndarray, scaled: bool) -> dict:
    """The metrics of one scene, after one global scale when ``scaled``."""
    if not np.isfinite(pred).all():
        raise ValueError('a method produced NaN or Inf')
    if scaled:
        pred, gt = match_scale(pred, gt)
    pred, gt = pred.astype(np.float32), gt.astype(np.float32)
    return {name: float(fn(pred, gt)) for name, fn in METRICS.items()}


def evaluate_dataset(dataset, methods: dict, scaled: bool, progress: bool = True) -> tuple:
    """Per-method mean metrics, scenes below the reference frame, and seconds per scene."""
    results = {name: [] for name in methods}
    seconds = {name: 0.0 for name in methods}
    for index in tqdm(range(len(dataset)), desc=dataset.opt['name'], unit='scene', disable=not progress):
        item = dataset[index]
        frames = [np.ascontiguousarray(f) for f in item['lq'][:, :3].permute(0, 2, 3, 1).numpy()]
        times = item['exposures'].numpy().astype(np.float64)
        gt = item['gt'].permute(1, 2, 0).numpy()
        for name, (method, known_scale) in methods.items():
            start = time.perf_counter()
            pred = method(frames, times)
            seconds[name] += time.perf_counter() - start
            results[name].append(score(pred, gt, scaled or not known_scale))
    reference = results['reference frame']
    summary = OrderedDict()
    for name, rows in results.items():
        means = {m: float(np.mean([r[m] for r in rows])) for m in METRICS}
        below = sum(r['psnr_mu'] < ref['psnr_mu'] or r['ssim_mu'] < ref['ssim_mu'] for r, ref in zip(rows, reference))
        summary[name] = (means, below, seconds[name] / len(rows), methods[name][1])
    return summary, len(dataset)


def format_table(title: str, summary: dict, count: int, scaled: bool) -> list:
    lines = [f'### {title} ({count} scenes, {"all scored after one global scale" if scaled else "direct"})', '']
    lines.append('| Method | ' + ' | '.join(HEADERS.values()) + ' | < ref | s / scene |')
    lines.append('|---|' + '---:|' * (len(HEADERS) + 2))
    for name, (means, below, secs, known_scale) in summary.items():
        label = name if scaled or known_scale else f'{name} (scaled)'
        cells = [f'{means[m]:.2f}' if m != 'ssim_mu' else f'{means[m]:.4f}' for m in METRICS]
        below_cell = '' if name == 'reference frame' else str(below)
        lines.append(f'| {label} | ' + ' | '.join(cells) + f' | {below_cell} | {secs:.2f} |')
    return lines + ['']


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--opt', type=Path, required=True, help='options file whose val* datasets to evaluate')
    parser.add_argument('--model', action='append', default=[], metavar='NAME=CHECKPOINT', help='a network to add')
    parser.add_argument('--datasets', nargs='+', help='only these val dataset keys (e.g. val_handheld)')
    parser.add_argument('--output', type=Path, help='also write the tables to this markdown file')
    parser.add_argument('--threads', type=int, help='torch threads (default: torch decides)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if not args.opt.is_file():
            raise FileNotFoundError(f'Options file {args.opt} not found.')
        opt = yaml.safe_load(args.opt.read_text(encoding='utf-8'))
        keys = [k for k in opt.get('datasets', {}) if k.startswith('val')]
        if args.datasets:
            unknown = sorted(set(args.datasets) - set(keys))
            if unknown:
                raise ValueError(f'{args.opt} has no val datasets {unknown}; it has {keys}.')
            keys = list(args.datasets)
        ref_idx = int(opt.get('network_g', {}).get('ref_idx', 1))
        methods = classical_methods(ref_idx)
        for spec in args.model:
            name, sep, path = spec.partition('=')
            if not sep or not name or not path:
                raise ValueError(f'--model expects NAME=CHECKPOINT, got {spec!r}.')
            net = load_model(path)
            methods[name] = (lambda frames, times, net=net: fuse(frames, times, net), True)
        lines = [f'Quality on the validation sets of `{args.opt}` (mu = 5000; SSIM on mu-law images).', '']
        for key in keys:
            dataset_opt = {**opt['datasets'][key], 'phase': 'val'}
            scaled = dataset_opt.pop('scoring', 'direct') == 'scaled'
            summary, count = evaluate_dataset(build_dataset(dataset_opt), methods, scaled)
            lines += format_table(dataset_opt['name'], summary, count, scaled)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'Error: {err}', file=sys.stderr)
        return 1
    text = '\n'.join(lines)
    print(text)
    if args.output:
        args.output.write_text(text + '\n', encoding='utf-8')
    return 0
