"""The optional packages that read camera RAW and HEIC/HEIF frames, imported when such a file is met.

They are extras (``pip install lffnet_arch[raw]``, ``lffnet_arch[heic]``) rather than requirements because their
wheels carry copyleft code: rawpy bundles LibRaw (LGPL-2.1 or CDDL-1.0), pillow-heif's wheels bundle libheif and
libde265 (LGPL-3.0) and the x265 encoder (GPL-2.0). A missing one is reported naming the file that needed it.
"""

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Union

__all__ = ['EXTRAS', 'MissingExtraError', 'existing_frame', 'import_extra']

# extra -> (what it reads, its packages as pip names them, the licences of what their wheels carry)
EXTRAS = {
    'raw': (
        'camera RAW frames',
        ('rawpy', 'exifread'),
        'rawpy is MIT-licensed and bundles LibRaw (LGPL-2.1 or CDDL-1.0); exifread is BSD-3-Clause',
    ),
    'heic': (
        'HEIC/HEIF frames',
        ('pillow-heif',),
        "pillow-heif's code is BSD-3-Clause, its wheels bundle libheif and libde265 (LGPL-3.0) and x265 (GPL-2.0)",
    ),
}


class MissingExtraError(ValueError):
    """A file needs an optional package that is not installed (a ValueError, so the commands report it as they
    report any unreadable file)."""


def import_extra(module: str, extra: str, path: Union[str, os.PathLike]) -> ModuleType:
    """Import ``module`` of the ``extra`` (``'raw'`` or ``'heic'``) for reading ``path``.

    Raises:
        MissingExtraError: The module is not installed; the message names ``path``, the install command and the
            licences.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        what, packages, licences = EXTRAS[extra]
        raise MissingExtraError(
            f'Cannot read {path}: {what} need the optional package{"s" if len(packages) > 1 else ""} '
            f'{" and ".join(packages)} ({error.name or module} is not installed). Install '
            f'{"them" if len(packages) > 1 else "it"} with: pip install "lffnet_arch[{extra}]" ({licences}).'
        ) from error


def existing_frame(path: Union[str, os.PathLike], kind: str) -> Path:
    """``path`` as a Path after the checks every optional reader makes before it imports its package: the file
    exists (FileNotFoundError) and is not empty (ValueError naming the ``kind`` of frame)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Image file not found: {path}')
    if path.stat().st_size == 0:
        raise ValueError(f'Cannot decode {kind} frame {path}: the file is empty (0 bytes).')
    return path
