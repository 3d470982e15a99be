"""Real radiance maps for the capture simulator: finding them, reading them, and where to crop them.

A radiance map is a linear HDR photograph (Radiance ``.hdr`` or OpenEXR ``.exr``) of arbitrary absolute scale. The
simulator meters each crop itself, so only relative values matter. Photographs are named by their file stem
(``venice_sunset_1k``), which must be unique within a corpus; training and validation sets are split by these names.

Equirectangular panoramas (width = 2 x height) are stretched more and more towards the poles; only the band of
latitudes within ``max_latitude`` degrees of the horizon is used, where the horizontal stretch 1 / cos(latitude) is
at most 1.41 at the default of 45 degrees.
"""

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from lffnet_arch.fileio.image import read_hdr

__all__ = ['RADIANCE_EXTENSIONS', 'RadianceMap', 'find_radiance_files', 'load_radiance_maps']

PathLike = Union[str, os.PathLike]
RADIANCE_EXTENSIONS = ('.hdr', '.exr')


@dataclass
class RadianceMap:
    """One linear HDR photograph, ready to crop.

    Attributes:
        name: The file stem, the photograph's name in options (``include`` / ``exclude``).
        path: The file it was read from.
        image: (H, W, 3) float32 linear RGB, non-negative and finite; for a panorama only the usable band.
        panorama: Whether the file is an equirectangular panorama (rows outside the band were dropped).
    """

    name: str
    path: Path
    image: np.ndarray
    panorama: bool


def find_radiance_files(roots: Union[PathLike, Sequence[PathLike]]) -> list[Path]:
    """Every ``.hdr`` / ``.exr`` file under the given folders (recursively, following symbolic links to folders, each
    folder once) or the given files, sorted.

    Raises:
        FileNotFoundError: A root does not exist, or none holds a radiance file.
    """
    roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
    files = []
    for root in map(Path, roots):
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(_walk(root))
        else:
            raise FileNotFoundError(f'Radiance folder or file not found: {root}')
    if not files:
        raise FileNotFoundError(
            f'No radiance maps (*.hdr, *.exr) under {", ".join(map(str, roots))} (links followed, hidden files '
            'skipped).'
        )
    return sorted(set(files))


def _walk(root: Path) -> list[Path]:
    """Radiance files under ``root``, through linked folders too; a folder reached twice (a link cycle) is read once."""
    found, seen = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix.lower() in RADIANCE_EXTENSIONS and not name.startswith('.') and path.is_file():
                found.append(path)
    return found


def _select(files: list[Path], include: Optional[Iterable[str]], exclude: Optional[Iterable[str]]) -> list[Path]:
    by_name, by_file = {}, {}
    for path in files:
        if path.stem in by_name:
            raise ValueError(
                f'Two radiance maps share the name {path.stem!r}: {by_name[path.stem]} and {path}; photographs are '
                'selected by file stem, so rename one.'
            )
        by_name[path.stem] = path
        by_file.setdefault(path.resolve(), []).append(path.stem)  # a linked alias is the same photograph
    for option, names in (('include', include), ('exclude', exclude)):
        if isinstance(names, str):
            raise ValueError(f'Radiance option {option!r} must be a list of names, got the string {names!r}.')
        unknown = sorted(set(names or ()) - by_name.keys())
        if unknown:
            raise ValueError(f'Radiance option {option!r} names photographs that are not in the corpus: {unknown}.')
    # Excluding a photograph excludes every name it has; each photograph is used once, under its first name.
    excluded = {alias for name in exclude or () for alias in by_file[by_name[name].resolve()]}
    chosen = sorted(include) if include is not None else sorted(by_name)
    chosen = [name for name in chosen if name not in excluded]
    unique = {by_name[name].resolve(): name for name in reversed(chosen)}
    chosen = sorted(unique.values())
    if not chosen:
        raise ValueError('The include / exclude options leave no radiance maps.')
    return [by_name[name] for name in chosen]


def _usable_band(image: np.ndarray, max_latitude: float) -> tuple:
    height, width = image.shape[:2]
    if width != 2 * height:
        return image, False
    half = int(round(height / 2 * max_latitude / 90.0))
    return image[height // 2 - half : height // 2 + half], True


def load_radiance_maps(
    roots: Union[PathLike, Sequence[PathLike]],
    include: Optional[Iterable[str]] = None,
    exclude: Optional[Iterable[str]] = None,
    max_latitude: float = 45.0,
    min_size: int = 64,
) -> list[RadianceMap]:
    """Read the radiance maps of a corpus.

    Args:
        roots: Folders (searched recursively) or files.
        include: Only these photographs (file stems), if given.
        exclude: Not these photographs.
        max_latitude: Equirectangular panoramas keep the rows within this many degrees of the horizon.
        min_size: Smallest usable side in pixels after that.

    Raises:
        ValueError: Unknown or duplicate names, an image that is too small, or an unreadable file (named).
    """
    if not 0 < max_latitude <= 90:
        raise ValueError(f'max_latitude must be in (0, 90] degrees, got {max_latitude}.')
    maps = []
    for path in _select(find_radiance_files(roots), include, exclude):
        image, panorama = _usable_band(read_hdr(path), max_latitude)
        if not np.isfinite(image).all():
            raise ValueError(f'Radiance map {path} holds non-finite values.')
        if min(image.shape[:2]) < min_size:
            raise ValueError(f'Radiance map {path} is {image.shape[1]} x {image.shape[0]}; need sides >= {min_size}.')
        peak = float(image.max())
        if peak <= 0:
            raise ValueError(f'Radiance map {path} is black (no positive values).')
        if not 2.0**-20 <= peak <= 2.0**40:  # a tiny or huge absolute scale: bring it near 1, by a power of two
            image = image * np.float32(2.0 ** -round(math.log2(peak)))
        maps.append(RadianceMap(path.stem, path, np.ascontiguousarray(np.maximum(image, 0), np.float32), panorama))
    return maps
