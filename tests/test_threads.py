"""The CPU thread policy: threads from the cores this process may use, shared among torchrun's local processes,
OMP_NUM_THREADS respected, passive OpenMP waiting set before torch loads, one OpenCV thread per data-loader worker."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

from lffnet_arch import threads

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_threads():
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


def test_usable_cores_follow_the_affinity_mask_and_a_cgroup_quota(tmp_path, monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, 'CGROUP_CPU_MAX', tmp_path / 'missing')
    assert threads.usable_cores() == affinity
    quota = tmp_path / 'cpu.max'
    monkeypatch.setattr(threads, 'CGROUP_CPU_MAX', quota)
    quota.write_text('max 100000\n')
    assert threads.usable_cores() == affinity
    quota.write_text('50000 100000\n')  # half a CPU: at least one thread
    assert threads.usable_cores() == 1
    quota.write_text(f'{(affinity + 3) * 100000} 100000\n')  # more than the mask allows: the mask wins
    assert threads.usable_cores() == affinity


def test_threads_are_shared_among_a_launchs_local_processes(monkeypatch):
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(threads, 'usable_cores', lambda: 8)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '3')
    assert threads.apply_thread_policy() == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '16')
    assert threads.apply_thread_policy() == 1
    assert threads.apply_thread_policy(3) == 3 and torch.get_num_threads() == 3  # an explicit count wins
    torch.set_num_threads(1)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.delenv('LOCAL_WORLD_SIZE')
    assert threads.apply_thread_policy() == 1  # the user's OMP_NUM_THREADS stands


def test_opencv_gets_one_thread_before_the_workers_fork():
    cv2.setNumThreads(4)
    threads.limit_opencv_threads()
    assert cv2.getNumThreads() == 1


SPY = """
import builtins, os, runpy, sys
seen = []
real_import = builtins.__import__


def spy(name, *args, **kwargs):  # the wait policy at the moment torch is first imported
    if name.split('.')[0] == 'torch' and not seen:
        seen.append(os.environ.get('OMP_WAIT_POLICY'))
    return real_import(name, *args, **kwargs)


builtins.__import__ = spy
sys.argv = ['train', '--help']
try:
    if sys.argv_mode == 'script':
        runpy.run_path(sys.script, run_name='__main__')
    else:
        import lffnet_cli
        getattr(lffnet_cli, sys.argv_mode)()
except SystemExit:
    pass
print(seen[0] if seen else 'torch never imported')
"""


@pytest.mark.parametrize('mode', ['train', 'test', 'script'])
def test_passive_waiting_is_set_before_torch_loads_unless_the_environment_says_otherwise(mode):
    code = SPY.replace('sys.argv_mode', repr(mode)).replace('sys.script', repr(str(REPO / 'lffnet_arch' / 'train.py')))
    env = {k: v for k, v in os.environ.items() if k != 'OMP_WAIT_POLICY'}
    result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == 'PASSIVE', result.stdout + result.stderr
    env['OMP_WAIT_POLICY'] = 'ACTIVE'
    result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == 'ACTIVE', result.stdout + result.stderr
