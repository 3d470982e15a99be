"""Brackets shared among the processes of a ``torchrun`` launch: each process fuses every N-th bracket, on its own
GPU or its own share of the CPU cores, and one summary gathers what all of them did.

``torchrun`` starts the processes, on one machine or many, and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``LOCAL_WORLD_SIZE``; the gathering goes through ``torch.distributed`` (gloo on the CPU, NCCL on GPUs). Outside
``torchrun`` there is one process and nothing is initialised. The outputs themselves need no coordination: every
bracket belongs to exactly one process, and every file is finished exclusively.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ['Ranks', 'current_ranks', 'finish', 'gather', 'init', 'shard']


@dataclass(frozen=True)
class Ranks:
    """This process's place in the launch."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def lead(self) -> bool:
        """The process that prints what is said once (the grouping, the summary)."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == '':
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f'Environment variable {name}={value!r}: expected an integer (set by torchrun).') from None


def current_ranks() -> Ranks:
    """The launch ``torchrun`` describes in the environment; one process without it.

    Raises:
        ValueError: The variables are not integers or are inconsistent (a rank outside the world).
    """
    world = _env_int('WORLD_SIZE', 1)
    ranks = Ranks(
        rank=_env_int('RANK', 0),
        world_size=world,
        local_rank=_env_int('LOCAL_RANK', 0),
        local_world_size=_env_int('LOCAL_WORLD_SIZE', world),
    )
    if not (world >= 1 and 0 <= ranks.rank < world and 0 <= ranks.local_rank < ranks.local_world_size):
        raise ValueError(f'Inconsistent torchrun environment: {ranks}; expected 0 <= RANK < WORLD_SIZE.')
    return ranks


def shard(items: Sequence, ranks: Ranks) -> list:
    """The items this process handles: every ``world_size``-th from its rank, so the shares differ by one at most."""
    return list(items[ranks.rank :: ranks.world_size])


def init(ranks: Ranks, device_type: str) -> None:
    """Join the launch's process group (once), gloo on the CPU and NCCL on CUDA; nothing for one process."""
    if not ranks.distributed:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group('nccl' if device_type == 'cuda' else 'gloo')


def gather(value: Any, ranks: Ranks) -> Optional[list]:
    """Every process's ``value`` (picklable), in rank order, on every process; ``[value]`` for one process."""
    if not ranks.distributed:
        return [value]
    import torch.distributed as dist

    gathered: list = [None] * ranks.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def finish(ranks: Ranks) -> None:
    """Leave the process group after the last collective."""
    if ranks.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
