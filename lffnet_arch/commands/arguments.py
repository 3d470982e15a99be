"""The command-line vocabulary every command shares: one definition of each common flag, so the same flag means the
same thing everywhere and every usage text comes from argparse itself.

| flag | meaning in every command |
|---|---|
| ``--checkpoint`` | network weights to read (BasicSR ``.pth``); model conversion also takes ``--input`` |
| ``--model`` | a shipped model by name, used where no ``--checkpoint`` is given |
| ``--opt`` / ``--arch`` | what describes the network of ``--checkpoint`` (default: inferred from the weights) |
| ``--output`` | what the command writes: a file or a folder, as its help says |
| ``--overwrite`` | replace what ``--output`` names; without it an existing output is an error |
| ``--device`` | ``cpu``, ``cuda`` or ``cuda:N`` |
| ``--threads`` | torch intra-op threads, a positive integer |
| ``--tile`` | a tile side in pixels, ``auto`` or ``none`` |
"""

import argparse
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Optional, Union

from lffnet_arch.deploy.pretrained import DEFAULT_MODEL, PRETRAINED

__all__ = [
    'add_checkpoint',
    'check_output_file',
    'check_output_folder',
    'add_device',
    'add_network_arguments',
    'add_output',
    'add_overwrite',
    'add_scene_files',
    'add_threads',
    'add_workers',
    'device_arg',
    'positive_float',
    'positive_int',
    'tile_arg',
]

_DEVICE = re.compile(r'^(cpu|cuda(:\d+)?)$')


def positive_int(value: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {value!r}')
    return number


def positive_float(value: str) -> float:
    """argparse type: a finite number above 0."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f'expected a finite number > 0, got {value!r}')
    return number


def tile_arg(value: str) -> Union[None, int, str]:
    """argparse type of ``--tile``: a positive tile side, ``auto`` or ``none`` (None: the whole image at once)."""
    if value in ('auto', 'none'):
        return None if value == 'none' else value
    try:
        return positive_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, "auto" or "none", got {value!r}') from None


def device_arg(value: str) -> str:
    """argparse type of ``--device``: ``cpu``, ``cuda`` or ``cuda:N``."""
    if not _DEVICE.match(value):
        raise argparse.ArgumentTypeError(f'expected cpu, cuda or cuda:N, got {value!r}')
    return value


def add_checkpoint(parser: argparse.ArgumentParser, help: str, alias_input: bool = False) -> None:
    """A required ``--checkpoint``; ``alias_input`` also accepts ``--input``, the model-conversion commands' former
    spelling of the same flag."""
    names = ('--checkpoint', '--input') if alias_input else ('--checkpoint',)
    suffix = ' (--input is an alias)' if alias_input else ''
    parser.add_argument(*names, dest='checkpoint', type=Path, required=True, help=help + suffix)


def add_network_arguments(parser: argparse.ArgumentParser, shipped: bool = False) -> None:
    """``--checkpoint`` and ``--opt`` | ``--arch``: what :func:`lffnet_arch.deploy.load_model` takes.

    With ``shipped``, ``--checkpoint`` is optional and ``--model`` names the shipped weights used without it.
    """
    if shipped:
        parser.add_argument(
            '--checkpoint', help='network weights (.pth, BasicSR format; default: the shipped model of --model)'
        )
        parser.add_argument(
            '--model',
            choices=sorted(PRETRAINED),
            default=DEFAULT_MODEL,
            help='shipped weights used without --checkpoint (default: %(default)s)',
        )
    else:
        parser.add_argument('--checkpoint', required=True, help='network weights (.pth, BasicSR format)')
    network = parser.add_mutually_exclusive_group()
    network.add_argument('--opt', help='options YAML whose network_g describes the network')
    network.add_argument(
        '--arch',
        help="registered architecture (LFFNet, AHDRNet, ...) with its default, the paper's, "
        'configuration (default: options inferred from the checkpoint)',
    )


def add_output(
    parser: argparse.ArgumentParser, help: str, required: bool = True, default: Optional[Path] = None
) -> None:
    """``--output``: what the command writes (a file or a folder, as ``help`` says)."""
    parser.add_argument('--output', type=Path, required=required, default=default, help=help)


def add_overwrite(parser: argparse.ArgumentParser, what: str = 'the output') -> None:
    """``--overwrite``: replace ``what``; without it an existing output is an error."""
    parser.add_argument('--overwrite', action='store_true', help=f'replace {what} if it exists (default: refuse)')


def add_device(parser: argparse.ArgumentParser, default: Optional[str] = None, help: Optional[str] = None) -> None:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N``."""
    text = help or f'cpu, cuda or cuda:N (default: {default or "cuda when available, else cpu"})'
    parser.add_argument('--device', type=device_arg, default=default, help=text)


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads``: torch intra-op threads."""
    parser.add_argument('--threads', type=positive_int, help="torch intra-op threads (default: torch's default)")


def check_output_file(path: Path, flag: str = '--output') -> None:
    """Make sure ``path`` can be written as a file before any work: not a folder, not under a file, in a folder
    that exists or can be created. Nothing is created.

    Raises:
        ValueError: The message names ``flag`` and ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f'{flag} {path} is a folder; expected a file to write.')
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise ValueError(f'{flag} {path} lies under {existing}, which is a file; expected a file in a folder.')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f'{flag} {path}: cannot write in {existing}.')


def check_output_folder(output: Path) -> None:
    """Make sure ``output`` is a writable folder, or can be created as one, before any work is done.

    Nothing is created: the check writes and removes a temporary file in ``output`` or in its nearest existing
    ancestor, where the folder would be created.

    Raises:
        ValueError: ``output`` is a file, lies under a file, or cannot be written to or created.
    """
    existing = next(p for p in [output, *output.absolute().parents] if p.exists())
    if not existing.is_dir():
        where = 'is a file' if existing == output else f'lies under {existing}, which is a file'
        raise ValueError(f'--output {output} {where}; expected a folder.')
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f'--output {output}: cannot write in {existing} ({error.strerror or error}).') from error


def add_scene_files(parser: argparse.ArgumentParser) -> None:
    """``--num_exposure`` and ``--exposure_file``: how the scene folders of a Kalantari-layout set are read."""
    parser.add_argument('--num_exposure', type=positive_int, default=3, help='frames per scene (default 3)')
    parser.add_argument('--exposure_file', default='exposure.txt', help='exposure file name (default exposure.txt)')


def add_workers(parser: argparse.ArgumentParser, what: str = 'worker processes') -> None:
    """``--workers``: processes that share the work."""
    parser.add_argument('--workers', type=positive_int, default=1, help=f'{what} (default 1)')
