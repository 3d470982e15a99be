"""The LMDB command (``scripts/data_preparation/create_lmdb_hdr.py``, ``lffnet lmdb``): pack a folder of
Kalantari-layout scenes into one LMDB (:mod:`lffnet_arch.data.prepare.create_lmdb`)."""

import argparse
import sys
from pathlib import Path

from lffnet_arch.commands.arguments import add_output, add_overwrite, add_scene_files, add_workers
from lffnet_arch.data import layout
from lffnet_arch.data.prepare.create_lmdb import create_lmdb


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Pack a folder of Kalantari-layout scenes (or patches) into one LMDB for MultiExposureHDRDataset.'
    )
    parser.add_argument('--input', required=True, help='folder of scene (or patch) folders, Kalantari layout')
    add_output(parser, 'LMDB folder to create; its name must end in .lmdb')
    add_scene_files(parser)
    parser.add_argument(
        '--compress_level',
        type=int,
        default=1,
        choices=range(10),
        metavar='0-9',
        help='PNG compression level of the frames (default 1: fast, lossless at every level)',
    )
    add_workers(parser, 'worker processes reading scenes')
    add_overwrite(parser, 'the output LMDB')
    args = parser.parse_args(argv)
    if args.output.suffix != '.lmdb':
        parser.error(f'--output must end with .lmdb (BasicSR convention), got {args.output}.')
    if Path(args.output).exists() and not args.overwrite:
        parser.error(f'output {args.output} already exists; pass --overwrite to replace it.')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    scenes = layout.list_scenes(args.input)
    count = create_lmdb(
        scenes,
        args.output,
        args.overwrite,
        args.num_exposure,
        args.exposure_file,
        args.workers,
        args.compress_level,
    )
    print(f'Wrote {count} samples to {args.output}.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
