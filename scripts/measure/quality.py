"""Quality evaluation: trained networks beside classical merges on the validation sets of an options file and on
Kalantari-layout test folders.

Usage:
    python scripts/evaluate_quality.py --opt options/train/LFFNet/train_LFFNet_RealHDR.yml \\
        --model LFFNet --model AHDRNet --output quality.md    # the shipped models
    python scripts/evaluate_quality.py --opt options/train/LFFNet/train_LFFNet_RealHDR.yml \\
        --model mine=experiments/LFFNet_RealHDR/models/net_g_latest.pth --output quality.md
    python scripts/evaluate_quality.py --test_set datasets/Kalantari/Test --model LFFNet=net_g_latest.pth

Every ``val*`` dataset of the options file is evaluated (simulated held-out brackets, real stacks such as the
Memorial Church), and every ``--test_set`` folder (scene folders with frames, ``exposure.txt`` and ``HDRImg.hdr``,
scored directly), each scene by every method:

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
PSNR-mu or SSIM-mu. Metrics: PSNR-mu, PSNR-L, SSIM-mu (Kalantari's protocol, :mod:`lffnet_arch.metrics.hdr_metric`),
PU21-PSNR, PU21-SSIM and, when the optional ``pycvvdp`` package is installed, ColorVideoVDP in JOD
(:mod:`lffnet_arch.metrics.perceptual_metric`: the GT maximum shown at 1000 cd/m^2).
"""

import argparse
import itertools
import json
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from basicsr.data import build_dataset
from tqdm import tqdm

from lffnet_arch.commands.arguments import add_output, add_threads, check_output_file
from lffnet_arch.commands.options import read_options_file, resolve_paths
from lffnet_arch.commands.options_schema import check_options
from lffnet_arch.data.layout import list_scenes, read_scene
from lffnet_arch.data.simulator.capture import forward_response
from lffnet_arch.deploy import align_frames, fuse, load_model
from lffnet_arch.deploy.pretrained import PRETRAINED
from lffnet_arch.fileio.atomic import atomic_path
from lffnet_arch.fileio.image import imwrite_atomic
from lffnet_arch.hdr_input import network_input, reference_frame_hdr
from lffnet_arch.metrics import calculate_psnr_l, calculate_psnr_mu, calculate_ssim_mu, match_scale
from lffnet_arch.metrics.perceptual_metric import (
    CVVDP_INSTALL_HINT,
    calculate_cvvdp,
    calculate_pu21_psnr,
    calculate_pu21_ssim,
    cvvdp_available,
)
from lffnet_arch.response import Response
from lffnet_arch.response.resolve import resolve_response
from lffnet_arch.tonemap import methods_picture
from scripts.measure.merges import (
    linearize_display,
    merge_debevec,
    merge_debevec_calibrated,
    merge_mertens,
)

REPO = Path(__file__).resolve().parents[2]  # the checkout: relative data paths are read against it

METRICS = OrderedDict(
    psnr_mu=calculate_psnr_mu,
    psnr_l=calculate_psnr_l,
    ssim_mu=calculate_ssim_mu,
    pu21_psnr=calculate_pu21_psnr,
    pu21_ssim=calculate_pu21_ssim,
)
HEADERS = {
    'psnr_mu': 'PSNR-mu',
    'psnr_l': 'PSNR-L',
    'ssim_mu': 'SSIM-mu',
    'pu21_psnr': 'PU21-PSNR',
    'pu21_ssim': 'PU21-SSIM',
    'cvvdp': 'ColorVideoVDP (JOD)',
}
if cvvdp_available():
    METRICS['cvvdp'] = calculate_cvvdp
DIGITS = {'ssim_mu': 4, 'pu21_ssim': 4}  # the others: 2


class Scene:
    """What a method may use beside the frames: the linearisation of the set (``response``: resolved once per scene,
    a calibration for ``auto``) and, for simulated brackets, the camera's true inverse response (``truth``)."""

    def __init__(self, frames: list, times: np.ndarray, spec: Any = 'gamma:2.2', truth: Optional[Response] = None):
        self.frames, self.times, self.spec, self.truth = frames, times, spec, truth
        self._response = None

    @property
    def response(self) -> Response:
        if self._response is None:
            self._response = resolve_response(self.spec, self.frames, self.times)[0]
        return self._response


def _reference_frame(frames: list, times: np.ndarray, ref_idx: int, response: Optional[Response] = None) -> np.ndarray:
    lq = network_input(frames, times, response=response)[0]
    return reference_frame_hdr(lq, ref_idx).permute(1, 2, 0).numpy()


def classical_methods(ref_idx: int, oracle: bool = False) -> 'OrderedDict[str, tuple]':
    """name -> (function(frames, times, scene=None) -> HDR, whether its output has the units of the exposure times).

    ``reference frame`` is linearised as the set says (gamma 2.2 without a scene); with ``oracle``, a row linearised
    with the true response follows it."""

    def mtb_calibrated(frames, times, scene=None):
        return merge_debevec_calibrated(align_frames(frames, times, ref_idx, 'mtb'), times)

    def reference(frames, times, scene=None):
        return _reference_frame(frames, times, ref_idx, scene.response if scene is not None else None)

    methods = [('reference frame', (reference, True))]
    if oracle:
        truth = (
            'reference frame (true response)',
            (lambda f, t, scene: _reference_frame(f, t, ref_idx, scene.truth), True),
        )
        methods.append(truth)
    methods += [
        ('MergeDebevec (gamma 2.2)', (lambda frames, times, scene=None: merge_debevec(frames, times)[0], True)),
        (
            'CalibrateDebevec + MergeDebevec',
            (lambda frames, times, scene=None: merge_debevec_calibrated(frames, times), False),
        ),
        ('AlignMTB + CalibrateDebevec + MergeDebevec', (mtb_calibrated, False)),
        ('MergeMertens', (lambda frames, times, scene=None: linearize_display(merge_mertens(frames)), False)),
    ]
    return OrderedDict(methods)


def score(pred: np.ndarray, gt: np.ndarray, scaled: bool) -> dict:
    """The metrics of one scene, after one global scale when ``scaled``."""
    if not np.isfinite(pred).all():
        raise ValueError('a method produced NaN or Inf')
    if scaled:
        pred, gt = match_scale(pred, gt)
    pred, gt = pred.astype(np.float32), gt.astype(np.float32)
    return {name: float(fn(pred, gt)) for name, fn in METRICS.items()}


def dataset_scenes(dataset) -> Iterator[tuple]:
    """(frames, times, gt, label, truth) of every item of a registered dataset: frames (H, W, 3) float32 in [0, 1];
    the label is the item's number and, when it comes from one, the photograph's file stem; truth the camera's
    inverse response of a simulated bracket (None for real data)."""
    for index in range(len(dataset)):
        item = dataset[index]
        truth = Response.from_forward(forward_response(json.loads(item['response']))) if 'response' in item else None
        frames = [np.ascontiguousarray(f) for f in item['lq'][:, :3].permute(0, 2, 3, 1).numpy()]
        source = item.get('key', '')
        if item.get('gt_path'):  # the photograph a bracket was simulated from, or a scene folder's name
            gt_path = Path(item['gt_path'])
            source = gt_path.parent.name if gt_path.stem.lower() == 'hdrimg' else gt_path.stem
        label = f'scene {index} ({source})' if source else f'scene {index}'
        yield frames, item['exposures'].numpy().astype(np.float64), item['gt'].permute(1, 2, 0).numpy(), label, truth


def folder_scenes(scene_dirs: Sequence[Path], num_exposure: int = 3) -> Iterator[tuple]:
    """(frames, times, gt, label) of Kalantari-layout scene folders (:func:`lffnet_arch.data.layout.read_scene`);
    the label is the folder's name."""
    for scene_dir in scene_dirs:
        scene = read_scene(scene_dir, num_exposure)
        yield scene.ldrs, scene.exposures.astype(np.float64), scene.gt, scene_dir.name


def evaluate_scenes(
    scenes: Iterable[tuple], count: int, name: str, methods: dict, scaled: bool, response: Any = 'gamma:2.2'
) -> tuple:
    """Per-method mean metrics, scenes below the reference frame, and seconds per scene.

    Args:
        scenes (iterable): ``count`` tuples (frames, times, gt, label[, truth]), as :func:`dataset_scenes` or
            :func:`folder_scenes`.
        count (int): The number of scenes (for the progress bar).
        name (str): The set's name (for the progress bar).
        methods (dict): name -> (function(frames, times) -> HDR, whether its output has the times' units).
        scaled (bool): Score every method after one global scale.
        response: How the reference frame and the networks linearise the frames (a response option; default
            gamma 2.2, the Kalantari protocol).

    Returns:
        tuple: (summary, count): method -> (means, below, seconds per scene, known scale, the scenes below the
        reference frame as (label, PSNR-mu difference, SSIM-mu difference)).

    Raises:
        ValueError: A method failed or gave NaN / Inf on a scene; the message names the set, scene and method.
    """
    results = {name: [] for name in methods}
    seconds = {name: 0.0 for name in methods}
    labels = []
    for frames, times, gt, label, *truth in tqdm(scenes, desc=name, total=count, unit='scene'):
        labels.append(label)
        scene = Scene(frames, times, response, truth[0] if truth else None)
        for method_name, (method, known_scale) in methods.items():
            start = time.perf_counter()
            try:
                pred = method(frames, times, scene)
                seconds[method_name] += time.perf_counter() - start
                results[method_name].append(score(pred, gt, scaled or not known_scale))
            except (RuntimeError, ValueError) as err:  # NaN output, a shape the network refuses, out of memory
                raise ValueError(f'{name}, {label}, method {method_name!r}: {err}') from err
    reference = results['reference frame']
    summary = OrderedDict()
    for method_name, rows in results.items():
        means = {m: float(np.mean([r[m] for r in rows])) for m in METRICS}
        below = [
            (label, r['psnr_mu'] - ref['psnr_mu'], r['ssim_mu'] - ref['ssim_mu'])
            for label, r, ref in zip(labels, rows, reference)
            if r['psnr_mu'] < ref['psnr_mu'] or r['ssim_mu'] < ref['ssim_mu']
        ]
        summary[method_name] = (means, len(below), seconds[method_name] / len(rows), methods[method_name][1], below)
    return summary, len(reference)


PRECISION = {'value': 'fp32'}  # the networks' arithmetic, set by --precision


def network_method(
    net: torch.nn.Module, tile: Optional[int] = None, tile_overlap: int = 32, truth: bool = False
) -> tuple:
    """A method entry for a network: whole-image (or tiled) :func:`lffnet_arch.deploy.fusion`, known scale; the frames
    linearised as the set says (gamma 2.2 without a scene), or with the true response (``truth``); in the precision
    of ``--precision``."""

    def method(frames, times, scene=None):
        response = 'gamma:2.2' if scene is None else (scene.truth if truth else scene.response)
        return fuse(
            frames,
            times,
            net,
            tile_size=tile,
            tile_overlap=tile_overlap,
            response=response,
            precision=PRECISION['value'],
        )

    return method, True


def evaluate_test_set(
    folder: Path, networks: dict, tile: Optional[int] = None, tile_overlap: int = 32, max_scenes: Optional[int] = None
) -> list:
    """The markdown table of a Kalantari-layout test folder, scored directly: classical merges and ``networks``.

    Args:
        folder (Path): Folder of scene folders (frames, exposure.txt, HDRImg.hdr).
        networks (dict[str, nn.Module]): Row name -> network (eval mode, on its device).
        tile (int, optional): Tile size for the networks; whole images when None.
        tile_overlap (int): Tile overlap. Default: 32.
        max_scenes (int, optional): Use only the first scenes (sorted by name).

    Raises:
        ValueError: The networks fuse different numbers of frames.
    """
    frames = {getattr(net, 'num_exposure', 3) for net in networks.values()} or {3}
    if len(frames) > 1:
        raise ValueError(f'The networks fuse different numbers of frames {sorted(frames)}; evaluate them separately.')
    num_exposure = frames.pop()
    methods = classical_methods((num_exposure - 1) // 2)
    methods.update((name, network_method(net, tile, tile_overlap)) for name, net in networks.items())
    scene_dirs = list_scenes(folder)[:max_scenes]
    title = f'Quality on {folder}'
    summary, count = evaluate_scenes(folder_scenes(scene_dirs, num_exposure), len(scene_dirs), title, methods, False)
    return format_table(title, summary, count, False, list(networks))


def metric_notes() -> list:
    """What the columns are; says so when the ColorVideoVDP column is left out."""
    notes = [
        '- PSNR-mu, PSNR-L, SSIM-mu: docs/design.md §7 (values clipped to [0, 1], mu = 5000, SSIM on mu-law images); '
        'PU21-PSNR (RGB, peak 256) and PU21-SSIM (luminance), banding_glare encoding'
        + (', and ColorVideoVDP (JOD)' if 'cvvdp' in METRICS else '')
        + ' on absolute luminance: the GT maximum shown at 1000 cd/m^2.'
    ]
    if 'cvvdp' not in METRICS:
        notes.append(f'- ColorVideoVDP column skipped: the pycvvdp package is not installed ({CVVDP_INSTALL_HINT}).')
    return notes + ['']


def format_table(title: str, summary: dict, count: int, scaled: bool, detail: Sequence[str] = ()) -> list:
    """The markdown table of one set; for the methods named in ``detail`` (the networks), also the scenes where
    they are below the reference frame, with the differences."""
    lines = [f'### {title} ({count} scenes, {"all scored after one global scale" if scaled else "direct"})', '']
    lines.append('| Method | ' + ' | '.join(HEADERS[m] for m in METRICS) + ' | < ref | s / scene |')
    lines.append('|---|' + '---:|' * (len(METRICS) + 2))
    for name, (means, below, secs, known_scale, _) in summary.items():
        label = name if scaled or known_scale else f'{name} (scaled)'
        cells = [f'{means[m]:.{DIGITS.get(m, 2)}f}' for m in METRICS]
        below_cell = '' if name == 'reference frame' else str(below)
        lines.append(f'| {label} | ' + ' | '.join(cells) + f' | {below_cell} | {secs:.2f} |')
    lines.append('')
    for name in detail:
        scenes = summary[name][4]
        if scenes:
            listed = '; '.join(f'{label}: {dp:+.2f} dB, SSIM-mu {ds:+.4f}' for label, dp, ds in scenes)
            lines += [f'{name} below the reference frame (PSNR-mu, SSIM-mu differences): {listed}.', '']
    return lines


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--opt', type=Path, help='options file whose val* datasets to evaluate')
    parser.add_argument(
        '--test_set',
        type=Path,
        action='append',
        default=[],
        metavar='FOLDER',
        help='Kalantari-layout test folder, scored directly (repeatable)',
    )
    parser.add_argument(
        '--model',
        action='append',
        default=[],
        metavar='NAME=CHECKPOINT',
        help=f'a network to add, or the name of a shipped model ({", ".join(sorted(PRETRAINED))})',
    )
    parser.add_argument('--datasets', nargs='+', help='only these val dataset keys (e.g. val_handheld)')
    parser.add_argument('--max_scenes', type=int, help='use only the first N scenes of each --test_set')
    add_output(parser, 'also write the tables to this markdown file', required=False)
    add_threads(parser)
    parser.add_argument(
        '--picture',
        nargs=2,
        metavar=('KEY:INDEX', 'PNG'),
        help="also draw scene INDEX of val dataset KEY (e.g. val_handheld:3): the inputs, the better of OpenCV's two "
        'calibrated merges on that scene, every --model and the GT, tone-mapped alike',
    )
    parser.add_argument('--picture_tonemap', default='mulaw', help='tone mapper of --picture (default: mulaw)')
    parser.add_argument(
        '--precision',
        choices=('fp32', 'bf16', 'fp16'),
        default='fp32',
        help="the networks' arithmetic (torch.autocast; default: fp32): compare a run with bf16 against one with fp32",
    )
    args = parser.parse_args(argv)
    PRECISION['value'] = args.precision
    if args.opt is None and not args.test_set:
        parser.error('give --opt OPTIONS.yml (its val* datasets), --test_set FOLDER, or both')
    if args.max_scenes is not None and args.max_scenes < 1:
        parser.error(f'--max_scenes must be a positive number of scenes, got {args.max_scenes}')
    if args.picture and args.opt is None:
        parser.error('--picture draws a scene of a val dataset of --opt')
    return args


def val_dataset(dataset_opt: dict) -> tuple:
    """(The BasicSR options of a validation set, whether it is scored after one global scale): ``scoring: scaled``
    marks sets without an absolute scale (the handheld style, Memorial); ``direct``, the default, scores as is."""
    opt = {**dataset_opt, 'phase': 'val'}
    return opt, opt.pop('scoring', 'direct') == 'scaled'


def read_evaluation_options(path: Path) -> dict:
    """The options file whose validation sets are evaluated: read safely, checked as training reads it, relative
    data paths resolved against the checkout (as ``python lffnet_arch/train.py`` resolves them)."""
    opt = resolve_paths(read_options_file(path), str(REPO))
    check_options(opt, False, str(path))
    return opt


def set_response(dataset_opt: dict) -> str:
    """How a validation set's frames are linearised for the networks: its ``response`` option, else its gamma."""
    return dataset_opt.get('response') or f'gamma:{dataset_opt.get("gamma", 2.2)!r}'


def picture_scene(opt: dict, spec: str) -> tuple:
    """(dataset options, scored after a scale, scene index) of ``--picture KEY:INDEX``, checked against the set's
    length before any evaluation starts."""
    key, sep, index = spec.rpartition(':')
    val_keys = [k for k in opt.get('datasets', {}) if k.startswith('val')]
    if not sep or key not in val_keys or not index.isdigit():
        raise ValueError(f'--picture expects KEY:INDEX with KEY one of the val datasets {val_keys}, got {spec!r}.')
    dataset_opt, scaled = val_dataset(opt['datasets'][key])
    count = len(build_dataset(dataset_opt))
    if int(index) >= count:
        raise ValueError(f'--picture {spec}: {key} has {count} scenes, numbered 0 to {count - 1}.')
    return dataset_opt, scaled, int(index)


def draw_picture(opt: dict, spec: str, output: Path, networks: dict, tonemapper: str) -> str:
    """Draw one validation scene with every method (see ``--picture``); returns a one-line description."""
    dataset_opt, scaled, index = picture_scene(opt, spec)
    dataset = build_dataset(dataset_opt)
    frames, times, gt, *_ = next(itertools.islice(dataset_scenes(dataset), index, None))
    classical = classical_methods(int(opt.get('network_g', {}).get('ref_idx', 1)))
    merges = {name: classical[name] for name in classical if 'Calibrate' in name}
    best_name, best = None, None
    for name, (method, _) in merges.items():
        pred = method(frames, times)
        value = score(pred, gt, True)['psnr_mu']
        if best is None or value > best[0]:
            best_name, best = name, (value, pred)
    rows = [(f'OpenCV {best_name.split(" + ")[0]}... {best[0]:.2f} dB', match_scale(best[1], gt)[0] * _gt_level(gt))]
    for name, net in networks.items():
        pred = fuse(frames, times, net, response=set_response(dataset_opt))
        value = score(pred, gt, scaled)['psnr_mu']
        shown = match_scale(pred, gt)[0] * _gt_level(gt) if scaled else pred
        rows.append((f'{name} {value:.2f} dB', shown))
    imwrite_atomic(output, np.ascontiguousarray(methods_picture(frames, rows, gt, tonemapper)[..., ::-1]))
    return f'{output}: scene {index} of {dataset_opt["name"]}, better calibrated OpenCV merge there: {best_name}.'


def _gt_level(gt: np.ndarray) -> float:
    """match_scale returns images divided by the GT's 99th percentile; this brings them back to the GT's scale."""
    return float(np.percentile(gt, 99))


def _val_sets(args: argparse.Namespace, networks: dict) -> list:
    """The tables of the ``val*`` datasets of ``--opt``."""
    opt = read_evaluation_options(args.opt)
    keys = [k for k in opt.get('datasets', {}) if k.startswith('val')]
    if args.datasets:
        unknown = sorted(set(args.datasets) - set(keys))
        if unknown:
            raise ValueError(f'{args.opt} has no val datasets {unknown}; it has {keys}.')
        keys = list(args.datasets)
    lines = []
    for key in keys:
        dataset_opt, scaled = val_dataset(opt['datasets'][key])
        oracle = bool(dataset_opt.pop('oracle', False))
        methods = classical_methods(int(opt.get('network_g', {}).get('ref_idx', 1)), oracle)
        for name, net in networks.items():
            methods[name] = network_method(net)
            if oracle:
                methods[f'{name} (true response)'] = network_method(net, truth=True)
        dataset = build_dataset(dataset_opt)
        args = (dataset_scenes(dataset), len(dataset), dataset_opt['name'], methods, scaled, set_response(dataset_opt))
        summary, count = evaluate_scenes(*args)
        lines += format_table(dataset_opt['name'], summary, count, scaled, list(networks))
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.output is not None:
            check_output_file(args.output)
        opt = read_evaluation_options(args.opt) if args.opt is not None else None
        if args.picture:  # checked now, not after hours of evaluation
            picture_scene(opt, args.picture[0])
            check_output_file(Path(args.picture[1]))
        networks = {}
        for spec in args.model:
            name, sep, path = spec.partition('=')
            if not sep and spec in PRETRAINED:
                networks[spec] = load_model(pretrained=spec)  # a shipped model
                continue
            if not sep or not name or not path:
                raise ValueError(
                    f'--model expects NAME=CHECKPOINT or a shipped model {sorted(PRETRAINED)}, got {spec!r}.'
                )
            networks[name] = load_model(path)
        where = f'the validation sets of `{args.opt}`' if args.opt else 'Kalantari-layout test folders'
        lines = [f'Quality on {where} (mu = 5000; SSIM on mu-law images); networks in {args.precision}.', '']
        lines += metric_notes()
        if args.opt is not None:
            lines += _val_sets(args, networks)
        for folder in args.test_set:
            lines += evaluate_test_set(folder, networks, max_scenes=args.max_scenes)
        if args.picture:
            lines += ['', draw_picture(opt, args.picture[0], Path(args.picture[1]), networks, args.picture_tonemap)]
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        print(f'Error: {err}', file=sys.stderr)
        return 1
    text = '\n'.join(lines)
    print(text)
    if args.output:
        with atomic_path(args.output) as tmp:
            tmp.write_text(text + '\n', encoding='utf-8')
    return 0
