"""Every shipped options file parses with the safe loader and names only registered components."""

import sys
from pathlib import Path

import pytest
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils.options import parse_options
from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

REPO = Path(__file__).resolve().parents[1]
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
