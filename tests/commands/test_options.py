"""Every shipped options file parses with the safe loader and names only registered components."""

import re
import sys
from pathlib import Path

import pytest
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils.options import parse_options
from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

REPO = Path(__file__).resolve().parents[2]
OPTION_FILES = sorted((REPO / 'options').rglob('*.yml'))


def test_options_exist_for_every_variant():
    names = {path.stem for path in OPTION_FILES}
    for variant in (
        'LFFNet_Kalantari',
        'LFFNet_Kalantari_lmdb',
        'AHDRNet_Kalantari',
        'LFFNet_woDOConv_Kalantari',
        'LFFNet_DOConvRFFT_Kalantari',
        'LFFNet_demo',
    ):
        assert f'train_{variant}' in names and f'test_{variant}' in names, variant


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: p.name)
def test_options_file_builds(path, monkeypatch, tmp_path):
    is_train = path.parent.parent.name == 'train'
    monkeypatch.setattr(sys, 'argv', ['train.py' if is_train else 'test.py', '-opt', str(path)])
    opt, _ = parse_options(str(tmp_path), is_train=is_train)

    assert opt['name'] == path.stem.split('_', 1)[1]  # the file stem without train_ / test_
    assert opt['model_type'] in MODEL_REGISTRY
    for dataset_opt in opt['datasets'].values():
        assert dataset_opt['type'] in DATASET_REGISTRY
    net = build_network(opt['network_g'])
    assert net.num_exposure == 3 and net.ref_idx == 1
    for metric in opt['val']['metrics'].values():
        assert metric['type'] in METRIC_REGISTRY
    if is_train:
        for loss_opt in opt['train']['losses'].values():
            build_loss(dict(loss_opt))
        lr = opt['train']['optim_g']['lr']
        assert isinstance(lr, float) and 1e-4 <= lr <= 1e-3  # `!!float`, not the string PyYAML makes of 2e-4


# ---------------------------------------------------------------- lffnet_arch.commands.options: the safe parser


@pytest.mark.parametrize('path', OPTION_FILES[:3], ids=lambda p: p.name)
def test_safe_parser_gives_basicsr_options_with_paths_resolved(path, monkeypatch, tmp_path):
    from lffnet_arch.commands.options import parse_options as safe_parse_options

    is_train = path.parent.parent.name == 'train'
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', str(path)])
    expected, _ = parse_options(str(tmp_path), is_train=is_train)
    opt, _ = safe_parse_options(str(tmp_path), is_train=is_train, argv=['-opt', str(path)])
    for name, dataset in expected['datasets'].items():
        for key, value in dataset.items():
            if key.startswith('dataroot'):
                assert opt['datasets'][name][key] == str(tmp_path / value)  # relative to the run's root
            else:
                assert opt['datasets'][name][key] == value, key
    for section in ('network_g', 'val', 'train', 'logger', 'name', 'manual_seed', 'num_gpu', 'is_train', 'dist'):
        assert opt.get(section) == expected.get(section), section
    assert opt['path']['log'] == expected['path']['log']


def test_force_yml_documented_syntax():
    from lffnet_arch.commands.options import apply_overrides

    opt = {
        'name': 'x',
        'num_gpu': 'auto',
        'train': {'ema_decay': 0.999, 'scheduler': {'milestones': [1]}, 'optim_g': {'lr': 2e-4}},
        'val': {'metrics': {'psnr': {}}},
    }
    apply_overrides(
        opt,
        [
            'train:ema_decay=0.5',
            'train:scheduler:milestones=[10, 20]',
            'train:optim_g:lr=1e-4',
            'train:optim_g:betas=!!float 3',
            'num_gpu=0',
            'val:metrics=~',
            'name=none',
            'val:tile_size=64',
            'train:use_grad_clip=true',
        ],
    )
    assert opt['train'] == {
        'ema_decay': 0.5,
        'scheduler': {'milestones': [10, 20]},
        'optim_g': {'lr': 1e-4, 'betas': 3.0},
        'use_grad_clip': True,
    }
    assert opt['num_gpu'] == 0 and opt['val'] == {'metrics': None, 'tile_size': 64} and opt['name'] is None


@pytest.mark.parametrize(
    'entry,match',
    [
        ('name=[__import__("os").system("touch /tmp/x")]', 'name is a str in the options file; refusing a list'),
        ('name"]=1;__import__("os").system("x");x["a=1', 'option names are letters'),
        ('name=!!python/object/apply:os.system ["touch /tmp/x"]', 'not a plain YAML value'),
        ('train:nope:deeper=1', "no section 'train:nope'"),
        ('train', 'expected key1:key2=value'),
        ('train=1', 'train is a dict'),
        ('=1', 'option names are letters'),
    ],
)
def test_force_yml_hostile_or_malformed_entries_are_refused(entry, match):
    from lffnet_arch.commands.options import apply_overrides

    opt = {'name': 'x', 'train': {'ema_decay': 0.9}}
    with pytest.raises(ValueError, match=re.escape(match)):
        apply_overrides(opt, [entry])
    assert opt == {'name': 'x', 'train': {'ema_decay': 0.9}}


def test_nothing_in_the_parser_evaluates_code():
    import ast
    import inspect

    import lffnet_arch.commands.options
    import lffnet_arch.train

    for module in (lffnet_arch.commands.options, lffnet_arch.train):
        calls = {
            node.func.id
            for node in ast.walk(ast.parse(inspect.getsource(module)))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert not calls & {'eval', 'exec', 'compile'}, module.__name__
