"""Reproduce the paper's Table 2 (AHDRNet baseline, + RFFT blocks, + DO-Conv) at one budget, with curves and a table.

Usage:
    # train the three variants one after another (each resumable with the same command), then report
    python scripts/reproduce_table2.py --base options/train/LFFNet/train_LFFNet_RealHDR.yml --iters 3000 \\
        --num_feat 32 --output results/table2
    # report only, from the runs made so far
    python scripts/reproduce_table2.py --base options/train/LFFNet/train_LFFNet_RealHDR.yml --iters 3000 \\
        --num_feat 32 --output results/table2 --report_only

The three variants share everything but the network: the base options' data, crop, batch, optimiser and training
precision (``train.precision``), the
paper's loss (L1 + L_msc + 0.05 L_msed + 0.01 L_msfr on mu-law images) for all three, ``--iters`` iterations with a
cosine schedule over them, ``--num_feat`` channels, and a validation every ``--iters / --val_points`` iterations
(AHDRNet trains channels-last, its faster memory format, unless the base options set ``train.memory_format``):

- ``AHDRNet``: the baseline (Table 2 row 1);
- ``LFFNet-woDOConv``: the DRDBs replaced by RFFT blocks (row 2, ``doconv: none``);
- ``LFFNet``: RFFT blocks and DO-Conv in the fusion network (row 3, the proposed model).

Each run is ``python lffnet_arch/train.py -opt <output>/options/<name>.yml --auto_resume`` (its options file is
written there first, its console output goes to ``<output>/<name>.out``), so an interrupted reproduction continues
where it stopped. The report reads the runs' logs and writes ``<output>/table2.md`` (final PSNR-mu on the chosen
validation set, parameters, iterations and wall time to reach 95% of the final gain over the reference frame, the
paper's figures beside) and ``<output>/table2_curves.png`` (validation PSNR-mu against iterations and against wall
time).
"""

import argparse
import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import yaml
from basicsr.archs import build_network

from lffnet_arch.commands.arguments import add_output
from lffnet_arch.commands.options import read_options_file, resolve_paths
from lffnet_arch.commands.options_schema import check_options
from lffnet_arch.fileio.atomic import atomic_path
from lffnet_arch.fileio.image import imwrite_atomic
from scripts.measure.plot import Series, grid, line_chart
from scripts.measure.training_log import parse_experiment_logs

# The checkout: lffnet_arch/train.py writes experiments/ here, and relative options paths resolve against it.
REPO = Path(__file__).resolve().parents[2]
VARIANTS = {
    'AHDRNet': {'type': 'AHDRNet'},
    'LFFNet-woDOConv': {'type': 'LFFNet', 'doconv': 'none'},
    'LFFNet': {'type': 'LFFNet', 'doconv': 'fusion'},
}
# The paper's Table 2 (Kalantari test set, full width, its own training): parameters, convergence epoch, PSNR-mu.
PAPER = {
    'AHDRNet': (1_515_139, 17_290, 43.6172),
    'LFFNet-woDOConv': (1_038_211, 22_320, 44.2074),
    'LFFNet': (1_069_315, 17_340, 44.2693),
}
# A variant's memory format for training when the base options set none: AHDRNet's dilated dense blocks train 1.15
# times faster channels-last with bf16 on the CPU (scripts/profile_training.py); LFFNet does not. The same maths
# (other kernels, so not bit for bit), and the curves against wall time show each network at its best.
MEMORY_FORMAT = {'AHDRNet': 'channels_last'}
PAPER_LOSSES = {
    'l1': {'type': 'MuLawL1Loss', 'loss_weight': 1.0},
    'msc': {'type': 'MultiScaleCharbonnierLoss', 'loss_weight': 1.0},
    'msed': {'type': 'MultiScaleEdgeLoss', 'loss_weight': 0.05},
    'msfr': {'type': 'MultiScaleFrequencyLoss', 'loss_weight': 0.01},
}


def run_name(variant: str, args: argparse.Namespace) -> str:
    return f'Table2_{variant.replace("-", "_")}_f{args.num_feat}_i{args.iters}'


def variant_options(base: dict, variant: str, args: argparse.Namespace) -> dict:
    """The base options with the variant's network, the paper's loss and the shared budget."""
    if variant not in VARIANTS:
        raise ValueError(f'Unknown variant {variant!r}; expected one of {list(VARIANTS)}.')
    opt = copy.deepcopy(base)
    opt['name'] = run_name(variant, args)
    network = {k: v for k, v in opt['network_g'].items() if k not in ('type', 'doconv', 'num_feat', 'ref_skip')}
    opt['network_g'] = {**VARIANTS[variant], **network, 'num_feat': args.num_feat}
    train = opt['train']
    train['losses'] = copy.deepcopy(PAPER_LOSSES)
    train.pop('pixel_opt', None)
    train['total_iter'] = args.iters
    if 'memory_format' not in train and variant in MEMORY_FORMAT:
        train['memory_format'] = MEMORY_FORMAT[variant]
    if train.get('scheduler', {}).get('type') == 'CosineAnnealingRestartLR':
        train['scheduler']['periods'] = [args.iters]
        train['scheduler']['restart_weights'] = [1]
    val_freq = max(1, args.iters // args.val_points)
    opt['val']['val_freq'] = val_freq
    opt['val']['save_img'] = False
    opt['logger']['save_checkpoint_freq'] = val_freq
    # The log's validation lines carry no iteration: a loss line printed at each validation dates them.
    opt['logger']['print_freq'] = min(int(opt['logger'].get('print_freq', val_freq)), val_freq)
    if args.batch is not None:
        opt['datasets']['train']['batch_size_per_gpu'] = args.batch
    if args.crop is not None:
        opt['datasets']['train']['gt_size'] = args.crop
    opt['name'] = f'{opt["name"]}_{options_digest(opt)}'  # named by its full options
    return opt


MACHINE_KEYS = ('phase', 'num_worker_per_gpu', 'prefetch_mode', 'pin_memory', 'persistent_workers')


def _defining(opt: dict) -> dict:
    """What makes two runs the same run: the network, the training options, the seed and the training data's
    sampling (data paths, which a run resolves, and the data loader's machine settings excluded)."""
    data = opt['datasets']['train']
    sampling = {k: v for k, v in data.items() if not k.startswith('dataroot') and k not in MACHINE_KEYS}
    return {'network_g': opt['network_g'], 'train': opt['train'], 'data': sampling, 'seed': opt.get('manual_seed')}


def options_digest(opt: dict) -> str:
    """Eight hex digits of the run-defining options: part of a run's name, so that a run with another batch, crop,
    schedule or network is another run, never the resumed state of this one."""
    text = json.dumps(_defining(opt), sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]


def _same_run(opt: dict, stored: dict) -> bool:
    """Whether the options a finished run stored describe the run ``opt`` asks for."""
    return _defining(opt) == _defining({**stored, 'datasets': {'train': stored['datasets']['train']}})


def train(variant: str, opt: dict, output: Path) -> int:
    """Run (or resume) one variant through the project's training entry point; a finished run made with the same
    options is left alone, one made with other options is refused."""
    opt_path = output / 'options' / f'{opt["name"]}.yml'
    opt_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(opt_path) as tmp:
        tmp.write_text(yaml.safe_dump(opt, sort_keys=False), encoding='utf-8')
    folder = REPO / 'experiments' / opt['name']
    if (folder / 'models' / 'net_g_latest.pth').is_file():  # written when training ends
        stored = folder / opt_path.name
        if stored.is_file() and _same_run(opt, yaml.safe_load(stored.read_text(encoding='utf-8'))):
            print(f'{variant}: already trained ({folder}).', flush=True)
            return 0
        print(
            f'Error: {folder} holds a finished {variant} run made with other options; move it away to train again.',
            file=sys.stderr,
        )
        return 1
    command = [sys.executable, str(REPO / 'lffnet_arch' / 'train.py'), '-opt', str(opt_path), '--auto_resume']
    print(f'Training {variant}: {" ".join(command)}', flush=True)
    with open(output / f'{opt["name"]}.out', 'a', encoding='utf-8') as log:
        return subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def gain_reached(points: list, baseline: float, fraction: float = 0.95) -> tuple:
    """(iteration, wall seconds) of the first validation whose gain over ``baseline`` reaches ``fraction`` of the
    final validation's gain; (None, None) when the final gain is not positive."""
    final = points[-1][2] - baseline
    if final <= 0:
        return None, None
    for iteration, seconds, value in points:
        if value - baseline >= fraction * final:
            return iteration, seconds
    return points[-1][0], points[-1][1]


def report(args: argparse.Namespace, base: dict, output: Path) -> list:
    rows, iters_series, time_series, baseline = [], [], [], None
    for variant in args.variants:
        opt = variant_options(base, variant, args)
        folder = REPO / 'experiments' / opt['name']
        try:
            log = parse_experiment_logs(folder)
        except (FileNotFoundError, ValueError):
            rows.append(f'| {variant} | not run yet | | | | | |')
            continue
        points = log.validation.get(args.dataset, {}).get(args.metric, [])
        if not points:
            rows.append(f'| {variant} | no validation yet | | | | | |')
            continue
        baseline = log.baselines.get(args.dataset, {}).get(args.metric, baseline)
        params = sum(p.numel() for p in build_network(dict(opt['network_g'])).parameters())
        last_iter, last_seconds, last_value = points[-1]
        done = '' if last_iter >= args.iters else f' (at {last_iter:,} of {args.iters:,})'
        reached, seconds = gain_reached(points, baseline) if baseline is not None else (None, None)
        reached_text = f'{reached:,} ({seconds / 60:.0f} min)' if reached is not None else 'n/a'
        paper_params, paper_epochs, paper_psnr = PAPER[variant]
        rows.append(
            f'| {variant} | {last_value:.2f}{done} | {params:,} | {reached_text} | {last_seconds / 3600:.2f} | '
            f'{paper_psnr:.2f} | {paper_params:,} / {paper_epochs:,} |'
        )
        iters_series.append(Series(variant, [p[0] for p in points], [p[2] for p in points]))
        time_series.append(Series(variant, [p[1] / 60 for p in points], [p[2] for p in points]))
    lines = [
        f"Table 2 at this scale: num_feat {args.num_feat}, {args.iters:,} iterations, the paper's loss for all, "
        f'{args.metric} on {args.dataset}' + (f' (reference frame alone: {baseline:.2f})' if baseline else '') + '.',
        '',
        '| Variant | PSNR-mu | Parameters | Iterations (time) to 95% of the final gain | Hours | Paper PSNR-mu '
        '| Paper parameters / convergence epoch |',
        '|---|---:|---:|---:|---:|---:|---:|',
        *rows,
    ]
    with atomic_path(output / 'table2.md') as tmp:
        tmp.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    if iters_series:
        hlines = [('reference frame', baseline)] if baseline is not None else []
        charts = [
            line_chart(iters_series, f'{args.metric} on {args.dataset} (dB)', 'iterations', hlines=hlines),
            line_chart(time_series, f'{args.metric} on {args.dataset} (dB)', 'minutes of training', hlines=hlines),
        ]
        imwrite_atomic(output / 'table2_curves.png', np.ascontiguousarray(grid(charts, columns=2)[..., ::-1]))
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--base', type=Path, required=True, help='options file giving data, crop, batch, optimiser')
    add_output(parser, 'folder for the options, console logs and report')
    parser.add_argument('--iters', type=int, default=3000, help='iterations per variant (default: 3000)')
    parser.add_argument('--num_feat', type=int, default=32, help='width of every variant (default: 32)')
    parser.add_argument('--batch', type=int, help='override the base batch size')
    parser.add_argument('--crop', type=int, help='override the base crop (gt_size)')
    parser.add_argument('--val_points', type=int, default=10, help='validations per run (default: 10)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--dataset', default='sim_kalantari', help='validation set of the table (its name:)')
    parser.add_argument('--metric', default='psnr_mu', help='validation metric of the table')
    parser.add_argument('--report_only', action='store_true', help='do not train; report the runs made so far')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.num_feat < 1 or args.val_points < 1:
        parser.error('--iters, --num_feat and --val_points must be positive')
    return args


def read_base(path: Path) -> Optional[dict]:
    """The base options file, read safely and checked as training checks it; None after printing why it cannot be
    used (a missing file, YAML tags, an unknown or ill-typed option)."""
    try:
        opt = read_options_file(path)
        check_options(resolve_paths(copy.deepcopy(opt), str(REPO)), True, str(path))  # as the runs will read it
    except (FileNotFoundError, ValueError) as error:
        print(f'Error: {error}', file=sys.stderr)
        return None
    return json.loads(json.dumps(opt))  # plain dicts and lists, as the runs' options files are written


def train_all(runs: list, output: Path) -> int:
    """Train (or resume) each ``(label, options)`` in turn with :func:`train`; 1 at the first that fails."""
    for label, opt in runs:
        code = train(label, opt, output)
        if code != 0:
            print(f'Error: training {label} exited with {code}; see {output}.', file=sys.stderr)
            return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    base = read_base(args.base)
    if base is None:
        return 1
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        runs = [(variant, variant_options(base, variant, args)) for variant in args.variants]
        if train_all(runs, args.output) != 0:
            return 1
    print('\n'.join(report(args, base, args.output)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
