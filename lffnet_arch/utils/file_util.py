"""Writing files so that an interrupted run never leaves a partial file under the final name."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Union

__all__ = ['atomic_path']


@contextmanager
def atomic_path(path: Union[str, os.PathLike]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it is synced and renamed onto ``path``.

    The temporary file (``.<name>.<random>.tmp`` in the same folder, so the rename is atomic) is removed when the
    body raises, and ``path`` is then left as it was. Parent folders are created. Overwrite checks are the caller's.

    Example::

        with atomic_path('out/model.pth') as tmp:
            torch.save(obj, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, 'rb') as file:
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
