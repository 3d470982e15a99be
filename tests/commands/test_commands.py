"""The command-line layer: the ``lffnet`` command reaches every command, the shared flags mean the same everywhere,
and renamed flags keep their old spelling."""

import argparse
import importlib
from pathlib import Path

import pytest

from lffnet_arch.commands import arguments, lffnet

DATA_AND_MODEL_COMMANDS = [name for name in lffnet.COMMANDS if name not in ('train', 'test')]


def _help(name: str, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        lffnet.main([name, '--help'])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_lffnet_lists_every_command_and_refuses_unknown_ones(capsys):
    assert lffnet.main(['--help']) == 0
    listing = capsys.readouterr().out
    for name in lffnet.COMMANDS:
        assert f'  {name} ' in listing
    assert lffnet.main(['infere']) == 2
    assert "unknown command 'infere'" in capsys.readouterr().err
    assert lffnet.main([]) == 2


@pytest.mark.parametrize('name', DATA_AND_MODEL_COMMANDS)
def test_every_command_takes_output_and_overwrite_from_the_shared_vocabulary(name, capsys):
    text = ' '.join(_help(name, capsys).split())
    assert text.startswith(f'usage: lffnet {name} ')
    assert '--output OUTPUT' in text
    assert 'if it exists (default: refuse)' in text  # arguments.add_overwrite's wording, not a copy


@pytest.mark.parametrize(
    'name, module',
    [
        ('fold', 'lffnet_arch.commands.fold_doconv'),
        ('export-onnx', 'lffnet_arch.commands.export_onnx'),
        ('convert-ahdrnet', 'lffnet_arch.commands.convert_ahdrnet'),
    ],
)
def test_model_conversion_takes_checkpoint_and_its_former_spelling_input(name, module, capsys):
    parse_args = importlib.import_module(module).parse_args
    for flag in ('--checkpoint', '--input'):
        args = parse_args([flag, 'net.pth', '--output', 'out.pth'])
        assert args.checkpoint == Path('net.pth')
    assert '--input is an alias' in ' '.join(_help(name, capsys).split())


def test_inference_takes_the_shared_network_flags():
    parser = importlib.import_module('lffnet_arch.commands.inference').build_parser()
    args = parser.parse_args(['--input', 'a', '--output', 'b', '--model', 'AHDRNet', '--tile', 'none'])
    assert args.model == 'AHDRNet' and args.checkpoint is None and args.tile is None
    with pytest.raises(SystemExit):
        parser.parse_args(['--input', 'a', '--output', 'b', '--device', 'tpu7'])


@pytest.mark.parametrize('value', ['0', '-1', 'two', '1.5'])
def test_positive_integers_and_tiles_are_checked_when_parsed(value):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(value)):
        arguments.positive_int(value)
    with pytest.raises(argparse.ArgumentTypeError, match='"auto" or "none"'):
        arguments.tile_arg(value)
    assert arguments.tile_arg('auto') == 'auto' and arguments.tile_arg('64') == 64


@pytest.mark.parametrize('value, ok', [('cpu', True), ('cuda', True), ('cuda:1', True), ('tpu7', False), ('', False)])
def test_devices_are_checked_when_parsed(value, ok):
    if ok:
        assert arguments.device_arg(value) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError, match='cpu, cuda or cuda:N'):
            arguments.device_arg(value)
