"""Fold the DO-Conv layers of an LFFNet checkpoint into plain convolutions for inference.

The architecture comes from the options file's ``network_g`` when --opt is given, else it is inferred from the
checkpoint's key names and shapes (everything but ``ref_idx``, which folding does not need). ``params`` and, when
present, ``params_ema`` are folded; the result, ``{'params': ..., 'params_ema': ...}`` in BasicSR's format, loads
with ``strict=True`` into ``LFFNet(doconv='none')`` with the same other options (964,355 parameters at the paper's
configuration; 1,038,211 with ``official_unused_convs``). Every folded set is checked against the original network
on a random input before anything is written; the output is written atomically and never overwritten unless
--overwrite is given.
"""

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from lffnet_arch.archs import fold_doconv
from lffnet_arch.commands.arguments import add_checkpoint, add_output, add_overwrite
from lffnet_arch.deploy.model import create_network, load_state_dict_strictly, network_options
from lffnet_arch.fileio.checkpoint import (
    NETWORK_KEY,
    load_checkpoint,
    network_record,
    save_checkpoint,
    select_params,
    stored_network_options,
    strip_prefix,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_checkpoint(parser, 'LFFNet checkpoint with DO-Conv layers', alias_input=True)
    add_output(parser, 'folded checkpoint to write')
    parser.add_argument(
        '--opt',
        type=Path,
        help='options YAML whose network_g describes the network (default: inferred from the checkpoint)',
    )
    parser.add_argument('--atol', type=float, default=1e-5, help='largest output difference accepted in the check')
    add_overwrite(parser, 'the output file')
    return parser.parse_args(argv)


def fold_network(net: torch.nn.Module, options: dict) -> tuple:
    """Fold the DO-Conv layers of one loaded LFFNet (in place: ``net`` is folded afterwards).

    Returns:
        tuple[dict, float]: The state dict of ``LFFNet(doconv='none')`` and max |folded - original| of the two
        networks' outputs on a random input (1, T, C, 32, 32) in [0, 1].
    """
    generator = torch.Generator().manual_seed(0)
    lq = torch.rand(1, net.num_exposure, net.num_in_ch, 32, 32, generator=generator)
    plain = create_network({**options, 'doconv': 'none'}).eval()
    with torch.no_grad():
        expected = net(lq)
        plain.load_state_dict(fold_doconv(net).state_dict(), strict=True)
        diff = (plain(lq) - expected).abs().max().item()
    return plain.state_dict(), diff


def fold_checkpoint(args: argparse.Namespace) -> None:
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f'{args.output} already exists; pass --overwrite to replace it.')
    source = str(args.checkpoint)
    checkpoint = load_checkpoint(args.checkpoint)
    keys = [key for key in ('params', 'params_ema') if key in checkpoint] or [None]  # None: a bare state dict
    state_dicts = {key: strip_prefix(select_params(checkpoint, source, key)) for key in keys}
    stored = stored_network_options(checkpoint, source)
    options = network_options(state_dicts[keys[0]], args.opt, source=source, stored=stored)
    nets = {
        key: load_state_dict_strictly(create_network(options), state_dict, source, options).eval()
        for key, state_dict in state_dicts.items()
    }
    if options['type'] != 'LFFNet':
        raise ValueError(
            f'{args.opt or args.checkpoint}: only LFFNet has DO-Conv layers to fold, got {options["type"]}.'
        )
    if options.get('doconv', 'fusion') == 'none':
        raise ValueError(f"{args.opt or args.checkpoint}: doconv is 'none', so there is nothing to fold.")
    print(f'Folding {args.checkpoint} as {options}')
    before = sum(p.numel() for p in nets[keys[0]].parameters())

    folded = {}
    for key in tqdm(keys, desc='fold', unit='set'):
        folded[key or 'params'], diff = fold_network(nets[key], options)
        tqdm.write(f'{key or "params"}: max |folded - original| = {diff:.3g} on a random 32 x 32 input')
        if not diff <= args.atol:
            raise RuntimeError(
                f'{args.checkpoint} [{key}]: folded network differs from the original by {diff:.3g} '
                f'> --atol {args.atol:g}; nothing written.'
            )
    plain_options = {**options, 'doconv': 'none'}
    save_checkpoint({**folded, NETWORK_KEY: network_record(plain_options)}, args.output, overwrite=args.overwrite)

    after = sum(v.numel() for v in folded[keys[0] or 'params'].values())  # doconv='none' has no buffers
    print(
        f'Wrote {args.output} ({", ".join(folded)}): {after:,} parameters (was {before:,}).\n'
        f'Load it with network_g: {plain_options}'
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        fold_checkpoint(args)
    except (FileExistsError, FileNotFoundError, KeyError, ValueError, RuntimeError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0
