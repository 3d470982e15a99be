"""Convert a checkpoint of the official AHDRNet code (qingsenyangit/AHDRNet) to this package's AHDRNet.

Usage:
    python scripts/model_conversion/convert_official_ahdrnet.py --input trained_model.pkl \\
        --output experiments/pretrained_models/AHDRNet_official.pth [--overwrite]

The official checkpoints are a bare state dict (keys ``conv1``, ``att11`` ... ``conv3``, each ``.weight`` and
``.bias``; a ``module.`` prefix from DataParallel is removed). They are renamed to ours (conv1 -> conv_first,
att11/att12 -> attention.0 (short frame), att31/att32 -> attention.1 (long frame), attConv1/attConv3 ->
unused_att_convs, conv2 -> conv_merge, RDB{k} -> fusion_blocks.{k-1}, GFF_1x1/GFF_3x3 -> gff_1x1/gff_3x3,
conv3 -> conv_last), checked by loading them with ``strict=True`` into ``AHDRNet(official_unused_convs=True)``, and
written as ``{'params': state_dict}`` (BasicSR's format), atomically and never over an existing file unless
--overwrite is given. Test with ``network_g: {type: AHDRNet, official_unused_convs: true}``.
"""

import argparse
import sys
from pathlib import Path

from lffnet_arch.archs import convert_official_ahdrnet_state_dict, infer_network_options
from lffnet_arch.deploy.model import create_network, load_state_dict_strictly
from lffnet_arch.utils.checkpoint import load_params, save_checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--input', type=Path, required=True, help='official AHDRNet state dict (.pth / .pkl)')
    parser.add_argument('--output', type=Path, required=True, help='converted checkpoint to write')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    return parser.parse_args(argv)


def convert(args: argparse.Namespace) -> None:
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f'{args.output} already exists; pass --overwrite to replace it.')
    state_dict = convert_official_ahdrnet_state_dict(load_params(args.input), source=str(args.input))
    options = infer_network_options(state_dict, str(args.input))
    net = load_state_dict_strictly(create_network(options), state_dict, f'{args.input} (renamed)', options)
    save_checkpoint({'params': state_dict}, args.output, overwrite=args.overwrite)
    num_params = sum(p.numel() for p in net.parameters())
    print(
        f'Wrote {args.output}: {len(state_dict)} tensors, {num_params:,} parameters.\nLoad it with network_g: {options}'
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        convert(args)
    except (FileExistsError, FileNotFoundError, KeyError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0
