"""Measure how far tiled inference is from whole-image inference, on a test set or on your own brackets.

Usage::

    python scripts/tiling_error.py --checkpoint NET.pth [--opt OPTIONS.yml | --arch NAME] \\
        (--test_set datasets/demo/Test | --input BRACKET_FOLDER [...] [--align mtb|ecc]) \\
        [--tiles 64 96] [--tile_overlap 16]

The RFFT blocks of LFFNet see the whole input, so a tiled result is not the whole-image result. For each tile size
this prints, as a markdown table, the PSNR-mu between the tiled and the whole-image outputs (higher is closer),
averaged over the scenes; with ``--test_set`` (Kalantari layout, with ground truth) also the PSNR-mu of each against
the ground truth. ``--input`` takes brackets as ``lffnet-inference`` does (exposures from ``exposure.txt`` or EXIF),
which have no ground truth.
"""

import argparse
from collections.abc import Sequence
from typing import Optional

import numpy as np

from lffnet_arch.commands.arguments import add_network_arguments
from lffnet_arch.commands.inference import find_brackets
from lffnet_arch.data.layout import list_scenes, read_scene
from lffnet_arch.deploy import ALIGN_METHODS, fuse, load_model, read_bracket
from lffnet_arch.metrics.hdr_metric import calculate_psnr_mu


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_network_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--test_set', help='Kalantari-layout folder of test scenes (with ground truth)')
    source.add_argument('--input', nargs='+', help='bracket folder(s) as lffnet-inference takes them (no GT)')
    parser.add_argument('--align', choices=ALIGN_METHODS, help='global pre-alignment of the frames (default: none)')
    parser.add_argument('--tiles', type=int, nargs='+', default=[64, 96], help='tile sizes to compare')
    parser.add_argument('--tile_overlap', type=int, default=16, help='overlap between tiles')
    return parser


def _scenes(args: argparse.Namespace, num_exposure: int):
    """Yield (frames, exposure times, ground truth or None) per scene."""
    if args.test_set is not None:
        for scene_dir in list_scenes(args.test_set):
            scene = read_scene(scene_dir, num_exposure)
            yield scene.ldrs, scene.exposures, scene.gt
    else:
        for _, source in find_brackets(args.input):
            frames, times = read_bracket(source)
            yield frames, times, None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    net = load_model(args.checkpoint, opt=args.opt, arch=args.arch)
    between = {tile: [] for tile in args.tiles}
    tiled_gt = {tile: [] for tile in args.tiles}
    whole_gt, sizes = [], set()
    for frames, times, gt in _scenes(args, net.num_exposure):  # each scene runs whole once, then per tile size
        sizes.add(frames[0].shape[:2])
        whole = fuse(frames, times, net, align=args.align)
        if gt is not None:
            whole_gt.append(calculate_psnr_mu(whole, gt))
        for tile in args.tiles:
            tiled = fuse(frames, times, net, tile_size=tile, tile_overlap=args.tile_overlap, align=args.align)
            between[tile].append(calculate_psnr_mu(tiled, whole))
            if gt is not None:
                tiled_gt[tile].append(calculate_psnr_mu(tiled, gt))
    count = len(between[args.tiles[0]])
    shapes = ', '.join(f'{h} x {w}' for h, w in sorted(sizes))
    print(f'{count} scene{"s" if count != 1 else ""} of {shapes}, tile overlap {args.tile_overlap}')
    if whole_gt:
        print('| tile | PSNR-mu tiled vs whole | PSNR-mu whole vs GT | PSNR-mu tiled vs GT |')
        print('|---|---|---|---|')
        for tile in args.tiles:
            print(
                f'| {tile} | {np.mean(between[tile]):.2f} dB | {np.mean(whole_gt):.2f} dB | '
                f'{np.mean(tiled_gt[tile]):.2f} dB |'
            )
    else:
        print('| tile | PSNR-mu tiled vs whole |')
        print('|---|---|')
        for tile in args.tiles:
            print(f'| {tile} | {np.mean(between[tile]):.2f} dB |')
    return 0
