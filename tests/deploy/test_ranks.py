"""A shoot shared among the processes of a torchrun launch: each bracket fused by exactly one process, the existing
exclusive writes, one summary of all, an exit code that says whether any bracket failed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_inference import _options, save_net
from test_shoot import _shoot

from lffnet_arch.archs import LFFNet
from lffnet_arch.deploy.ranks import Ranks, current_ranks, shard

REPO = Path(__file__).resolve().parents[2]


def test_shares_cover_every_bracket_once_and_differ_by_one_at_most():
    items = list(range(7))
    shares = [shard(items, Ranks(rank=r, world_size=3)) for r in range(3)]
    assert sorted(x for share in shares for x in share) == items
    assert [len(s) for s in shares] == [3, 2, 2]
    assert shard(items, Ranks()) == items


def test_the_launch_is_read_from_torchruns_environment(monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE'):
        monkeypatch.delenv(name, raising=False)
    assert current_ranks() == Ranks() and not current_ranks().distributed
    monkeypatch.setenv('RANK', '3')
    monkeypatch.setenv('WORLD_SIZE', '4')
    monkeypatch.setenv('LOCAL_RANK', '1')
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    assert current_ranks() == Ranks(3, 4, 1, 2) and not current_ranks().lead
    monkeypatch.setenv('RANK', '4')
    with pytest.raises(ValueError, match='Inconsistent torchrun environment'):
        current_ranks()
    monkeypatch.setenv('RANK', 'two')
    with pytest.raises(ValueError, match=r"RANK='two': expected an integer"):
        current_ranks()


def test_torchrun_shares_a_shoot_between_two_cpu_processes(tmp_path):
    _shoot(tmp_path / 'card', brackets=4)
    (tmp_path / 'card' / 'IMG_0004.jpg').write_bytes(b'not a jpeg')  # the second bracket fails
    checkpoint = save_net(LFFNet(num_feat=8).eval(), tmp_path / 'net.pth')
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']
    command += [str(REPO / 'scripts' / 'inference_hdr.py'), '--input', str(tmp_path / 'card')]
    command += ['--output', str(tmp_path / 'out'), '--checkpoint', str(checkpoint), '--opt', str(_options(tmp_path))]
    command += ['--align', 'none', '--response', 'srgb', '--device', 'cpu']
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode != 0, result.stdout + result.stderr  # a bracket failed: the launch says so
    assert result.stdout.count('Summary:') == 1, result.stdout
    assert 'Summary: 3 fused, 0 skipped (outputs present), 1 failed.' in result.stdout
    assert 'process 1 of 2: 2 bracket(s) on cpu with 1 thread(s)' in result.stdout + result.stderr
    assert 'process 2 of 2: 2 bracket(s) on cpu with 1 thread(s)' in result.stdout + result.stderr
    written = sorted(p.name for p in (tmp_path / 'out').iterdir())
    assert [n for n in written if n.endswith('.exr')] == ['IMG_0000.exr', 'IMG_0006.exr', 'IMG_0009.exr']
