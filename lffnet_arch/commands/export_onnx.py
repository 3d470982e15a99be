"""Export an LFFNet (or AHDRNet) checkpoint to ONNX with dynamic batch, height and width.

Needs ``pip install onnx onnxscript onnxruntime``. The checkpoint may be folded or not (DO-Conv layers are folded on
a copy before export); the architecture comes from --opt's ``network_g`` (the training or test options; for a
folded checkpoint, options with ``doconv: none``) or is inferred from the weights. The model
takes ``lq`` (B, T, 6, H, W) and returns ``hdr`` (B, 3, H, W). The RFFT blocks' 2-D real FFTs are exported as real
DFT matrix products built from the input size (see ``lffnet_arch/archs/rfft_onnx.py`` for why). Before the file
is moved into place, ONNX Runtime runs it on random inputs of every --check_size and the largest difference from
PyTorch must be at most --atol; an existing output is replaced only with --overwrite.
"""

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from lffnet_arch.commands.arguments import add_checkpoint, add_output, add_overwrite
from lffnet_arch.deploy.model import load_network
from lffnet_arch.deploy.onnx import export_onnx, onnx_max_abs_diff


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_checkpoint(parser, 'LFFNet / AHDRNet checkpoint', alias_input=True)
    add_output(parser, '.onnx file to write')
    parser.add_argument(
        '--opt',
        type=Path,
        help='options YAML whose network_g describes the network (default: inferred from the checkpoint)',
    )
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset')
    parser.add_argument(
        '--check_size',
        type=int,
        nargs=2,
        action='append',
        metavar=('H', 'W'),
        help='input size of an ONNX Runtime check; repeatable (default: 64 64 and 63 97)',
    )
    parser.add_argument('--atol', type=float, default=1e-4, help='largest |ONNX - PyTorch| accepted')
    parser.add_argument(
        '--no_optimize',
        action='store_true',
        help="skip the exporter's graph optimisation (faster; ONNX Runtime optimises at load)",
    )
    parser.add_argument('--no_check', action='store_true', help='skip the ONNX Runtime check')
    add_overwrite(parser, 'the output file')
    return parser.parse_args(argv)


def export(args: argparse.Namespace) -> None:
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f'{args.output} already exists; pass --overwrite to replace it.')
    net, options = load_network(args.checkpoint, args.opt)
    print(f'Exporting {args.checkpoint} as {options}')

    def check(unchecked: Path) -> None:
        generator = torch.Generator().manual_seed(0)
        for height, width in tqdm(args.check_size or [(64, 64), (63, 97)], desc='check', unit='size'):
            lq = torch.rand(1, net.num_exposure, net.num_in_ch, height, width, generator=generator)
            diff = onnx_max_abs_diff(unchecked, net, lq)
            tqdm.write(f'{height} x {width}: max |ONNX Runtime - PyTorch| = {diff:.3g}')
            if not diff <= args.atol:
                raise RuntimeError(
                    f'ONNX output differs from PyTorch by {diff:.3g} > --atol {args.atol:g} at '
                    f'{height} x {width}; nothing written.'
                )

    # export_onnx writes a temporary file, runs the check on it and only then moves it into place.
    export_onnx(
        net,
        args.output,
        opset=args.opset,
        optimize=not args.no_optimize,
        overwrite=args.overwrite,
        verify=None if args.no_check else check,
    )
    print(f'Wrote {args.output}: input lq (B, {net.num_exposure}, {net.num_in_ch}, H, W), output hdr (B, 3, H, W).')


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        export(args)
    except (FileExistsError, FileNotFoundError, ImportError, KeyError, ValueError, RuntimeError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0
