"""Generate the synthetic demo set (Kalantari layout) that the quick start trains on; nothing is downloaded.

Writes ``<output>/Training/demo_XXX`` and ``<output>/Test/demo_XXX`` (three 16-bit TIFF frames, ``exposure.txt``,
``HDRImg.exr`` each, simulated from the CC0 radiance crops bundled in ``lffnet_arch/data/simulator/demo_radiance/``) and
``<output>/demo_set.json`` last. Running it again with the same arguments does nothing; a set made with other
arguments, or an interrupted one, is replaced only with ``--overwrite``.
"""

import argparse
import sys
from pathlib import Path

from lffnet_arch.commands.arguments import add_output, add_overwrite
from lffnet_arch.data.simulator.demo import demo_set_complete, generate_demo_set


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_output(parser, 'output folder', required=False, default=Path('datasets/demo'))
    parser.add_argument('--seed', type=int, default=0, help='random seed (same seed, same bytes)')
    parser.add_argument('--num_train', type=int, default=16, help='number of training scenes')
    parser.add_argument('--num_val', type=int, default=4, help='number of test scenes')
    parser.add_argument('--size', type=int, default=128, help='side of the square frames (32 to 256)')
    add_overwrite(parser, 'the demo set')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params = {'num_train': args.num_train, 'num_val': args.num_val, 'size': args.size, 'seed': args.seed}
    if not args.overwrite and demo_set_complete(args.output, **params):
        print(
            f'Demo set already complete in {args.output} ({args.num_train} training, {args.num_val} test scenes); '
            'nothing to do.'
        )
        return 0
    try:
        generate_demo_set(args.output, overwrite=args.overwrite, progress=True, **params)
    except (FileExistsError, ValueError) as err:
        print(f'Error: {err}', file=sys.stderr)
        return 1
    print(
        f'Wrote {args.num_train} training scenes to {args.output / "Training"} and {args.num_val} test scenes to '
        f'{args.output / "Test"} ({args.size} x {args.size}, seed {args.seed}).'
    )
    return 0
