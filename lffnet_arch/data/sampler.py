"""What ``lffnet_arch/train.py`` needs for exact resume: a sampler resumable mid-epoch that tells datasets the
epoch, and the random generator states of the process in a form ``torch.load(weights_only=True)`` reads."""

import random
from typing import Any, Union

import numpy as np
import torch
from basicsr.data.data_sampler import EnlargedSampler

__all__ = ['EpochSampler', 'restore_rng_state', 'rng_state']


class EpochSampler(EnlargedSampler):
    """:class:`basicsr.data.data_sampler.EnlargedSampler` that can start mid-epoch and tells datasets the epoch.

    The order of an epoch is BasicSR's (a permutation seeded by the epoch, the enlarged index taken modulo the
    dataset length, every ``num_replicas``-th index for this rank). Datasets whose class sets ``takes_epoch = True``
    receive ``(epoch, index)`` tuples and derive their random draws from them, so a sample does not depend on which
    worker process draws it, workers may persist across epochs, and a resumed run draws what the interrupted one
    would have; other datasets receive plain ints.

    Args:
        dataset (Dataset): The training set.
        num_replicas (int): Processes in the run (world size).
        rank (int): This process's rank.
        ratio (int): ``dataset_enlarge_ratio``. Default: 1.
    """

    def __init__(self, dataset, num_replicas: int, rank: int, ratio: int = 1) -> None:
        super().__init__(dataset, num_replicas, rank, ratio)
        self.with_epoch = bool(getattr(dataset, 'takes_epoch', False))
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its beginning."""
        self.epoch = epoch
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Start epoch ``epoch`` at its ``start``-th index (this rank's), e.g. after ``start // batch`` batches."""
        self.epoch = epoch
        self.start = start

    def __iter__(self):
        indices = list(super().__iter__())[self.start :]
        if self.with_epoch:
            return iter([(self.epoch, index) for index in indices])
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples - self.start


def rng_state() -> dict[str, Any]:
    """This process's random generator states (Python, NumPy, torch and CUDA when present), for a training state.

    Every entry is made of tensors, numbers, strings and tuples, so ``torch.load(weights_only=True)`` reads it.
    """
    _, key, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state = {
        'python': random.getstate(),
        'numpy': {
            'key': torch.from_numpy(key.astype(np.int64)),
            'pos': int(pos),
            'has_gauss': int(has_gauss),
            'cached_gaussian': float(cached_gaussian),
        },
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _as_python_state(value: Union[list, tuple]) -> tuple:
    return tuple(_as_python_state(v) if isinstance(v, (list, tuple)) else v for v in value)


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the generators from :func:`rng_state`'s output (CUDA only when both the state and this process have it)."""
    random.setstate(_as_python_state(state['python']))
    numpy_state = state['numpy']
    key = numpy_state['key'].numpy().astype(np.uint32)
    np.random.set_state(('MT19937', key, numpy_state['pos'], numpy_state['has_gauss'], numpy_state['cached_gaussian']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
