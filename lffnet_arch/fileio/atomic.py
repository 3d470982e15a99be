"""Writing files so that an interrupted run never leaves a partial file under the final name.

Temporary names carry the writer's process id (``.<name>.<pid>.<random>.tmp`` for files, ``.<name>.partial-<pid>``
for folders), so a later run can tell a leftover of a killed writer (its process is gone) from the live file of a
concurrent run, and remove only the former (:func:`remove_stale_temporaries`).
"""

import errno
import glob
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Union

__all__ = [
    'atomic_path',
    'default_file_mode',
    'pid_alive',
    'remove_stale_temporaries',
    'stale_owner',
    'staged_output_dir',
]

PathLike = Union[str, os.PathLike]

# What the writers in this module create: files ``.<name>.<pid>.<random>.tmp`` (atomic_path) and folders
# ``.<name>.partial-<pid>`` / ``.<name>.old-<pid>`` (staged_output_dir).
_TEMP_FILE = re.compile(r'^\..+\.(?P<pid>\d+)\.[^.]+\.tmp$')
_TEMP_DIR = re.compile(r'^\..+\.(?:partial|old)-(?P<pid>\d+)$')


def default_file_mode() -> int:
    """The mode ``open(path, 'w')`` would give a new file: 0o666 less the process's umask.

    Linux reports the umask in ``/proc/self/status``; elsewhere it is read by setting and restoring it (not
    thread-safe, so only done where the status file is missing).
    """
    try:
        with open('/proc/self/status', encoding='ascii') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_owner(path: PathLike) -> Optional[int]:
    """The id of the dead process that left ``path`` (a temporary of this module), or None.

    None when ``path`` is not named like one of this module's temporaries, or its writer is still running.
    """
    path = Path(path)
    match = (_TEMP_DIR if path.is_dir() else _TEMP_FILE).match(path.name)
    if match is None:
        return None
    pid = int(match.group('pid'))
    return None if pid_alive(pid) else pid


def remove_stale_temporaries(folder: PathLike, recursive: bool = False) -> list[tuple[Path, int]]:
    """Delete the temporaries in ``folder`` whose writer process is gone; keep those of live processes.

    Args:
        folder (str | PathLike): Where to look; a missing folder has nothing to remove.
        recursive (bool): Also look in sub-folders. Default: False.

    Returns:
        list[tuple[Path, int]]: (removed path, id of the process that wrote it), for the caller to report.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob('.*') if recursive else folder.glob('.*')
    removed = []
    for path in sorted(candidates):
        pid = stale_owner(path)
        if pid is None:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append((path, pid))
    return removed


def _finish_exclusively(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless ``path`` exists, atomically (FileExistsError if it does)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f'{path} appeared while this run was writing it (another run?); not replaced.') from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
            raise
        # A file system without hard links: reserve the name exclusively, then move the complete file onto it.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.replace(tmp, path)
        return
    tmp.unlink()


def finish_file(tmp: PathLike, path: PathLike, overwrite: bool = True) -> None:
    """Give the complete, synced file ``tmp`` (in ``path``'s folder) the name ``path`` and the mode the umask asks
    for: ``os.replace`` with ``overwrite``, else exclusively (FileExistsError if ``path`` exists by then)."""
    tmp, path = Path(tmp), Path(path)
    os.chmod(tmp, default_file_mode())
    if overwrite:
        os.replace(tmp, path)
    else:
        _finish_exclusively(tmp, path)


@contextmanager
def atomic_path(path: PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it is synced and renamed onto ``path``.

    The temporary file (``.<name>.<pid>.<random>.tmp`` in the same folder, so the rename is atomic) is removed when
    the body raises, and ``path`` is then left as it was. Parent folders are created. The final file gets the mode
    the umask asks for (:func:`default_file_mode`), not the 0600 of a temporary file.

    Args:
        path (str | PathLike): The final file.
        overwrite (bool): Replace an existing ``path`` (``os.replace``). False finishes exclusively: the file is
            hard-linked to ``path``, which fails if ``path`` exists by then, even when another process created it
            while this one was writing. Default: True.

    Raises:
        FileExistsError: ``overwrite`` is False and ``path`` exists when the write finishes.

    Example::

        with atomic_path('out/model.pth') as tmp:
            torch.save(obj, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f'.{path.name}.{os.getpid()}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, 'rb') as file:
            os.fsync(file.fileno())
        finish_file(tmp, path, overwrite)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def staged_output_dir(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build an output folder in a hidden sibling and move it into place only when the block finishes.

    An interrupted or failed run therefore never leaves a folder at ``path`` that looks complete. Its partial
    sibling ``.<name>.partial-<pid>`` is removed on errors; one left by a killed run (its process is gone) is removed
    by the next run for the same ``path``, with a warning on the ``lffnet_arch`` logger. A concurrent run's partial
    folder (its process still running) is never touched.

    Args:
        path: The final folder (a patch folder or a ``.lmdb`` folder).
        overwrite: Replace an existing ``path``; without it an existing ``path`` raises FileExistsError.

    Yields:
        Path: The temporary folder to write into.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'Output {path} already exists; pass --overwrite to replace it.')
    _remove_stale_siblings(path)
    tmp = path.with_name(f'.{path.name}.partial-{os.getpid()}')
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not overwrite:
        # Exclusive: renaming a folder onto an existing one that holds anything fails, so a concurrent run that
        # finished first keeps its set, and this run says so instead of replacing it.
        try:
            os.rename(tmp, path)
        except OSError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(
                f'Output {path} was written by another run while this one worked; it is kept as that run left it '
                '(pass --overwrite to replace it).'
            ) from error
        return
    if not path.exists():
        os.replace(tmp, path)
        return
    old = path.with_name(f'.{path.name}.old-{os.getpid()}')
    os.replace(path, old)
    os.replace(tmp, path)
    if old.is_dir():
        shutil.rmtree(old)
    else:
        old.unlink()


def _remove_stale_siblings(path: Path) -> None:
    """Remove ``.<name>.partial-<pid>`` / ``.<name>.old-<pid>`` folders of ``path`` left by dead processes."""
    if not path.parent.is_dir():
        return
    for sibling in sorted(path.parent.glob(f'.{glob.escape(path.name)}.*-*')):
        pid = stale_owner(sibling)
        if pid is not None and sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)
            logging.getLogger('lffnet_arch').warning(
                'Removed %s, left by an interrupted run (process %d, no longer running).', sibling, pid
            )
