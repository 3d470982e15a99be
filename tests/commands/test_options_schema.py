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


def test_what_basicsr_accepts_passes_and_what_it_cannot_build_is_refused():
    opt = _read(REALHDR)
    apply_overrides(opt, ['train:total_iter=6e3', 'logger:print_freq=5e1'])  # integral floats, as YAML writes 6e3
    opt['val']['metrics'] = None  # validation without metrics
    check_options(opt, True, 'x.yml')
    real_esrgan = {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3}  # registered as *_basicsr
    check_options({'name': 'x', 'model_type': 'RealESRGANModel', 'network_g': real_esrgan}, False, 'x.yml')
    niqe = {**opt, 'val': {'val_freq': 10, 'metrics': {'niqe': {'type': 'calculate_niqe', 'crop_border': 4}}}}
    check_options(niqe, True, 'x.yml')
    for override, message in [
        ('train:total_iter=6000.5', r'train:total_iter: expected an integer'),
        ('train:optim_g:type=AdamW', r'train:optim_g:type: expected Adam \(the optimizer BasicSR 1.4.2 builds\)'),
    ]:
        bad = _read(REALHDR)
        apply_overrides(bad, [override])
        with pytest.raises(OptionsError, match=message):
            check_options(bad, True, 'x.yml')
    scalar = _read(REALHDR)
    scalar['train']['scheduler']['periods'] = 6000  # written without brackets in the file
    with pytest.raises(OptionsError, match=r'train:scheduler:periods: expected a list, got 6000'):
        check_options(scalar, True, 'x.yml')


def test_a_relative_response_file_is_read_against_the_run_root(tmp_path):
    from lffnet_arch.response import Response

    root = tmp_path / 'root'
    (root / 'calib').mkdir(parents=True)
    Response.srgb().to_json(root / 'calib' / 'camera.json')
    opt = yaml.safe_load((REPO / 'options/test/LFFNet/test_LFFNet_demo.yml').read_text())
    opt['datasets']['test_1']['response'] = 'calib/camera.json'
    path = tmp_path / 'opt.yml'
    path.write_text(yaml.safe_dump(opt))
    parsed, _ = parse_options(str(root), False, ['-opt', str(path)])
    assert parsed['datasets']['test_1']['response'] == str(root / 'calib' / 'camera.json')
