"""Process-pool helper shared by the data preparation scripts."""

from collections.abc import Iterator, Sequence
from multiprocessing import Pool
from typing import Callable, TypeVar

__all__ = ['run_jobs']

Item = TypeVar('Item')
Result = TypeVar('Result')


def run_jobs(
    job: Callable[[Item], Result], items: Sequence[Item], workers: int = 1, ordered: bool = True
) -> Iterator[Result]:
    """Yield ``job(item)`` for every item, in worker processes when ``workers`` > 1.

    Args:
        job (callable): One argument, one result. With ``workers`` > 1 it must be picklable: a module-level function
            or a ``functools.partial`` of one.
        items (Sequence): The inputs.
        workers (int): Worker processes; 1 runs everything in this process. At most ``len(items)`` are started.
            Default: 1.
        ordered (bool): Yield results in the order of ``items`` (``Pool.imap``); False yields each result as soon as
            it is ready (``Pool.imap_unordered``), which keeps all workers busy when jobs take different times.
            Default: True.

    Yields:
        The results. An exception raised by a job is raised here, and the pool is shut down.

    Raises:
        ValueError: ``workers`` is less than 1.
    """
    if workers < 1:
        raise ValueError(f'workers must be a positive integer, got {workers}.')
    if workers == 1 or len(items) <= 1:
        yield from map(job, items)
        return
    with Pool(min(workers, len(items))) as pool:
        yield from (pool.imap if ordered else pool.imap_unordered)(job, items)
