"""Checkpoint helpers shared by the conversion, folding and export tools.

Checkpoints use BasicSR's format, ``{'params': state_dict}`` plus ``{'params_ema': ...}`` when EMA is on; tools read
``params_ema`` when present, else ``params``, else accept a bare state dict (as the official AHDRNet code writes).
Architecture options come from an options YAML's ``network_g`` or are inferred from the state dict's key names and
shapes (:func:`infer_network_options`).
"""
import os
import re
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Union

import torch
import yaml
from torch import nn

__all__ = [
    'PARAM_KEYS', 'build_network', 'convert_official_ahdrnet_state_dict', 'infer_network_options', 'load_checkpoint',
    'load_network', 'load_network_options', 'load_params', 'official_ahdrnet_keys', 'save_checkpoint',
    'select_params', 'strip_prefix'
]

PathLike = Union[str, os.PathLike]

# Preference order of the weight sets in a BasicSR checkpoint.
PARAM_KEYS = ('params_ema', 'params')
NETWORK_TYPES = ('LFFNet', 'AHDRNet')


def load_checkpoint(path: PathLike) -> dict:
    """Load a checkpoint file on the CPU with ``torch.load(weights_only=True)`` (no arbitrary unpickling).

    Args:
        path (str | PathLike): ``.pth`` file.

    Returns:
        dict: The stored dictionary, e.g. ``{'params': ..., 'params_ema': ...}`` or a bare state dict.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not a dictionary of tensors (e.g. a pickled module or another format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint {path} not found.')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, ... depending on what is wrong.
        raise ValueError(f'Checkpoint {path} could not be loaded as a dictionary of tensors with '
                         f'torch.load(weights_only=True): {error}') from error
    if not isinstance(checkpoint, dict):
        raise ValueError(f'Checkpoint {path}: expected a dict (BasicSR {{"params": state_dict}} or a bare state '
                         f'dict), found {type(checkpoint).__name__}.')
    return checkpoint


def select_params(checkpoint: dict, source: str = 'checkpoint', key: Optional[str] = None) -> dict[str, torch.Tensor]:
    """Pick the weights of a loaded checkpoint: ``params_ema``, else ``params``, else the dict itself.

    Args:
        checkpoint (dict): Loaded checkpoint.
        source (str): Name used in error messages (e.g. the file). Default: 'checkpoint'.
        key (str, optional): Use exactly this entry (e.g. ``'params'``) instead of the preference order.

    Returns:
        OrderedDict[str, Tensor]: The state dict.

    Raises:
        KeyError: ``key`` is given but absent.
        ValueError: Neither ``params_ema`` nor ``params`` is present and the dict is not a bare state dict.
    """
    if key is not None:
        if key not in checkpoint:
            raise KeyError(f'{source}: no entry {key!r}; found {sorted(checkpoint)}.')
        state_dict = checkpoint[key]
    else:
        state_dict = next((checkpoint[k] for k in PARAM_KEYS if k in checkpoint), checkpoint)
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f'{source}: expected {{"params_ema" | "params": state_dict}} or a bare state dict of '
                         f'tensors, found non-tensor entries {not_tensors[:10]}.')
    return OrderedDict(state_dict)


def save_checkpoint(checkpoint: dict, path: PathLike, overwrite: bool = False) -> None:
    """Save atomically: write a temporary file beside ``path``, then ``os.replace`` it into place.

    An interrupted save therefore never leaves a truncated file under the final name.

    Args:
        checkpoint (dict): What to save, e.g. ``{'params': state_dict}``.
        path (str | PathLike): Destination; parent folders are created.
        overwrite (bool): Replace an existing file. Default: False.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} already exists; pass overwrite=True (--overwrite) to replace it.')
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise


def strip_prefix(state_dict: dict, prefix: str = 'module.') -> dict[str, torch.Tensor]:
    """Remove ``prefix`` (DataParallel / DDP's ``module.``) from every key that starts with it."""
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def load_network_options(opt_path: PathLike) -> dict:
    """Read ``network_g`` from a BasicSR options YAML (``yaml.safe_load``).

    Returns:
        dict: The network options including ``type``, e.g. ``{'type': 'LFFNet', 'num_feat': 64, ...}``.

    Raises:
        FileNotFoundError: The file does not exist.
        KeyError: No ``network_g`` section or no ``type`` in it.
        ValueError: ``type`` is not one of LFFNet, AHDRNet.
    """
    opt_path = Path(opt_path)
    if not opt_path.is_file():
        raise FileNotFoundError(f'Options file {opt_path} not found.')
    with open(opt_path, encoding='utf-8') as file:
        opt = yaml.safe_load(file)
    if not isinstance(opt, dict) or not isinstance(opt.get('network_g'), dict):
        raise KeyError(f'{opt_path}: expected a network_g section with the architecture options.')
    options = dict(opt['network_g'])
    if 'type' not in options:
        raise KeyError(f'{opt_path}: network_g has no type (expected one of {NETWORK_TYPES}).')
    if options['type'] not in NETWORK_TYPES:
        raise ValueError(f'{opt_path}: network_g type must be one of {NETWORK_TYPES}, got {options["type"]!r}.')
    return options


def _indices(state_dict: dict, prefix: str) -> list:
    """Sorted distinct integers ``k`` of keys ``<prefix>.<k>.*``."""
    pattern = re.compile(rf'^{re.escape(prefix)}\.(\d+)\.')
    return sorted({int(m.group(1)) for m in map(pattern.match, state_dict) if m})


def _weight(state_dict: dict, name: str, source: str) -> torch.Tensor:
    """The kernel of conv ``name``: ``<name>.weight`` (nn.Conv2d) or ``<name>.W`` (DOConv2d)."""
    for key in (f'{name}.weight', f'{name}.W'):
        if key in state_dict:
            return state_dict[key]
    raise KeyError(f'{source}: no {name}.weight or {name}.W; not an LFFNet/AHDRNet state dict.')


def infer_network_options(state_dict: dict, source: str = 'checkpoint') -> dict:
    """Infer ``network_g`` options of an LFFNet or AHDRNet from its state dict's key names and shapes.

    Everything that changes a parameter's name or shape is recovered: ``type``, ``num_in_ch``, ``num_out_ch``,
    ``num_exposure``, ``num_feat``, ``num_block``, ``official_unused_convs`` and LFFNet's ``doconv``. ``ref_idx``
    leaves no trace in the weights; it is set to the default (T - 1) // 2 (ARCHITECTURE.md §10).

    Args:
        state_dict (dict): Our parameter names (convert official AHDRNet weights first).
        source (str): Name used in error messages. Default: 'checkpoint'.

    Returns:
        dict: Options including ``type``, ready for :func:`build_network`.

    Raises:
        KeyError: The keys are not those of our LFFNet or AHDRNet.
    """
    if 'conv1.weight' in state_dict and 'att11.weight' in state_dict:
        raise KeyError(f'{source} has the official AHDRNet key names; convert it first with '
                       'scripts/model_conversion/convert_official_ahdrnet.py.')
    if 'conv_first.weight' not in state_dict:
        raise KeyError(f'{source}: no conv_first.weight; not an LFFNet/AHDRNet state dict '
                       f'(first keys: {list(state_dict)[:5]}).')
    if 'fusion_blocks.0.frequency.0.weight' in state_dict:
        arch = 'LFFNet'
    elif 'fusion_blocks.0.conv_fuse.weight' in state_dict:
        arch = 'AHDRNet'
    else:
        raise KeyError(f'{source}: found neither fusion_blocks.0.frequency.0.weight (LFFNet RFFT block) nor '
                       'fusion_blocks.0.conv_fuse.weight (AHDRNet DRDB).')
    conv_first = state_dict['conv_first.weight']
    num_exposure = len(_indices(state_dict, 'attention')) + 1
    options = {
        'type': arch,
        'num_in_ch': conv_first.shape[1],
        'num_out_ch': _weight(state_dict, 'conv_last', source).shape[0],
        'num_exposure': num_exposure,
        'ref_idx': (num_exposure - 1) // 2,
        'num_feat': conv_first.shape[0],
        'num_block': len(_indices(state_dict, 'fusion_blocks')),
        'official_unused_convs': any(k.startswith('unused_att_convs.') for k in state_dict),
    }
    if arch == 'LFFNet':
        if 'conv_merge.W' in state_dict:
            options['doconv'] = 'fusion'
        elif 'fusion_blocks.0.spatial.0.W' in state_dict:
            options['doconv'] = 'rfft'
        else:
            options['doconv'] = 'none'
    return options


def build_network(options: dict) -> nn.Module:
    """Build the network that ``options`` (``network_g`` with ``type``) describe, from BasicSR's registry."""
    from basicsr.utils.registry import ARCH_REGISTRY

    import lffnet_arch.archs  # noqa: F401  (registers LFFNet and AHDRNet)

    options = dict(options)
    arch = options.pop('type', None)
    if arch not in NETWORK_TYPES:
        raise ValueError(f'Network type must be one of {NETWORK_TYPES}, got {arch!r}.')
    return ARCH_REGISTRY.get(arch)(**options)


def official_ahdrnet_keys(num_block: int = 3, num_layer: int = 6) -> list:
    """Parameter names of the official AHDRNet (qingsenyangit/AHDRNet ``model.py``), without ``module.``."""
    convs = ['conv1', 'att11', 'att12', 'attConv1', 'att31', 'att32', 'attConv3', 'conv2']
    for block in range(1, num_block + 1):
        convs += [f'RDB{block}.dense_layers.{j}.conv' for j in range(num_layer)] + [f'RDB{block}.conv_1x1']
    convs += ['GFF_1x1', 'GFF_3x3', 'conv_up', 'conv3']
    return [f'{conv}.{kind}' for conv in convs for kind in ('weight', 'bias')]


# Official conv name -> ours (lffnet_arch/archs/attention_hdr.py, ahdrnet_arch.py). Frame 1 is the short exposure
# (att11/att12, attention.0), frame 3 the long one (att31/att32, attention.1); frame 2 is the reference.
_OFFICIAL_TO_OURS = {
    'conv1': 'conv_first',
    'att11': 'attention.0.conv_hidden',
    'att12': 'attention.0.conv_mask',
    'att31': 'attention.1.conv_hidden',
    'att32': 'attention.1.conv_mask',
    'attConv1': 'unused_att_convs.0',
    'attConv3': 'unused_att_convs.1',
    'conv2': 'conv_merge',
    'GFF_1x1': 'gff_1x1',
    'GFF_3x3': 'gff_3x3',
    'conv_up': 'conv_up',
    'conv3': 'conv_last',
}
_OFFICIAL_DENSE = re.compile(r'^RDB(\d+)\.dense_layers\.(\d+)\.conv$')
_OFFICIAL_FUSE = re.compile(r'^RDB(\d+)\.conv_1x1$')


def _our_conv_name(official: str) -> str:
    if official in _OFFICIAL_TO_OURS:
        return _OFFICIAL_TO_OURS[official]
    match = _OFFICIAL_DENSE.match(official)
    if match:
        return f'fusion_blocks.{int(match.group(1)) - 1}.dense_layers.{match.group(2)}'
    match = _OFFICIAL_FUSE.match(official)
    if match:
        return f'fusion_blocks.{int(match.group(1)) - 1}.conv_fuse'
    raise AssertionError(f'unmapped official conv {official}')  # every expected key is covered above


def convert_official_ahdrnet_state_dict(state_dict: dict,
                                        num_block: int = 3,
                                        num_layer: int = 6,
                                        source: str = 'checkpoint') -> dict[str, torch.Tensor]:
    """Rename an official AHDRNet state dict to ours; loads into ``AHDRNet(official_unused_convs=True)`` strictly.

    Args:
        state_dict (dict): Official parameter names (``conv1.weight``, ``att11.bias``, ``RDB1.conv_1x1.weight``,
            ...), optionally all prefixed with ``module.`` by DataParallel.
        num_block (int): DRDBs in the official network. Default: 3.
        num_layer (int): Dense layers per DRDB. Default: 6.
        source (str): Name used in error messages (e.g. the file). Default: 'checkpoint'.

    Returns:
        OrderedDict[str, Tensor]: Our names (``conv_first.weight``, ``attention.0.conv_hidden.bias``,
        ``fusion_blocks.0.conv_fuse.weight``, ...), same tensors.

    Raises:
        KeyError: Expected official keys are missing or unknown keys are present (both listed).
    """
    state_dict = strip_prefix(state_dict, 'module.')
    expected = official_ahdrnet_keys(num_block, num_layer)
    missing = [k for k in expected if k not in state_dict]
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise KeyError(f'{source} is not an official AHDRNet state dict ({num_block} DRDBs of {num_layer} layers): '
                       f'missing keys {missing}; unexpected keys {unexpected}.')
    converted = OrderedDict()
    for key in expected:
        conv, kind = key.rsplit('.', 1)
        converted[f'{_our_conv_name(conv)}.{kind}'] = state_dict[key]
    return converted


def load_params(path: PathLike, key: Optional[str] = None) -> dict[str, torch.Tensor]:
    """:func:`load_checkpoint` then :func:`select_params`: the weights inference and folding use."""
    return select_params(load_checkpoint(path), source=str(path), key=key)


def load_network(path: PathLike,
                 opt_path: Optional[PathLike] = None,
                 key: Optional[str] = None) -> tuple[nn.Module, dict]:
    """Build the network of a checkpoint and load its weights strictly.

    Args:
        path (str | PathLike): Checkpoint (BasicSR format or a bare state dict of our names).
        opt_path (str | PathLike, optional): Options YAML whose ``network_g`` describes the network; without it the
            options are inferred from the weights (:func:`infer_network_options`).
        key (str, optional): Checkpoint entry to load; default ``params_ema``, else ``params``.

    Returns:
        tuple[nn.Module, dict]: The network in eval mode and its options (with ``type``).

    Raises:
        ValueError: The weights do not fit the network (names or shapes), naming the file.
    """
    state_dict = load_params(path, key)
    options = load_network_options(opt_path) if opt_path else infer_network_options(state_dict, str(path))
    net = build_network(options)
    try:
        net.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        origin = f'from {opt_path}' if opt_path else 'inferred from the weights'
        raise ValueError(f'{path}: the weights do not fit {options} ({origin}): {error}') from error
    return net.eval(), options
