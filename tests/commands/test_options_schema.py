"""Every options file is checked when it is read: unknown keys (with "did you mean"), types, ranges and combinations
are refused with the option's full path, before any work."""

import copy
from pathlib import Path

import pytest
import yaml

from lffnet_arch.commands.options import apply_overrides, parse_options
from lffnet_arch.commands.options_schema import check_options
from lffnet_arch.compat import safe_ordered_yaml
from lffnet_arch.schema import OptionsError

REPO = Path(__file__).resolve().parents[2]
OPTION_FILES = sorted((REPO / 'options').rglob('*.yml'))
REALHDR = REPO / 'options/train/LFFNet/train_LFFNet_RealHDR.yml'


def _read(path: Path) -> dict:
    return yaml.load(path.read_text(encoding='utf-8'), Loader=safe_ordered_yaml()[0])


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: p.name)
def test_every_shipped_options_file_passes_the_check(path):
    check_options(_read(path), path.parent.parent.name == 'train', str(path))


@pytest.mark.parametrize(
    'override, message',
    [
        # misspelled keys are errors, with the nearest known key
        ('datasets:train:num_sample=1000', r'datasets:train:num_sample: unknown option \(did you mean num_samples\?\)'),
        ('train:precison=bf16', r'train:precison: unknown option \(did you mean precision\?\)'),
        ('datasets:train:style=kalantari', r'did you mean styles\?'),
        ('manuel_seed=3', r'manuel_seed: unknown option \(did you mean manual_seed\?\)'),
        ('val:val_frq=100', r'did you mean val_freq\?'),
        ('logger:save_checkpoint_frq=100', r'did you mean save_checkpoint_freq\?'),
        ('network_g:num_fet=16', r'network_g:num_fet: unknown option \(did you mean num_feat\?\)'),
        ('train:losses:l1:loss_wieght=2', r'train:losses:l1:loss_wieght: unknown option'),
        # types and ranges
        ('network_g:ref_idx=1.7', r'network_g:ref_idx: expected an integer or ~ \(null\), got 1.7'),
        ('network_g:num_exposure=2.5', r'network_g:num_exposure: expected an integer, got 2.5'),
        ('datasets:train:include=venice', r'datasets:train:include: expected a list'),
        ('datasets:train:gamma=0', r'datasets:train:gamma: expected a number > 0, got 0'),
        ('datasets:val_handheld:scoring=scale', r'scoring: expected one of direct, scaled'),
        ('train:optim_g:lr=fast', r'train:optim_g:lr: expected a number'),
        ('train:scheduler:type=Cosine', r'train:scheduler:type: expected MultiStepLR or CosineAnnealingRestartLR'),
        # combinations
        ('train:total_iter=7000', r'train:scheduler:periods: they end at iteration 6000, before total_iter 7000'),
    ],
)
def test_mistakes_are_refused_with_the_options_full_path(override, message):
    opt = _read(REALHDR)
    apply_overrides(opt, [override])
    with pytest.raises(OptionsError, match=message):
        check_options(opt, True, str(REALHDR))


def test_free_form_sections_and_missing_training_keys():
    opt = _read(REALHDR)
    apply_overrides(opt, ['logger:wandb:entity=lab'])  # the logger's own section is free-form
    check_options(opt, True, 'x.yml')
    missing = copy.deepcopy(opt)
    del missing['logger']['save_checkpoint_freq']
    with pytest.raises(OptionsError, match='logger:save_checkpoint_freq: missing'):
        check_options(missing, True, 'x.yml')
    check_options(missing, False, 'x.yml')  # testing saves nothing


def test_parse_options_checks_force_yml_before_any_work(tmp_path):
    with pytest.raises(OptionsError, match=r'Options file .*train_LFFNet_RealHDR.yml: datasets:train:num_sample'):
        parse_options(str(tmp_path), True, ['-opt', str(REALHDR), '--force_yml', 'datasets:train:num_sample=5'])
    assert not (tmp_path / 'experiments').exists()
