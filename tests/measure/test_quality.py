"""benchmark.quality (scripts/evaluate_quality.py) on a Kalantari-layout test folder written into tmp_path."""

import math

import numpy as np
import pytest
import torch

from lffnet_arch.archs import LFFNet
from lffnet_arch.data.layout import list_scenes, read_scene
from lffnet_arch.data.simulator.demo import demo_bracket
from lffnet_arch.data.simulator.simulated_set import write_bracket
from lffnet_arch.hdr_input import MU
from scripts.measure import quality


@pytest.fixture(scope='module')
def test_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp('quality') / 'Test'
    for index in range(2):
        write_bracket(folder / f'scene_{index}', demo_bracket(48, seed=index))
    return folder


def table(markdown: str) -> tuple:
    """Header and rows of the first markdown table in ``markdown``."""
    lines = [line for line in markdown.splitlines() if line.startswith('|')]
    cells = [[c.strip() for c in line.strip('|').split('|')] for line in lines]
    return cells[0], cells[2:]


def psnr_mu_by_hand(x, y):
    tonemap = lambda v: np.log(1 + MU * np.clip(v.astype(np.float64), 0, 1)) / np.log(1 + MU)  # noqa: E731
    return 10 * math.log10(1 / np.mean((tonemap(x) - tonemap(y)) ** 2))


def test_test_set_table_with_a_network(test_set, tmp_path, capsys):
    checkpoint = tmp_path / 'lffnet.pth'
    torch.save({'params': LFFNet(num_feat=8).state_dict()}, checkpoint)
    output = tmp_path / 'quality.md'
    args = ['--test_set', str(test_set), '--model', f'LFFNet={checkpoint}', '--output', str(output)]
    assert quality.main(args) == 0
    report = output.read_text(encoding='utf-8')
    assert report.strip() == capsys.readouterr().out.strip()
    assert f'### Quality on {test_set} (2 scenes, direct)' in report
    headers, rows = table(report)
    columns = ['PSNR-mu', 'PSNR-L', 'SSIM-mu', 'PU21-PSNR', 'PU21-SSIM']
    columns += ['ColorVideoVDP (JOD)'] if quality.cvvdp_available() else []
    assert headers == ['Method', *columns, '< ref', 's / scene']
    assert [r[0].replace(' (scaled)', '') for r in rows] == [*quality.classical_methods(1), 'LFFNet']
    assert all(math.isfinite(float(c)) for r in rows for c in r[1 : len(columns) + 1])


def test_a_shipped_model_by_name(test_set, tmp_path, monkeypatch, capsys):
    from lffnet_arch.deploy import pretrained

    monkeypatch.setattr(pretrained, 'WEIGHTS_DIR', tmp_path)
    torch.save({'params': LFFNet(num_feat=8, ref_skip=True).state_dict()}, tmp_path / pretrained.PRETRAINED['LFFNet'])
    assert quality.main(['--test_set', str(test_set), '--model', 'LFFNet', '--max_scenes', '1']) == 0
    _, rows = table(capsys.readouterr().out)
    assert rows[-1][0] == 'LFFNet'
    # An untrained network with the reference skip is the reference frame itself.
    assert rows[-1][1:6] == rows[0][1:6]
    assert quality.main(['--test_set', str(test_set), '--model', 'AHDRNet']) == 1
    assert "no shipped weights for 'AHDRNet'" in capsys.readouterr().err
    assert quality.main(['--test_set', str(test_set), '--model', 'SwinIR']) == 1
    assert "--model expects NAME=CHECKPOINT or a shipped model ['AHDRNet'" in capsys.readouterr().err


def test_reference_frame_scored_directly_as_by_hand(test_set):
    scene_dirs = list_scenes(test_set)
    methods = quality.classical_methods(1)
    summary, count = quality.evaluate_scenes(quality.folder_scenes(scene_dirs), 2, 'test', methods, False)
    assert count == 2 and list(summary) == list(methods)
    hand = []
    for scene_dir in scene_dirs:
        scene = read_scene(scene_dir, 3)
        hand.append(psnr_mu_by_hand(scene.ldrs[1].astype(np.float64) ** 2.2 / scene.exposures[1], scene.gt))
    means, below, _, known_scale, scenes = summary['reference frame']
    assert below == 0 and scenes == []
    assert means['psnr_mu'] == pytest.approx(np.mean(hand), abs=1e-4) and known_scale
    assert set(means) == set(quality.METRICS)
    # max_scenes keeps the first scenes; networks fusing different numbers of frames are refused.
    lines = quality.evaluate_test_set(test_set, {}, max_scenes=1)
    assert '(1 scenes, direct)' in lines[0]
    with pytest.raises(ValueError, match='different numbers of frames'):
        quality.evaluate_test_set(test_set, {'a': LFFNet(num_feat=8), 'b': LFFNet(num_feat=8, num_exposure=2)})


def test_a_failing_method_is_named_with_its_scene(test_set):
    methods = quality.classical_methods(1)
    methods['broken'] = (lambda frames, times, scene=None: np.full_like(frames[0], np.nan), True)
    scene_dirs = list_scenes(test_set)
    with pytest.raises(ValueError, match=r"^test, scene_0, method 'broken': a method produced NaN or Inf"):
        quality.evaluate_scenes(quality.folder_scenes(scene_dirs), 2, 'test', methods, False)


def test_scenes_below_the_reference_frame_are_listed(test_set):
    reference = quality.classical_methods(1)['reference frame'][0]
    methods = {
        'reference frame': (reference, True),
        'darker': (lambda frames, times, scene=None: 0.5 * reference(frames, times, scene), True),
    }
    summary, _ = quality.evaluate_scenes(quality.folder_scenes(list_scenes(test_set)), 2, 'test', methods, False)
    means, below, _, _, scenes = summary['darker']
    assert below == 2 and [label for label, _, _ in scenes] == ['scene_0', 'scene_1']
    assert all(dp < -1 for _, dp, _ in scenes)
    lines = quality.format_table('test', summary, 2, False, ['darker'])
    listing = next(line for line in lines if line.startswith('darker below the reference frame'))
    assert f'scene_0: {scenes[0][1]:+.2f} dB' in listing and 'scene_1' in listing
    assert not any(line.startswith('reference frame below') for line in lines)


def test_cvvdp_column_skipped_with_a_note(monkeypatch):
    monkeypatch.delitem(quality.METRICS, 'cvvdp', raising=False)
    notes = quality.metric_notes()
    assert any(line.startswith('- ColorVideoVDP column skipped') for line in notes)
    summary = {'reference frame': ({m: 1.0 for m in quality.METRICS}, 0, 0.0, True, [])}
    headers, _ = table('\n'.join(quality.format_table('t', summary, 1, False)))
    assert 'ColorVideoVDP (JOD)' not in headers and 'PU21-SSIM' in headers


def test_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        quality.main([])
    assert quality.main(['--test_set', str(tmp_path / 'missing')]) == 1
    assert 'missing' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        quality.main(['--test_set', str(tmp_path), '--max_scenes', '0'])
    assert '--max_scenes must be a positive number of scenes, got 0' in capsys.readouterr().err


def test_picture_of_a_validation_scene(tmp_path):
    """--picture: inputs on top; the best OpenCV merge, each network and the GT below, captioned with PSNR-mu."""
    import cv2
    import yaml

    from lffnet_arch.data.simulator.demo import DEMO_RADIANCE

    options = {
        'name': 'tiny',
        'network_g': {'type': 'LFFNet', 'ref_idx': 1},
        'datasets': {
            'val_sim': {
                'name': 'sim',
                'type': 'SimulatedBracketDataset',
                'dataroot': str(DEMO_RADIANCE),
                'styles': ['handheld'],
                'scoring': 'scaled',
                'gt_size': 48,
                'num_samples': 2,
                'seed': 1,
            }
        },
    }
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(options))
    checkpoint = tmp_path / 'net.pth'
    torch.save({'params': LFFNet(num_feat=8).state_dict()}, checkpoint)
    picture = tmp_path / 'picture.png'
    argv = ['--opt', str(tmp_path / 'opt.yml'), '--model', f'tiny={checkpoint}', '--picture', 'val_sim:1', str(picture)]
    assert quality.main(argv) == 0
    image = cv2.imread(str(picture))
    zoom = -(-256 // 48)
    assert image.shape == (2 * (48 * zoom + 24), 3 * 48 * zoom, 3)  # inputs; OpenCV, the network, GT
    assert quality.main([*argv[:-2], 'val_nope:0', str(tmp_path / 'x.png')]) == 1


def test_bad_picture_output_and_options_are_refused_before_any_evaluation(tmp_path, capsys, monkeypatch):
    import yaml

    from lffnet_arch.data.simulator.demo import DEMO_RADIANCE

    dataset = {'name': 'sim', 'type': 'SimulatedBracketDataset', 'dataroot': str(DEMO_RADIANCE), 'gt_size': 32}
    options = {'name': 'tiny', 'network_g': {'type': 'LFFNet'}, 'datasets': {'val_sim': {**dataset, 'num_samples': 2}}}
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(options))
    monkeypatch.setattr(quality, 'evaluate_scenes', lambda *a, **k: pytest.fail('evaluated before the check'))
    opt = ['--opt', str(tmp_path / 'opt.yml')]
    assert quality.main([*opt, '--picture', 'val_sim:2', str(tmp_path / 'p.png')]) == 1
    assert '--picture val_sim:2: val_sim has 2 scenes, numbered 0 to 1' in capsys.readouterr().err
    assert quality.main([*opt, '--output', str(tmp_path)]) == 1
    assert f'--output {tmp_path} is a folder; expected a file' in capsys.readouterr().err
    assert quality.main([*opt, '--output', str(tmp_path / 'opt.yml' / 'q.md')]) == 1
    assert 'which is a file' in capsys.readouterr().err
    (tmp_path / 'evil.yml').write_text('name: !!python/object/apply:os.system ["echo ran"]\n')
    assert quality.main(['--opt', str(tmp_path / 'evil.yml')]) == 1
    assert 'is not plain YAML (tags such as !!python are refused)' in capsys.readouterr().err
    options['datasets']['val_sim']['num_sample'] = 4
    (tmp_path / 'typo.yml').write_text(yaml.safe_dump(options))
    assert quality.main(['--opt', str(tmp_path / 'typo.yml')]) == 1
    assert 'datasets:val_sim:num_sample: unknown option (did you mean num_samples?)' in capsys.readouterr().err


def test_oracle_rows_feed_the_true_response_and_calibrated_sets_say_so(tmp_path, capsys):
    """A simulated set with oracle: true gets the reference frame and each network fed the camera's true inverse
    response beside the set's own linearisation (here: calibrated from each bracket)."""
    import yaml

    from lffnet_arch.data.simulator.demo import DEMO_RADIANCE

    dataset = {
        'name': 'heldout',
        'type': 'SimulatedBracketDataset',
        'dataroot': str(DEMO_RADIANCE),
        'styles': {'handheld': {'responses': ['vlog']}},
        'response': 'auto',
        'oracle': True,
        'scoring': 'scaled',
        'gt_size': 48,
        'num_samples': 2,
    }
    options = {'name': 'tiny', 'network_g': {'type': 'LFFNet'}, 'datasets': {'val_heldout': dataset}}
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(options))
    checkpoint = tmp_path / 'net.pth'
    torch.save({'params': LFFNet(num_feat=8, ref_skip=True).state_dict()}, checkpoint)
    assert quality.main(['--opt', str(tmp_path / 'opt.yml'), '--model', f'tiny={checkpoint}']) == 0
    _, rows = table(capsys.readouterr().out)
    names = [r[0].replace(' (scaled)', '') for r in rows]
    assert names[:2] == ['reference frame', 'reference frame (true response)']
    assert names[-2:] == ['tiny', 'tiny (true response)']
    by_name = {r[0].replace(' (scaled)', ''): r for r in rows}
    # An untrained network with the reference skip returns the reference frame it is fed.
    assert by_name['tiny (true response)'][1] == by_name['reference frame (true response)'][1]
    assert by_name['tiny'][1] == by_name['reference frame'][1]
