"""Write simulated exposure brackets (Kalantari layout) from real radiance maps.

Each scene is ``<output>/sim_<index>/`` with ``ldr_0..2`` (16-bit TIFF for the kalantari style, the simulated
camera JPEGs for the handheld style), ``exposure.txt`` and ``HDRImg.exr``; ``<output>/simulated_set.json`` is
written last and records the options and what every scene drew. The folder is built beside ``<output>`` and moved
into place when complete; an existing ``<output>`` is replaced only with ``--overwrite``. Pack it into an LMDB with
``create_lmdb_hdr.py``.
"""

import argparse
import sys
from pathlib import Path
from typing import Optional

from lffnet_arch.commands.arguments import add_output, add_overwrite, check_output_folder
from lffnet_arch.commands.options import read_options_file, resolve_paths
from lffnet_arch.commands.options_schema import check_options
from lffnet_arch.data.simulator.simulated_dataset import SimulatedBracketDataset
from lffnet_arch.data.simulator.simulated_set import write_simulated_set
from lffnet_arch.fileio.atomic import staged_output_dir


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_output(parser, 'output folder of scene folders')
    parser.add_argument('--opt', type=Path, help='options file whose dataset to write (with --dataset)')
    parser.add_argument(
        '--dataset', help='key of a SimulatedBracketDataset under datasets: in --opt, e.g. val_handheld'
    )
    parser.add_argument('--input', type=Path, nargs='+', help='folders or files of radiance maps (.hdr, .exr)')
    parser.add_argument('--include', nargs='+', help='only these photographs (file stems)')
    parser.add_argument('--exclude', nargs='+', help='not these photographs')
    parser.add_argument('--styles', nargs='+', default=['kalantari', 'handheld'], help='capture styles, equal weights')
    parser.add_argument('--num', type=int, default=100, help='number of scenes (--input)')
    parser.add_argument('--size', type=int, default=256, help='side of the frames in pixels (--input)')
    parser.add_argument('--seed', type=int, default=0, help='seed: the same seed gives the same scenes')
    add_overwrite(parser, 'the output folder')
    args = parser.parse_args(argv)
    if (args.opt is None) == (args.input is None):
        parser.error('give either --opt OPTIONS.yml --dataset KEY, or --input RADIANCE_FOLDERS')
    if args.opt is not None and not args.dataset:
        parser.error('--opt needs --dataset KEY (a SimulatedBracketDataset under datasets:)')
    return args


def dataset_options(args: argparse.Namespace, root: Path) -> dict:
    """The SimulatedBracketDataset options the command line asks for; relative data paths of ``--opt`` are read
    against ``root``, as training reads them."""
    if args.opt is not None:
        opt = resolve_paths(read_options_file(args.opt), str(root))
        check_options(opt, False, str(args.opt))
        datasets = opt['datasets']
        if args.dataset not in datasets:
            raise ValueError(f'{args.opt} has no dataset {args.dataset!r}; it has {sorted(datasets)}.')
        opt = dict(datasets[args.dataset])
        if opt.get('type') != 'SimulatedBracketDataset':
            raise ValueError(
                f'{args.opt}: datasets.{args.dataset} is a {opt.get("type")}, not a SimulatedBracketDataset.'
            )
        return opt
    return {
        'name': args.output.name,
        'dataroot': [str(p) for p in args.input],
        'include': args.include,
        'exclude': args.exclude,
        'styles': list(args.styles),
        'gt_size': args.size,
        'num_samples': args.num,
        'seed': args.seed,
    }


def main(argv=None, root: Optional[Path] = None) -> int:
    """The command; ``root`` is where relative data paths of ``--opt`` start: the checkout for
    ``scripts/data_preparation/simulate_brackets.py``, the working directory (the default) for ``lffnet simulate``."""
    args = parse_args(argv)
    try:
        check_output_folder(args.output)
        dataset = SimulatedBracketDataset({**dataset_options(args, root or Path.cwd()), 'phase': 'val'})
        with staged_output_dir(args.output, overwrite=args.overwrite) as tmp:
            write_simulated_set(dataset, tmp, range(len(dataset)), progress=True)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        print(f'Error: {err}', file=sys.stderr)
        return 1
    print(
        f'Wrote {len(dataset)} scenes of {dataset.size} x {dataset.size} to {args.output} '
        f'({", ".join(dataset.photos)}).'
    )
    return 0
