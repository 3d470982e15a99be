"""scripts/profile_training.py: phase timings and operation shares of real training steps, on a tiny demo set."""

from pathlib import Path

import pytest
import yaml

from scripts.measure import training_step

REPO = Path(__file__).resolve().parents[2]


def _tiny_options(tmp_path) -> Path:
    """The demo options at width 8 on a 2-scene demo set of 32 x 32 crops, without validation: tmp_path/opt.yml."""
    from lffnet_arch.data.simulator.demo import generate_demo_set

    data = generate_demo_set(tmp_path / 'demo', num_train=2, num_val=1, size=32, seed=1)
    opt = yaml.safe_load((REPO / 'options/train/LFFNet/train_LFFNet_demo.yml').read_text())
    opt['datasets']['train'].update(dataroot=str(data / 'Training'), gt_size=32, batch_size_per_gpu=2)
    opt['datasets'].pop('val')
    opt['network_g']['num_feat'] = 8
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
    return tmp_path / 'opt.yml'


def test_profile_of_two_configurations(tmp_path, capsys):
    _tiny_options(tmp_path)
    output = tmp_path / 'profile.md'
    args = ['--opt', str(tmp_path / 'opt.yml'), '--configs', 'contiguous', 'bf16', '--iters', '2', '--warmup', '1']
    assert training_step.main([*args, '--threads', '1', '--output', str(output)]) == 0
    text = output.read_text()
    assert text.strip() == capsys.readouterr().out.strip()
    rows = {line.split('|')[1].strip(): line for line in text.splitlines() if line.startswith('| ')}
    for config in ('contiguous', 'bf16'):
        cells = [float(c) for c in rows[config].strip('|').split('|')[1:]]
        # iterations / s is 1 / (seconds per iteration), which is the sum of the phases; all rounded to 3 decimals,
        # so the seconds shown lie within 0.0005 of the true ones (a wide bound on a fast machine: 1/0.030 vs 1/0.0305)
        seconds = cells[1]
        assert 1 / (seconds + 0.0005) - 0.0005 <= cells[0] <= 1 / max(seconds - 0.0005, 1e-9) + 0.0005
        assert abs(seconds - sum(cells[2:])) < 0.004 and all(c >= 0 for c in cells)
    shares = [float(line.split('|')[2].strip().rstrip('%')) for line in text.splitlines() if line.endswith('% |')]
    assert len(shares) == 2 * 5 and abs(sum(shares[:5]) - 100) < 0.5 and rows['convolution'] is not None
    assert training_step.main(['--opt', str(tmp_path / 'missing.yml')]) == 1
    assert 'missing.yml not found' in capsys.readouterr().err


def test_seconds_per_iteration_follows_the_options(tmp_path, monkeypatch):
    from lffnet_arch.commands.options import parse_options

    _tiny_options(tmp_path)
    parsed, _ = parse_options(str(tmp_path), is_train=True, argv=['-opt', str(tmp_path / 'opt.yml')])
    built = []
    build = training_step._build
    monkeypatch.setattr(training_step, '_build', lambda opt, config: built.append(config) or build(opt, config))
    seconds = training_step.seconds_per_iteration(parsed, iters=2, warmup=1)
    assert 0 < seconds < 60 and built == ['contiguous']
    parsed['train'].update(precision='bf16', memory_format='channels_last')
    training_step.seconds_per_iteration(parsed, iters=1, warmup=0)
    assert built[-1] == 'channels_last_bf16'
    parsed['train']['precision'] = 'fp16'
    with pytest.raises(ValueError, match="'fp16'"):
        training_step.seconds_per_iteration(parsed, iters=1, warmup=0)
