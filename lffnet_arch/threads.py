"""The CPU thread policy of training, testing and inference: how many threads compute, and how they wait.

On a machine that other work shares, OpenMP threads that spin while they wait for each other take the cores that
work needs, and a process that starts as many threads as the machine has cores, whatever it may use, fights itself.
The policy:

1. **Passive waiting, before torch loads** (``lffnet_cli.prefer_passive_waiting``, outside the package because
   importing the package imports torch): ``OMP_WAIT_POLICY=PASSIVE`` makes the OpenMP runtime that torch's CPU
   kernels run on sleep instead of spinning between parallel regions. It is read once, when that runtime starts, so
   the console commands and ``lffnet_arch/train.py`` / ``test.py`` set it before they import torch; a value already
   in the environment is kept.
2. **Intra-op threads from the cores this process may use** (:func:`usable_cores`): the CPU affinity mask (taskset,
   cgroups cpusets, container limits) and a cgroup CPU quota, not the machine's core count; divided among the
   processes of a ``torchrun`` launch on one machine.
3. **Data-loader workers that do not fight the compute threads**: PyTorch already runs each worker with one torch
   thread; :func:`limit_opencv_threads` gives OpenCV (which the capture simulator and the readers use) one thread
   there too, set in the training process before its workers fork.
"""

import math
import os
from pathlib import Path
from typing import Optional

__all__ = ['apply_thread_policy', 'cpu_flags', 'cpu_model', 'limit_opencv_threads', 'usable_cores']

CGROUP_CPU_MAX = Path('/sys/fs/cgroup/cpu.max')


def _cgroup_quota() -> Optional[float]:
    """CPUs allowed by a cgroup v2 quota (``cpu.max``: quota and period in microseconds), None without one."""
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == 'max':
        return None
    try:
        return max(float(quota) / float(period), 1.0)
    except (ValueError, ZeroDivisionError):
        return None


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask, capped by a cgroup CPU quota; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, math.floor(quota))
    return max(cores, 1)


def apply_thread_policy(threads: Optional[int] = None) -> int:
    """Set torch's intra-op threads: ``threads`` when given; else ``OMP_NUM_THREADS`` when the environment sets it
    (torch already follows it); else the usable cores divided among the processes a ``torchrun`` launch started on
    this machine (``LOCAL_WORLD_SIZE``). Returns torch's thread count afterwards."""
    import torch

    if threads is None and os.environ.get('OMP_NUM_THREADS'):
        return torch.get_num_threads()
    if threads is None:
        share = max(int(os.environ.get('LOCAL_WORLD_SIZE', '1') or 1), 1)
        threads = max(usable_cores() // share, 1)
    torch.set_num_threads(int(threads))
    return int(threads)


def limit_opencv_threads() -> None:
    """One OpenCV thread in this process and in the data-loader workers it forks afterwards (torch already runs one
    thread in each worker), so the workers and the compute threads share the cores instead of oversubscribing them.
    Called before the workers start: changing OpenCV's thread pool inside a forked worker can deadlock it."""
    import cv2

    cv2.setNumThreads(1)


def _cpuinfo_field(name: str) -> Optional[str]:
    """The first ``name`` line of ``/proc/cpuinfo`` (Linux), None where it cannot be read."""
    try:
        with open('/proc/cpuinfo', encoding='ascii', errors='replace') as file:
            return next((line.split(':', 1)[1].strip() for line in file if line.startswith(name)), None)
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU's model name, as benchmark tables print it ('unknown CPU' where it cannot be read)."""
    return _cpuinfo_field('model name') or 'unknown CPU'


def cpu_flags() -> set:
    """The CPU's feature flags (e.g. ``avx512_bf16``); empty where they cannot be read."""
    return set((_cpuinfo_field('flags') or '').split())
