"""Convert a checkpoint of the official AHDRNet code (qingsenyangit/AHDRNet) to this package's AHDRNet.

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

from lffnet_arch.archs import convert_official_ahdrnet_state_dict, infer_network_options
from lffnet_arch.commands.arguments import add_checkpoint, add_output, add_overwrite
from lffnet_arch.deploy.model import create_network, load_state_dict_strictly
from lffnet_arch.fileio.checkpoint import NETWORK_KEY, load_params, network_record, save_checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_checkpoint(parser, 'official AHDRNet state dict (.pth / .pkl)', alias_input=True)
    add_output(parser, 'converted checkpoint to write')
    add_overwrite(parser, 'the output file')
    return parser.parse_args(argv)


def convert(args: argparse.Namespace) -> None:
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f'{args.output} already exists; pass --overwrite to replace it.')
    state_dict = convert_official_ahdrnet_state_dict(load_params(args.checkpoint), source=str(args.checkpoint))
    options = infer_network_options(state_dict, str(args.checkpoint))
    net = load_state_dict_strictly(create_network(options), state_dict, f'{args.checkpoint} (renamed)', options)
    save_checkpoint({'params': state_dict, NETWORK_KEY: network_record(options)}, args.output, overwrite=args.overwrite)
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
