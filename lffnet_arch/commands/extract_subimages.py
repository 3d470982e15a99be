"""The patch-extraction command (``scripts/data_preparation/extract_subimages_hdr.py``, ``lffnet extract``): cut every
Kalantari-layout scene into overlapping square patches (:mod:`lffnet_arch.data.prepare.extract_subimages`)."""

import argparse
import sys
from pathlib import Path

from lffnet_arch.commands.arguments import add_output, add_overwrite, add_scene_files, add_workers
from lffnet_arch.data import layout
from lffnet_arch.data.prepare.extract_subimages import extract_subimages


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Cut every Kalantari-layout scene into overlapping square patches, each written as a scene folder.'
    )
    parser.add_argument('--input', required=True, help='folder of scene folders (Kalantari layout)')
    add_output(parser, 'folder to create, one sub-folder per patch')
    parser.add_argument('--size', type=int, default=128, help='patch side in pixels (default 128)')
    parser.add_argument('--stride', type=int, default=64, help='step between patches (default 64)')
    add_scene_files(parser)
    add_workers(parser, 'worker processes')
    add_overwrite(parser, 'the output folder')
    args = parser.parse_args(argv)
    if args.size < 1 or args.stride < 1:
        parser.error('--size and --stride must be positive integers.')
    if Path(args.output).exists() and not args.overwrite:
        parser.error(f'output {args.output} already exists; pass --overwrite to replace it.')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    scenes = layout.list_scenes(args.input)
    total = extract_subimages(
        scenes,
        args.output,
        args.overwrite,
        args.size,
        args.stride,
        args.num_exposure,
        args.exposure_file,
        args.workers,
    )
    print(f'Wrote {total} patches of {len(scenes)} scenes to {args.output}.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
