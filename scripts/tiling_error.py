"""Measure how far tiled inference is from whole-image inference on a test set.

Usage::

    python scripts/tiling_error.py --checkpoint NET.pth --opt OPTIONS.yml --test_set datasets/demo/Test \\
        [--tiles 64 96] [--tile_overlap 16]

The RFFT blocks of LFFNet see the whole input, so a tiled result is not the whole-image result. For each tile size
this prints, as a markdown table, the PSNR-mu between the tiled and the whole-image outputs (higher is closer) and
the PSNR-mu of each against the ground truth, averaged over the scenes.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

try:
    import lffnet_arch  # noqa: F401  (before basicsr and cv2: installs the compatibility shim, registers everything)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import lffnet_arch  # noqa: F401

import numpy as np

from lffnet_arch.data.hdr_dataset import MultiExposureHDRDataset
from lffnet_arch.inference import fuse, load_model
from lffnet_arch.metrics.hdr_metric import calculate_psnr_mu


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--checkpoint', required=True, help='BasicSR checkpoint (params_ema used when present)')
    network = parser.add_mutually_exclusive_group()
    network.add_argument('--opt', help='options YAML whose network_g builds the network')
    network.add_argument(
        '--arch',
        help="registered architecture with its default, the paper's, configuration "
        '(default: options inferred from the checkpoint)',
    )
    parser.add_argument('--test_set', required=True, help='Kalantari-layout folder of test scenes')
    parser.add_argument('--tiles', type=int, nargs='+', default=[64, 96], help='tile sizes to compare')
    parser.add_argument('--tile_overlap', type=int, default=16, help='overlap between tiles')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    net = load_model(args.checkpoint, opt=args.opt, arch=args.arch)
    dataset = MultiExposureHDRDataset(
        {'dataroot': args.test_set, 'io_backend': {'type': 'disk'}, 'phase': 'test', 'num_exposure': net.num_exposure}
    )
    between = {tile: [] for tile in args.tiles}
    tiled_gt = {tile: [] for tile in args.tiles}
    whole_gt = []
    for item in dataset:  # each scene is read and run whole once, then once per tile size
        frames = [frame[:3].permute(1, 2, 0).numpy() for frame in item['lq']]
        times = item['exposures'].numpy()
        gt = item['gt'].permute(1, 2, 0).numpy()
        whole = fuse(frames, times, net)
        whole_gt.append(calculate_psnr_mu(whole, gt))
        for tile in args.tiles:
            tiled = fuse(frames, times, net, tile_size=tile, tile_overlap=args.tile_overlap)
            between[tile].append(calculate_psnr_mu(tiled, whole))
            tiled_gt[tile].append(calculate_psnr_mu(tiled, gt))
    rows = [(tile, np.mean(between[tile]), np.mean(whole_gt), np.mean(tiled_gt[tile])) for tile in args.tiles]
    height, width = dataset[0]['gt'].shape[-2:]
    print(f'{len(dataset)} scenes of {height} x {width}, tile overlap {args.tile_overlap}')
    print('| tile | PSNR-mu tiled vs whole | PSNR-mu whole vs GT | PSNR-mu tiled vs GT |')
    print('|---|---|---|---|')
    for tile, b, w, t in rows:
        print(f'| {tile} | {b:.2f} dB | {w:.2f} dB | {t:.2f} dB |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
