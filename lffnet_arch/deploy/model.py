"""Loading a trained network: the one loader of checkpoints into networks, used by inference, ONNX export, model
conversion, tiling error and the benchmarks.

Architecture options come from an options YAML's ``network_g`` (or an architecture's defaults), or are inferred from
the state dict by the architectures themselves (:func:`lffnet_arch.archs.infer_network_options`); the network is
built with BasicSR's ``build_network`` (any architecture in ``ARCH_REGISTRY``) and loaded strictly, with an error
that says how the weights differ and how to load them (:func:`lffnet_arch.archs.loading_advice`). The folding
script, which loads every weight set of one checkpoint, uses the parts: :func:`network_options`,
:func:`create_network` and :func:`load_state_dict_strictly`.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import torch
import yaml
from torch import nn

from lffnet_arch.archs import infer_network_options, loading_advice
from lffnet_arch.deploy.pretrained import DEFAULT_MODEL, pretrained_path
from lffnet_arch.fileio.checkpoint import load_checkpoint, select_params, stored_network_options, strip_prefix

__all__ = [
    'OptionsLike',
    'create_network',
    'load_model',
    'load_network',
    'load_network_options',
    'load_state_dict_strictly',
    'network_options',
]

PathLike = Union[str, os.PathLike]
OptionsLike = Union[None, str, os.PathLike, Mapping]


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
    stored: Optional[Mapping] = None,
) -> dict:
    """The ``network_g`` options of a state dict, chosen as :func:`load_network` chooses them.

    Args:
        state_dict (Mapping): Weights with our parameter names; read only when the options are inferred.
        opt (str | PathLike | Mapping, optional): Options YAML or options. Its ``type`` wins over ``arch``.
        arch (str, optional): Registered architecture name, used when ``opt`` is None or has no ``type``.
        source (str): Name used in error messages (e.g. the file). Default: 'checkpoint'.
        arch_kwargs (Mapping, optional): Architecture options overriding the others.
        stored (Mapping, optional): The options the checkpoint records (``network_g`` of checkpoints this project
            writes): used without ``opt`` and ``arch``, so weights that lost a buffer or a layer fail to load
            instead of loading as another network.

    Returns:
        dict: Options with ``type`` from ``opt``, else ``arch``'s defaults, else the checkpoint's record, else
        inferred from the weights.

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
    elif stored is not None:
        options = dict(stored)
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
    stored = load_checkpoint(checkpoint)
    state_dict = strip_prefix(select_params(stored, source, key))
    options = network_options(state_dict, opt, arch, source, arch_kwargs, stored_network_options(stored, source))
    net = load_state_dict_strictly(create_network(options), state_dict, source, options)
    return net.to(device).eval(), options


def load_model(
    checkpoint: Optional[PathLike] = None,
    opt: OptionsLike = None,
    arch: Optional[str] = None,
    device: Union[str, torch.device] = 'cpu',
    pretrained: str = DEFAULT_MODEL,
    **arch_kwargs: Any,
) -> nn.Module:
    """Build the network of a checkpoint and load its weights strictly; see :func:`load_network`.

    Args:
        checkpoint (str | PathLike, optional): BasicSR checkpoint (``{'params': ..., 'params_ema': ...}``;
            ``params_ema`` is used when present) or a bare state dict. Loaded with ``torch.load(weights_only=True)``.
            None loads the shipped model named by ``pretrained``.
        opt (str | PathLike | dict, optional): Options YAML whose ``network_g`` section (read with the safe YAML
            loader) gives the architecture and its options, or that section as a dict.
        arch (str, optional): Registered architecture name (e.g. ``'LFFNet'``, ``'AHDRNet'``), built with its default
            (the paper's) configuration, when ``opt`` is not given. Without ``opt`` and ``arch``, the options are
            inferred from the checkpoint's key names and shapes (LFFNet and AHDRNet).
        device (str | torch.device): Where the network goes. Default: 'cpu'.
        pretrained (str): The shipped model used when ``checkpoint`` is None (see
            :data:`~lffnet_arch.deploy.pretrained.PRETRAINED`). Default: 'LFFNet'.
        **arch_kwargs: Architecture options overriding the others (e.g. ``num_feat=64``, ``doconv='none'``).

    Returns:
        nn.Module: The network in eval mode on ``device``, in contiguous memory format;
        ``net.to(memory_format=torch.channels_last)`` opts in to the faster layout (docs/benchmark.md).

    Raises:
        FileNotFoundError: Missing checkpoint or options file.
        KeyError: No ``network_g`` / ``type`` in ``opt``, or options that cannot be inferred from the weights.
        ValueError: Unknown architecture or options, or the checkpoint does not fit the network; the message lists
            a few missing and unexpected keys and shape mismatches, and says how to load DO-Conv / folded weights.
    """
    if checkpoint is None:
        checkpoint = pretrained_path(pretrained)
    net, _ = load_network(checkpoint, opt, arch=arch, device=device, **arch_kwargs)
    return net
