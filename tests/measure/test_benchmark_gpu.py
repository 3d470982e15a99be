"""scripts/benchmark_gpu.py on the CPU at tiny sizes: both precisions, training rows, the time budget, errors."""

import importlib
import re

import pytest
import torch
from helpers import ROOT

TINY = ['--device', 'cpu', '--size', '16x24', '--warmup', '0', '--train_size', '16', '--train_batch', '1']


@pytest.fixture(scope='module')
def script():
    return importlib.import_module('scripts.measure.gpu')


def _rows(report: str, section: str) -> list:
    block = report.split(section, 1)[1].split('\n\n', 2)[1]
    return [line.split(' | ') for line in block.splitlines()[2:]]


def test_latency_and_training_tables_in_both_precisions(script, tmp_path):
    swinir = ROOT / 'options' / 'train' / 'SwinIR' / 'train_SwinIR_demo.yml'
    out = tmp_path / 'gpu.md'
    report = script.main(
        [*TINY, '--archs', 'LFFNet', 'LFFNet-folded', '--opt', f'SwinIR={swinir}', '--runs', '2', '--train_iters', '1',
         '--output', str(out)]
    )  # fmt: skip
    assert out.read_text() == report
    latency = _rows(report, '### Inference latency at 16 x 24')
    assert [(r[0].strip('| '), r[2]) for r in latency] == [
        (name, precision) for name in ('LFFNet', 'LFFNet-folded', 'SwinIR') for precision in ('fp32', 'bf16')
    ]
    assert all(r[3] == '2' for r in latency)  # the timed passes asked for fit the default budget
    training = _rows(report, '### Training throughput')
    assert [(r[0].strip('| '), r[1]) for r in training] == [
        (name, precision) for name in ('LFFNet', 'SwinIR') for precision in ('fp32', 'bf16')
    ]  # folded networks are inference-only
    assert all(float(r[5]) > 0 for r in training)
    with pytest.raises(FileExistsError, match='--overwrite'):
        script.main([*TINY, '--archs', 'LFFNet', '--output', str(out)])


def test_bracket_rows_fuse_a_synthetic_bracket(script):
    """--brackets: the shipped LFFNet fuses a synthetic bracket (0.05 MP here) in each precision; on the CPU, where
    no device memory is read, through the strip-wise pass under --bracket_memory (0.05 GB: strips of a few rows)."""
    report = script.main([*TINY, '--archs', 'LFFNet', '--runs', '1', '--no_train', '--brackets', '0.05',
                          '--bracket_memory', '0.05'])  # fmt: skip
    rows = _rows(report, '### Brackets through fuse (shipped LFFNet)')
    assert [r[1] for r in rows] == ['fp32', 'bf16']
    assert all(r[0].startswith('| 0.05 MP (256 x 192)') and r[2].startswith('strips of ') for r in rows)
    assert all(float(r[3]) > 0 for r in rows)


def test_budget_fits_or_skips_cases(script):
    report = script.main([*TINY, '--archs', 'LFFNet', 'LFFNet-folded', '--runs', '1000', '--budget_s', '1'])
    timed = [int(r[3]) for r in _rows(report, '### Inference latency')]
    assert timed and all(1 <= n < 1000 for n in timed)  # 1000 passes never fit in 1 s
    assert re.search(r'Skipped after the 1 s budget: .*LFFNet-folded', report)
    # 4 more passes of 2 s fit in 9 s: the 2 remaining warm-ups and 2 timed ones.
    assert script._fitted_runs(first_seconds=2.0, runs=10, warmup=3, seconds_left=9.0) == (2, 2)
    assert script._fitted_runs(first_seconds=2.0, runs=10, warmup=3, seconds_left=0.5) == (1, 0)


def test_errors(script):
    with pytest.raises(ValueError, match='neither a registered architecture'):
        script.main([*TINY, '--archs', 'NoSuchNet'])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            script.main(['--archs', 'LFFNet'])
    with pytest.raises(SystemExit):
        script.main(['--runs', '0'])
