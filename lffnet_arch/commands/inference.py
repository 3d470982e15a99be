"""The ``lffnet-inference`` command (also ``scripts/inference_hdr.py``): fuse brackets from files into ``.hdr``,
``.exr``, the response ``.json`` and a tonemapped ``.png`` or ``.jpg`` preview."""

import argparse
import concurrent.futures
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from tqdm import tqdm

from lffnet_arch.choices import DEFAULT_JPEG_QUALITY
from lffnet_arch.commands.arguments import check_output_folder
from lffnet_arch.commands.inference_args import build_parser, parse_arguments
from lffnet_arch.data.layout import FRAME_EXTENSIONS, list_frames
from lffnet_arch.deploy.bracket import choose_frames, format_seconds, is_raw_bracket, raw_response, read_bracket
from lffnet_arch.deploy.budget import MemoryBoundError, format_size, output_bytes, resident_memory
from lffnet_arch.deploy.fusion import fuse, resolve_precision
from lffnet_arch.deploy.model import load_model
from lffnet_arch.deploy.ranks import Ranks, current_ranks, gather, shard
from lffnet_arch.deploy.ranks import finish as finish_ranks
from lffnet_arch.deploy.ranks import init as init_ranks
from lffnet_arch.deploy.shoot import group_shoot
from lffnet_arch.fileio.atomic import finish_file, remove_stale_temporaries
from lffnet_arch.fileio.image import read_icc_profile, write_hdr, write_preview
from lffnet_arch.fileio.limits import set_max_pixels
from lffnet_arch.threads import apply_thread_policy
from lffnet_arch.tonemap import tonemap

__all__ = [
    'build_parser',
    'check_output_folder',
    'describe_alignment',
    'describe_bracket',
    'describe_tiles',
    'find_brackets',
    'main',
    'run',
    'write_outputs',
]


def find_brackets(
    inputs: Sequence[str], gap: float = 2.0, one_bracket: bool = False
) -> list[tuple[str, Union[Path, list[Path]]]]:
    """(name, folder or frame files) of every bracket named by ``--input``: one folder of frames (a bracket, or a
    shoot whose frames :func:`~lffnet_arch.deploy.shoot.group_shoot` groups, ``gap`` seconds apart), the frame files
    of one bracket, or folders of bracket folders; raises ValueError for names that would collide. With
    ``one_bracket`` (``--exposures`` given: the times are the user's, not the files') a folder of frames is one
    bracket, whatever its EXIF says."""
    paths = [Path(p) for p in inputs]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f'--input not found: {", ".join(missing)}')
    if all(p.is_file() for p in paths):
        return [(paths[0].resolve().parent.name or 'hdr', paths)]
    if not all(p.is_dir() for p in paths):
        raise ValueError('--input takes either frame files of one bracket or folders, not both.')
    scenes = []
    for folder in paths:
        frames = list_frames(folder)
        if frames:
            single = one_bracket or (folder / 'exposure.txt').is_file()
            groups = [frames] if single else group_shoot(frames, gap)
            if len(groups) == 1:
                scenes.append((folder.resolve().name, folder))
            else:  # a shoot: one bracket per group, named after its first frame
                scenes.extend((group[0].stem, group) for group in groups)
            continue
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith('.'))
        found = [(p.name, p) for p in subfolders if list_frames(p)]
        if not found:
            raise ValueError(f'No frames ({" ".join(FRAME_EXTENSIONS)}) in {folder} or its sub-folders.')
        scenes.extend(found)
    names = [name for name, _ in scenes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'Several scenes are named {duplicates}; their outputs would collide. Process them apart.')
    return scenes


def _output_paths(output: Path, name: str, preview: str = 'png') -> list[Path]:
    """A bracket's output files; the preview's suffix is ``--preview``'s format."""
    suffixes = ['.hdr', '.exr', f'.{preview}', '_response.json']
    return [output / f'{name}{suffix}' for suffix in suffixes]


def _resolve_device(device: Optional[str], ranks: Ranks) -> torch.device:
    """``--device``, or CUDA when there is one; under ``torchrun`` each process on a machine takes its own GPU."""
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; use --device cpu.')
    if device.type == 'cuda' and ranks.distributed and device.index is None:
        device = torch.device('cuda', ranks.local_rank % torch.cuda.device_count())
    return device


def _dry_run(scenes: list, ranks: Ranks) -> int:
    if ranks.lead:
        for name, source in scenes:
            files = source if isinstance(source, list) else list_frames(source)
            print(f'{name}: {", ".join(p.name for p in files)}')
        print(f'{len(scenes)} bracket(s); nothing fused (--dry_run).')
    return 0


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Fuse every bracket; returns the number that failed (each reported with its files, the rest go on). Under
    ``torchrun`` each process fuses its share of the brackets (:mod:`lffnet_arch.deploy.ranks`) and the first prints
    one summary of all."""
    set_max_pixels(args.max_pixels)
    ranks = current_ranks()
    scenes = find_brackets(args.input, args.gap, one_bracket=args.exposures is not None)
    if args.dry_run:
        return _dry_run(scenes, ranks)
    output = Path(args.output)
    check_output_folder(output)
    if ranks.world_size == ranks.local_world_size:  # process ids name writers on this machine only
        for path, pid in remove_stale_temporaries(output):
            warnings.warn(
                f'Removed {path}, left by an interrupted run (process {pid}, no longer running).', stacklevel=2
            )
    outputs = {name: _output_paths(output, name, args.preview) for name, _ in scenes}
    done = {name for name, paths in outputs.items() if args.skip_done and all(p.exists() for p in paths)}
    existing = [str(p) for name, paths in outputs.items() if name not in done for p in paths if p.exists()]
    if existing and not (args.overwrite or args.skip_done):
        parser.error(
            f'output exists ({", ".join(existing[:5])}{", ..." if len(existing) > 5 else ""}); pass '
            '--overwrite to replace it, or --skip_done to skip finished brackets.'
        )
    device = _resolve_device(args.device, ranks)
    init_ranks(ranks, device.type)
    threads = apply_thread_policy(args.threads) if device.type == 'cpu' else None
    model = load_model(args.checkpoint, opt=args.opt, arch=args.arch, device=device, pretrained=args.model)
    mine = shard([s for s in scenes if s[0] not in done], ranks)
    where = f'process {ranks.rank + 1} of {ranks.world_size}: ' if ranks.distributed else ''
    args.resolved_precision, why = resolve_precision(args.precision, device)
    tqdm.write(
        f'{where}{len(mine)} bracket(s) on {device}'
        + (f' with {threads} thread(s)' if threads else '')
        + f', {args.resolved_precision} ({why}), eager PyTorch'
    )
    failed = []
    for name, source in tqdm(mine, desc=f'{where}brackets', unit='bracket', position=ranks.local_rank):
        try:
            _fuse_bracket(args, model, name, source, outputs[name], overwrite=args.overwrite or args.skip_done)
        except (ValueError, FileNotFoundError, FileExistsError, OSError, RuntimeError) as error:
            files = source if isinstance(source, list) else list_frames(source)
            failed.append(name)
            tqdm.write(f'{name}: FAILED ({", ".join(p.name for p in files)}): {error}', file=sys.stderr)
    failed = [name for share in gather(failed, ranks) for name in share]
    finish_ranks(ranks)
    if ranks.lead:
        _summary(len(scenes), done, failed)
    return len(failed)


def _summary(total: int, done: set, failed: list) -> None:
    fused = total - len(done) - len(failed)
    print(f'Summary: {fused} fused, {len(done)} skipped (outputs present), {len(failed)} failed.')
    for name in sorted(done):
        print(f'  skipped {name}')
    for name in sorted(failed):
        print(f'  failed {name}')


def _memory_budget(args: argparse.Namespace) -> tuple[Optional[int], int]:
    """What ``--max_memory`` leaves for a bracket (its frames, the output and the tiles: ``fuse``'s ``max_memory``)
    after what this process holds before reading it, and that; (None, held) unless ``--tile auto``."""
    held = resident_memory() or 0
    if args.tile != 'auto':
        return None, held
    if held >= args.max_memory:
        raise ValueError(
            f'--max_memory {format_size(args.max_memory)} is less than this process holds before reading a bracket '
            f'({format_size(held)}: Python, torch and the network); give more, e.g. --max_memory '
            f'{format_size(held + 10**9)}.'
        )
    return args.max_memory - held, held


def _check_output_memory(args: argparse.Namespace, held: int, frames: list) -> None:
    """Refuse, naming ``--max_memory``, a bound that writing the outputs would exceed."""
    height, width = frames[0].shape[:2]
    need = held + output_bytes(height, width)
    if args.tile == 'auto' and args.tonemap in ('mulaw', 'fusion') and need > args.max_memory:
        raise ValueError(
            f'--max_memory {format_size(args.max_memory)} is too small to write the outputs of a {width} x {height} '
            f'bracket: they need at least {format_size(need)} with what the process holds ({format_size(held)}).'
        )


def _fuse_bracket(args: argparse.Namespace, model, name: str, source, outputs: list, overwrite: bool) -> None:
    budget, held = _memory_budget(args)
    frames, times, paths, origin = read_bracket(source, args.exposures, return_sources=True, as_float=False)
    response, gamma = args.response, args.gamma
    if is_raw_bracket(paths):  # linear data: nothing to calibrate
        response, gamma = raw_response(response, gamma, name)
    if len(frames) < model.num_exposure:
        raise ValueError(f'{len(frames)} frames, but the network fuses num_exposure={model.num_exposure}.')
    chosen = choose_frames(frames, times, model.num_exposure)
    ref = args.ref if args.ref is not None else getattr(model, 'ref_idx', None)
    tqdm.write(f'{name}: {describe_bracket(paths, times, origin, chosen, ref)}')
    frames, times = [frames[i] for i in chosen], times[chosen]
    _check_output_memory(args, held, frames)
    tiles = tqdm(desc=f'{name} steps', unit='step', leave=False) if args.tile else None
    try:
        with warnings.catch_warnings():  # the alignment line below reports what ECC warns of, naming the file
            warnings.filterwarnings('ignore', message='ECC alignment', category=UserWarning)
            hdr, response, info = fuse(
                frames,
                times,
                model,
                ref_idx=args.ref,
                tile_size=args.tile,
                tile_overlap=args.tile_overlap,
                precision=args.resolved_precision,
                gamma=gamma,
                align=None if args.align == 'none' else args.align,
                progress=tiles,
                response=response,
                return_response=True,
                max_memory=budget,
                scratch_dir=None if args.scratch_dir is None else str(args.scratch_dir),
            )
    except MemoryBoundError as error:
        raise ValueError(
            f'--max_memory {format_size(args.max_memory)} is too small for this bracket: {error.detail}, besides the '
            f'{format_size(held)} this process holds before reading it; give at least --max_memory '
            f'{format_size(held + error.minimum)}.'
        ) from None
    finally:
        if tiles is not None:
            tiles.close()
    del frames  # only the fused image from here on
    tqdm.write(f'{name}: response {describe_response(info)}')
    fused = [paths[chosen[i]].name for i in np.argsort(times, kind='stable')]  # fuse's exposure order
    tqdm.write(f'{name}: alignment {describe_alignment(info["alignment"], fused)}')
    tqdm.write(f'{name}: {describe_tiles(info["tile"], args, info.get("strip_rows"))}')
    # The response file's notes: how the response was found.
    notes = {key: value for key, value in info.items() if key not in ('alignment', 'tile', 'strip_rows')}
    icc_profile = read_icc_profile(paths[_reference_frame(chosen, ref)])
    quality = args.jpeg_quality or DEFAULT_JPEG_QUALITY
    write_outputs(outputs, hdr, args.tonemap, overwrite, (response, notes), icc_profile, quality)


def _reference_frame(chosen: Sequence[int], ref: Optional[int] = None) -> int:
    """The reference among the fused frames ``chosen`` (in exposure order): the middle one, or ``ref``-th."""
    index = (len(chosen) - 1) // 2 if ref is None else ref
    if not 0 <= index < len(chosen):
        raise ValueError(f'--ref {ref}: expected a frame index from 0 to {len(chosen) - 1} (the fused frames).')
    return chosen[index]


def describe_bracket(
    paths: Sequence[Path], times: np.ndarray, origin: str, chosen: Sequence[int], ref: Optional[int] = None
) -> str:
    """One line: the frames in exposure order with their times and where those came from, the frames fused (of a
    longer bracket) and the reference frame (the middle one of those fused, or ``--ref``)."""

    def seconds(value: float) -> str:
        if origin not in ('EXIF', '--exposures'):  # an exposure file's EV values, relative
            return f'EV {np.log2(value):g}'
        return format_seconds(value)

    order = np.argsort(times, kind='stable')
    listed = ', '.join(f'{paths[i].name} {seconds(times[i])}' for i in order)
    line = f'{len(paths)} frames by exposure ({origin} times): {listed}'
    if len(chosen) < len(paths):
        line += f'; fusing {", ".join(paths[i].name for i in chosen)}'
    return line + f'; reference {paths[_reference_frame(chosen, ref)].name}'


def describe_alignment(alignment: Optional[Sequence[dict]], names: Sequence[str]) -> str:
    """One phrase on what the global pre-alignment found (``fuse``'s ``info['alignment']``, ``names`` the fused
    frames in the same exposure order): each non-reference frame's shift and rotation and whether it converged."""
    if alignment is None:
        return 'off (--align none)'
    parts, reference = [], None
    for name, entry in zip(names, alignment):
        if entry['reference']:
            reference = name
        elif entry['converged']:
            dx, dy, rotation = (round(entry[key], 2) + 0.0 for key in ('dx', 'dy', 'rotation'))  # no -0.00
            parts.append(f'{name} shift dx {dx:+.2f} px, dy {dy:+.2f} px, rotation {rotation:+.2f} deg, converged')
        else:
            parts.append(f'{name} {entry["note"]}')
    return f'{alignment[0]["method"]} onto {reference}: {"; ".join(parts)}'


def describe_tiles(tile: Optional[int], args: argparse.Namespace, strip_rows: Optional[int] = None) -> str:
    """One phrase on how the image ran: whole, in strips (exact) or in tiles, of what size and why."""
    bound = f'--max_memory {format_size(args.max_memory)}'
    if strip_rows is not None:
        return f'whole-image result in strips of {strip_rows} rows (the most that {bound} allows)'
    if tile is None:
        return f'whole image at once ({"it fits in " + bound if args.tile == "auto" else "--tile none, not bounded"})'
    why = f'the largest that {bound} allows' if args.tile == 'auto' else f'--tile {args.tile}, not bounded'
    return f'tiles of {tile} x {tile} px, overlap {args.tile_overlap} px ({why})'


def describe_response(info: dict) -> str:
    """One phrase on the response a bracket was linearised with."""
    if info['source'] == 'calibrated':
        return f'calibrated from the bracket ({info.get("method", "auto")})'
    if info['source'] == 'fallback':
        return f'gamma 2.2: the bracket could not be calibrated ({info["reason"]})'
    return f'{info["response"]} (given)'


def write_outputs(
    paths: Sequence[Path],
    hdr: np.ndarray,
    tonemapper: str,
    overwrite: bool,
    response: Optional[tuple] = None,
    icc_profile: Optional[bytes] = None,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> None:
    """Write a bracket's outputs all or nothing. Every file is written first into a staging folder beside them
    (``.<name>.partial-<pid>``, removed by the next run if this one is killed), so a full disk fails before any
    output exists; then each file is moved into place. Without ``overwrite`` each is finished exclusively, so a
    concurrent run that wrote one first is not replaced, and the files this call had finished are removed again:
    a bracket is never left half written.

    The preview (a ``.png`` or ``.jpg`` path) is the tone-mapped image, sRGB-encoded, upright with no orientation
    tag, with ``icc_profile`` (the reference frame's) embedded when given and JPEG at ``jpeg_quality``.

    Memory: ``hdr`` is the one float32 image; the ``mulaw`` and ``fusion`` tone mappers and the ``.hdr`` / ``.exr``
    writers read it a strip of rows at a time (:func:`~lffnet_arch.tonemap.tonemap`,
    :func:`~lffnet_arch.fileio.image.write_hdr`), so besides it only the 8-bit preview is full-size.

    Speed: the preview (tone mapping and encoding) is made in a second thread while the HDR files are written; both
    spend most of their time in NumPy, OpenCV, Pillow and OpenEXR calls that release the GIL."""
    stage = paths[0].parent / f'.{paths[0].stem}.partial-{os.getpid()}'
    stage.mkdir(parents=True, exist_ok=True)
    previews = [stage / path.name for path in paths if path.suffix in ('.png', '.jpg')]
    finished = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            job = pool.submit(_write_previews, previews, hdr, tonemapper, icc_profile, jpeg_quality)
            for path in paths:
                if path.suffix == '.json':  # the curve the frames were linearised with, and how it was found
                    response[0].to_json(stage / path.name, info=_json_ready(response[1]))
                elif path.suffix not in ('.png', '.jpg'):
                    write_hdr(stage / path.name, hdr)
            job.result()  # its error, if any, is raised here
        for path in paths:
            finish_file(stage / path.name, path, overwrite)
            finished.append(path)
    except BaseException:
        for path in finished:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _write_previews(paths: Sequence[Path], hdr: np.ndarray, tonemapper: str, icc_profile, jpeg_quality: int) -> None:
    """Tone-map ``hdr`` once and write it to each preview path (none: nothing is tone-mapped)."""
    if not paths:
        return
    preview = tonemap(hdr, tonemapper)
    for path in paths:
        write_preview(path, preview, icc_profile, jpeg_quality)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Fuse what checked arguments name (:func:`~lffnet_arch.commands.inference_args.parse_arguments`); returns the
    exit status: 0, or 1 when an error stopped the run or any bracket failed."""
    try:
        failed = _run(args, parser)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f'error: {message}', file=sys.stderr)
        return 1
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point in this process (the console command ``lffnet-inference`` goes through
    ``lffnet_cli``, which checks the arguments before importing torch); returns the exit status.

    Examples::

        lffnet-inference --input my_bracket/ --output results/ --checkpoint LFFNet.pth --exposures 0.01 0.04 0.16
        lffnet-inference --input scenes/ --output results/ --checkpoint LFFNet.pth \\
            --opt options/test/LFFNet/test_LFFNet_Kalantari.yml --tile 512
    """
    return run(*parse_arguments(argv))


def _json_ready(value):
    """Calibration notes as JSON values (NumPy numbers and arrays become plain numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
