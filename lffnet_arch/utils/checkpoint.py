"""Checkpoint helpers: the one loader of trained networks, and atomic saving.

Checkpoints use BasicSR's format, ``{'params': state_dict}`` plus ``{'params_ema': ...}`` when EMA is on; loaders read
``params_ema`` when present, else ``params``, else accept a bare state dict (as the official AHDRNet code writes).
:func:`load_network` is the loader that inference (``lffnet_arch.inference.load_model``), the tiling-error script and
the ONNX export script share: architecture options come from an options YAML's ``network_g`` (or an
architecture's defaults), or are inferred from the state dict's key names and shapes (:func:`infer_network_options`);
the network is built with BasicSR's ``build_network`` (any architecture in ``ARCH_REGISTRY``) and loaded strictly,
with an error that says how the weights differ and how to load them. The folding script, which loads every weight set
of one checkpoint, uses its parts: :func:`select_params`, :func:`network_options`, :func:`create_network` and
:func:`load_state_dict_strictly`.
"""

import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import torch
import yaml
from torch import nn

from lffnet_arch.archs.state_dict import infer_network_options, loading_advice
from lffnet_arch.utils.file_util import atomic_path

__all__ = [
    'PARAM_KEYS',
    'create_network',
    'load_checkpoint',
    'load_network',
    'load_network_options',
    'load_params',
    'load_state_dict_strictly',
    'network_options',
    'save_atomic',
    'save_checkpoint',
    'select_params',
    'strip_prefix',
]

PathLike = Union[str, os.PathLike]
OptionsLike = Union[None, str, os.PathLike, Mapping]

# Preference order of the weight sets in a BasicSR checkpoint.
PARAM_KEYS = ('params_ema', 'params')


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
        raise ValueError(
            f'Checkpoint {path} could not be loaded as a dictionary of tensors with '
            f'torch.load(weights_only=True): {error}'
        ) from error
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f'Checkpoint {path}: expected a dict (BasicSR {{"params": state_dict}} or a bare state '
            f'dict), found {type(checkpoint).__name__}.'
        )
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
        raise ValueError(
            f'{source}: expected {{"params_ema" | "params": state_dict}} or a bare state dict of '
            f'tensors, found non-tensor entries {not_tensors[:10]}.'
        )
    return OrderedDict(state_dict)


def save_atomic(obj: Any, path: PathLike, overwrite: bool = True) -> None:
    """``torch.save`` atomically: write a temporary file beside ``path``, fsync it, then ``os.replace`` it into place.

    An interrupted save therefore never leaves a truncated file under the final name, and an existing file is only
    ever replaced by a complete one. No overwrite check (training checkpoints replace their predecessors); tools
    that must not overwrite use :func:`save_checkpoint`.

    Args:
        obj (Any): What to save, e.g. ``{'params': state_dict}`` or a training state.
        path (str | PathLike): Destination; parent folders are created.
        overwrite (bool): Replace an existing file; False raises FileExistsError if ``path`` exists when the write
            finishes, even if another process created it meanwhile. Default: True.
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, 'wb') as file:
            torch.save(obj, file)


def save_checkpoint(checkpoint: dict, path: PathLike, overwrite: bool = False) -> None:
    """Save a checkpoint with :func:`save_atomic`, refusing to replace an existing file unless asked.

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
    save_atomic(checkpoint, path, overwrite=overwrite)


def strip_prefix(state_dict: dict, prefix: str = 'module.') -> dict[str, torch.Tensor]:
    """Remove ``prefix`` (DataParallel / DDP's ``module.``) from every key that starts with it."""
    return OrderedDict((k[len(prefix) :] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def load_network_options(opt_path: PathLike) -> dict:
    """Read ``network_g`` from a BasicSR options YAML with the safe loader of ``lffnet_arch.compat.safe_ordered_yaml``.

    Returns:
        dict: The network options including ``type``, e.g. ``{'type': 'LFFNet', 'num_feat': 64, ...}``.

    Raises:
        FileNotFoundError: The file does not exist.
        KeyError: No ``network_g`` section or no ``type`` in it.
    """
    from lffnet_arch.compat import safe_ordered_yaml

    opt_path = Path(opt_path)
    if not opt_path.is_file():
        raise FileNotFoundError(f'Options file {opt_path} not found.')
    with open(opt_path, encoding='utf-8') as file:
        opt = yaml.load(file, Loader=safe_ordered_yaml()[0])
    if not isinstance(opt, Mapping) or not isinstance(opt.get('network_g'), Mapping):
        raise KeyError(f'{opt_path}: expected a network_g section with the architecture options.')
    options = dict(opt['network_g'])
    if 'type' not in options:
        raise KeyError(f'{opt_path}: network_g has no type (a registered architecture name, e.g. LFFNet).')
    return options


def create_network(options: Mapping) -> nn.Module:
    """Build the network that ``options`` (``network_g`` with ``type``) describe, with BasicSR's ``build_network``.

    Any architecture registered in ``ARCH_REGISTRY`` works, not only LFFNet and AHDRNet.

    Raises:
        KeyError: ``options`` has no ``type``.
        ValueError: ``type`` is not registered (the message lists the registered names), or the options do not fit
            the architecture's arguments.
    """
    from basicsr.archs import build_network
    from basicsr.utils.registry import ARCH_REGISTRY

    import lffnet_arch.archs  # noqa: F401  (registers LFFNet and AHDRNet)

    options = dict(options)
    arch = options.get('type')
    if arch is None:
        raise KeyError(f'Network options {options} have no type (a registered architecture name, e.g. LFFNet).')
    try:
        ARCH_REGISTRY.get(arch)  # as build_network looks it up (also finds BasicSR's '<name>_basicsr' entries)
    except KeyError as error:
        raise ValueError(
            f'Unknown architecture {arch!r}; registered in ARCH_REGISTRY: {", ".join(sorted(ARCH_REGISTRY.keys()))}.'
        ) from error
    try:
        return build_network(options)
    except TypeError as error:
        raise ValueError(f'Invalid options for {arch}: {options} ({error}).') from error


def load_params(path: PathLike, key: Optional[str] = None) -> dict[str, torch.Tensor]:
    """:func:`load_checkpoint` then :func:`select_params`: the weights inference and folding use."""
    return select_params(load_checkpoint(path), source=str(path), key=key)


# ---------------------------------------------------------------- building a network and loading weights into it


def _shape(tensor: torch.Tensor) -> tuple:
    return tuple(tensor.shape)


def _net_name(options: Mapping) -> str:
    rest = {k: v for k, v in options.items() if k != 'type'}
    return f'{options.get("type")}({rest})'


def _mismatch_message(source: str, net_name: str, expected: Mapping, found: Mapping) -> Optional[str]:
    """Describe how a state dict differs from a network's (None when names and shapes agree)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f'{k}: checkpoint {_shape(found[k])} vs network {_shape(expected[k])}'
        for k in expected
        if k in found and _shape(found[k]) != _shape(expected[k])
    ]
    if not (missing or unexpected or shapes):
        return None
    parts = [
        f'{len(items)} {label} (e.g. {", ".join(items[:4])})'
        for label, items in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', shapes))
        if items
    ]
    message = f'Checkpoint {source} does not fit {net_name}: {"; ".join(parts)}.'
    return message + loading_advice(net_name.split('(')[0], expected, found, source)


def load_state_dict_strictly(
    net: nn.Module, state_dict: Mapping, source: str = 'checkpoint', options: Optional[Mapping] = None
) -> nn.Module:
    """Load ``state_dict`` into ``net`` with ``strict=True``, or explain the difference.

    Args:
        net (nn.Module): The network.
        state_dict (Mapping): Weights with our parameter names.
        source (str): Name used in error messages (e.g. the file). Default: 'checkpoint'.
        options (Mapping, optional): ``network_g`` options ``net`` was built from, named in the error message.

    Returns:
        nn.Module: ``net``.

    Raises:
        ValueError: Names or shapes differ; the message lists a few missing and unexpected keys and shape
            mismatches, and says how to load official AHDRNet, DO-Conv or folded weights, or another architecture.
    """
    net_name = _net_name(options) if options is not None else type(net).__name__
    message = _mismatch_message(source, net_name, net.state_dict(), state_dict)
    if message:
        raise ValueError(message)
    net.load_state_dict(state_dict, strict=True)
    return net


def network_options(
    state_dict: Mapping,
    opt: OptionsLike = None,
    arch: Optional[str] = None,
    source: str = 'checkpoint',
    arch_kwargs: Optional[Mapping] = None,
) -> dict:
    """The ``network_g`` options of a state dict, chosen as :func:`load_network` chooses them.

    Args:
        state_dict (Mapping): Weights with our parameter names; read only when the options are inferred.
        opt (str | PathLike | Mapping, optional): Options YAML or options. Its ``type`` wins over ``arch``.
        arch (str, optional): Registered architecture name, used when ``opt`` is None or has no ``type``.
        source (str): Name used in error messages (e.g. the file). Default: 'checkpoint'.
        arch_kwargs (Mapping, optional): Architecture options overriding the others.

    Returns:
        dict: Options with ``type`` from ``opt``, else ``arch``'s defaults, else inferred from the weights.

    Raises:
        FileNotFoundError: Missing options file.
        KeyError: No ``network_g`` / ``type`` in ``opt``, or options that cannot be inferred.
    """
    if opt is not None:
        if isinstance(opt, Mapping):
            options = dict(opt.get('network_g', opt))
        else:
            options = load_network_options(opt)
        if 'type' not in options:
            if arch is None:
                raise KeyError(f'Network options {options} have no type; add one or pass arch=.')
            options['type'] = arch
    elif arch is not None:
        options = {'type': arch}
    else:
        try:
            options = infer_network_options(state_dict, source)
        except KeyError as error:
            raise KeyError(
                f'{error.args[0]} Cannot infer the network options from the weights; give them with an '
                'options YAML (--opt, opt=) or an architecture name (--arch, arch=).'
            ) from error
    options.update(arch_kwargs or {})
    return options


def load_network(
    checkpoint: PathLike,
    opt: OptionsLike = None,
    arch: Optional[str] = None,
    key: Optional[str] = None,
    device: Union[str, torch.device] = 'cpu',
    **arch_kwargs: Any,
) -> tuple[nn.Module, dict]:
    """Build the network of a checkpoint and load its weights strictly: the one loader of trained networks.

    Network options, in order of priority: ``opt`` (an options YAML whose ``network_g`` is read with the safe YAML
    loader, or that section / a whole options dict); ``arch`` with its default (the paper's) configuration;
    options inferred from the weights' key names and shapes (:func:`infer_network_options`, LFFNet and AHDRNet).
    ``arch_kwargs`` override single options in every case. The network is built with BasicSR's ``build_network``,
    so any architecture registered in ``ARCH_REGISTRY`` can be loaded (through ``opt`` or ``arch``).

    Args:
        checkpoint (str | PathLike): BasicSR checkpoint (``params_ema`` used when present, else ``params``) or a
            bare state dict of our names; a DataParallel ``module.`` prefix is removed. Loaded with
            ``torch.load(weights_only=True)``.
        opt (str | PathLike | Mapping, optional): Options YAML or options. Its ``type`` wins over ``arch``.
        arch (str, optional): Registered architecture name, used when ``opt`` is None or has no ``type``.
        key (str, optional): Checkpoint entry to load (e.g. ``'params'``); default ``params_ema``, else ``params``.
        device (str | torch.device): Where the network goes. Default: 'cpu'.
        **arch_kwargs: Architecture options overriding the others (e.g. ``num_feat=64``, ``doconv='none'``).

    Returns:
        tuple[nn.Module, dict]: The network in eval mode on ``device``, and its options (with ``type``).

    Raises:
        FileNotFoundError: Missing checkpoint or options file.
        KeyError: No ``network_g`` / ``type`` in ``opt``, a missing ``key``, or options that cannot be inferred.
        ValueError: Unknown architecture or options, or weights that do not fit the network (see
            :func:`load_state_dict_strictly`).
    """
    source = str(checkpoint)
    state_dict = strip_prefix(load_params(checkpoint, key))
    options = network_options(state_dict, opt, arch, source, arch_kwargs)
    net = load_state_dict_strictly(create_network(options), state_dict, source, options)
    return net.to(device).eval(), options
