"""The ``lffnet-inference`` flags and the checks that need neither torch nor the frames: parsed and checked first, so
a wrong flag fails at once (the ``lffnet_cli`` entry point imports the package only after them)."""

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from lffnet_arch.choices import (
    ALIGN_METHODS,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_TONEMAPPER,
    INFERENCE_PRECISIONS,
    PREVIEW_FORMATS,
    TONEMAPPERS,
)
from lffnet_arch.commands.arguments import (
    add_device,
    add_network_arguments,
    add_output,
    add_overwrite,
    add_threads,
    check_output_folder,
    positive_float,
    positive_int,
    tile_arg,
)
from lffnet_arch.deploy.budget import DEFAULT_MAX_MEMORY, format_size, parse_memory_size
from lffnet_arch.fileio.limits import DEFAULT_MAX_PIXELS

__all__ = [
    'build_parser',
    'check_arguments',
    'jpeg_quality_arg',
    'max_memory_arg',
    'parse_arguments',
    'response_arg',
]


def build_parser() -> argparse.ArgumentParser:
    """The ``lffnet-inference`` / ``scripts/inference_hdr.py`` argument parser."""
    parser = argparse.ArgumentParser(
        description='Fuse exposure brackets into linear HDR images (<name>.hdr, <name>.exr, '
        '<name>_response.json and a tonemapped <name>.png or <name>.jpg preview).'
    )
    parser.add_argument(
        '--input',
        nargs='+',
        required=True,
        help='a folder holding one bracket, the frame files of one bracket, or a folder of bracket '
        'folders (each one scene)',
    )
    add_output(parser, 'output folder')
    add_network_arguments(parser, shipped=True)
    parser.add_argument(
        '--exposures',
        nargs='+',
        type=positive_float,
        help='exposure times in seconds, one per frame in file-name order (default: exposure.txt '
        'in the bracket folder, else EXIF ExposureTime)',
    )
    parser.add_argument(
        '--ref', type=int, help="reference frame in exposure order (default: the network's, the middle one)"
    )
    _add_memory_arguments(parser)
    parser.add_argument('--tile_overlap', type=int, default=32, help='tile overlap in pixels (default: 32)')
    parser.add_argument(
        '--precision',
        choices=INFERENCE_PRECISIONS,
        default='auto',
        help='the network\'s arithmetic: "auto" (the default) is bf16 on a CPU with bf16 instructions (AVX-512 BF16 '
        'or AMX: about 1.5 times faster, within 0.1 dB of fp32) and fp32 elsewhere, GPUs included; the line per run '
        'names the one used',
    )
    parser.add_argument(
        '--align',
        choices=(*ALIGN_METHODS, 'none'),
        default='ecc',
        help='global pre-alignment of handheld frames to the reference, the shift and rotation found reported per '
        'frame (default: %(default)s)',
    )
    _add_linearisation_arguments(parser)
    _add_preview_arguments(parser)
    parser.add_argument(
        '--gap',
        type=positive_float,
        default=2.0,
        help='seconds between captures that separate two brackets of a shoot folder (default: %(default)s)',
    )
    parser.add_argument('--dry_run', action='store_true', help='print the brackets found and stop')
    parser.add_argument(
        '--skip_done',
        action='store_true',
        help='skip brackets whose outputs are all present (a partly written one is redone)',
    )
    parser.add_argument(
        '--max_pixels',
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help='pixel budget of a frame, checked from its header before decoding (default: %(default)s)',
    )
    add_device(parser)
    add_threads(parser)
    add_overwrite(parser, 'existing output files')
    return parser


def _add_memory_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tile`` and ``--max_memory``: how the image is split to fit in memory."""
    parser.add_argument(
        '--tile',
        type=tile_arg,
        default='auto',
        help='"auto" (the default): the whole-image result within --max_memory, computed a strip of rows at a time '
        '(exact for LFFNet and AHDRNet; other networks run in the largest tiles the bound allows); a tile side in '
        'pixels runs overlapping tiles of that size instead (an approximation for LFFNet, whose FFTs then see one '
        'tile); "none" runs the whole image at once (then --max_memory does not apply: the shipped model\'s '
        'forward pass alone takes about 2 kB a pixel, 24 GB at 12 MP)',
    )
    parser.add_argument(
        '--max_memory',
        type=max_memory_arg,
        default=DEFAULT_MAX_MEMORY,
        help='peak memory of this process with --tile auto, e.g. 2.5GB, 2500MB or 3GiB: the frames, the output, the '
        'strips and the preview fit in it whatever the free memory, strips being as tall as it leaves room for '
        f'(default: {format_size(DEFAULT_MAX_MEMORY)}; a forced --tile N or --tile none is not bounded)',
    )
    parser.add_argument(
        '--scratch_dir',
        type=Path,
        help='folder for the feature maps of the strip-wise pass (LFFNet: about 640 bytes a pixel at the shipped '
        'width, 7.7 GB at 12 MP, removed when the bracket is done; they stay in the page cache where memory allows). '
        'Default: the system temporary folder ($TMPDIR)',
    )


def _add_linearisation_arguments(parser: argparse.ArgumentParser) -> None:
    """``--response`` | ``--gamma``: how the frames are linearised."""
    linearisation = parser.add_mutually_exclusive_group()
    linearisation.add_argument(
        '--response',
        type=response_arg,
        default='auto',
        help="the camera's inverse response that linearises the frames: auto (calibrated from the bracket itself, "
        'the default), gamma:G, srgb, linear, or a response .json written by an earlier run',
    )
    linearisation.add_argument(
        '--gamma', type=positive_float, help='the same as --response gamma:GAMMA (the Kalantari protocol: 2.2)'
    )


def _add_preview_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tonemap``, ``--preview`` and ``--jpeg_quality``: how the preview is made and written."""
    parser.add_argument(
        '--tonemap',
        choices=TONEMAPPERS,
        default=DEFAULT_TONEMAPPER,
        help='tone mapper of the preview (default: %(default)s)',
    )
    parser.add_argument(
        '--preview',
        choices=PREVIEW_FORMATS,
        default='png',
        help="the preview's format: png (lossless, the default) or jpg; either is upright and carries the reference "
        "frame's ICC profile when that frame has one",
    )
    parser.add_argument(
        '--jpeg_quality',
        type=jpeg_quality_arg,
        help=f'quality of a --preview jpg, 1 to 100 (default: {DEFAULT_JPEG_QUALITY})',
    )


def response_arg(value: str):
    """argparse type of ``--response``: checked when parsed (a file is read then, too)."""
    from lffnet_arch.response import parse_response

    try:
        return parse_response(value)
    except (ValueError, FileNotFoundError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def max_memory_arg(value: str) -> int:
    """argparse type of ``--max_memory``: a memory size above zero (:func:`parse_memory_size`)."""
    try:
        return parse_memory_size(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def jpeg_quality_arg(value: str) -> int:
    """argparse type of ``--jpeg_quality``: an integer from 1 to 100."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 100:
        raise argparse.ArgumentTypeError(f'expected an integer from 1 to 100 (JPEG quality), got {value!r}')
    return number


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """What can be checked before anything is read: the inputs and the files the flags name exist, ``--exposures``
    counts the frames when frame files are given, and the output folder can be written. Exits through
    ``parser.error`` (status 2) naming the flag."""
    missing = [p for p in args.input if not Path(p).exists()]
    if missing:
        parser.error(f'--input not found: {", ".join(missing)}')
    files = [Path(p) for p in args.input]
    if any(p.is_file() for p in files) and not all(p.is_file() for p in files):
        parser.error('--input takes either the frame files of one bracket or folders, not both.')
    if args.exposures is not None and all(p.is_file() for p in files) and len(args.exposures) != len(files):
        parser.error(f'--exposures gives {len(args.exposures)} times for {len(files)} frame files; give one per frame.')
    for flag in ('checkpoint', 'opt'):
        value = getattr(args, flag, None)
        if value is not None and not Path(value).is_file():
            parser.error(f'--{flag} {value}: no such file.')
    if args.ref is not None and args.ref < 0:
        parser.error(f'--ref must be a frame index >= 0, got {args.ref}.')
    if args.tile_overlap < 0:
        parser.error(f'--tile_overlap must be >= 0, got {args.tile_overlap}.')
    if args.jpeg_quality is not None and args.preview != 'jpg':
        parser.error(
            f'--jpeg_quality {args.jpeg_quality} sets the quality of a JPEG preview; add --preview jpg '
            f'(the --preview {args.preview} preview is lossless).'
        )
    if args.scratch_dir is not None:
        scratch = Path(args.scratch_dir)
        if not scratch.is_dir():
            parser.error(f'--scratch_dir {scratch}: no such folder.')
        if not os.access(scratch, os.W_OK | os.X_OK):
            parser.error(f'--scratch_dir {scratch}: this user cannot write there.')
    if not args.dry_run:
        try:
            check_output_folder(Path(args.output))
        except (ValueError, OSError) as error:
            parser.error(str(error))


def parse_arguments(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    """Parse and check ``lffnet-inference``'s flags; returns them with the parser (for later errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(args, parser)
    return args, parser
