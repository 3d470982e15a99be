"""Checkpoint files: reading them safely, picking the weights, saving atomically. Knows no network.

Checkpoints use BasicSR's format, ``{'params': state_dict}`` plus ``{'params_ema': ...}`` when EMA is on; loaders read
``params_ema`` when present, else ``params``, else accept a bare state dict (as the official AHDRNet code writes).
Building a network from a checkpoint is :func:`lffnet_arch.deploy.model.load_network`.
"""

import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import torch

from lffnet_arch.fileio.atomic import atomic_path

__all__ = [
    'NETWORK_KEY',
    'PARAM_KEYS',
    'load_checkpoint',
    'load_params',
    'network_record',
    'save_atomic',
    'save_checkpoint',
    'select_params',
    'stored_network_options',
    'strip_prefix',
]

PathLike = Union[str, os.PathLike]

# Preference order of the weight sets in a BasicSR checkpoint.
PARAM_KEYS = ('params_ema', 'params')
# The entry that records the network a checkpoint's weights belong to (its ``network_g`` options, plain values):
# with it, weights that lost a buffer or a layer fail to load instead of loading as another network.
NETWORK_KEY = 'network_g'
_PLAIN = (str, int, float, bool, type(None))


def network_record(options: Mapping) -> dict:
    """``options`` (a network's ``network_g``) as stored under :data:`NETWORK_KEY`: plain values only, so the
    checkpoint still loads with ``torch.load(weights_only=True)``."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if not isinstance(value, _PLAIN):
            raise ValueError(f'Network option value {value!r} is not a plain value; it cannot be stored.')
        return value

    return plain(dict(options))


def stored_network_options(checkpoint: Mapping, source: str = 'checkpoint') -> Optional[dict]:
    """The ``network_g`` options a checkpoint records (None for checkpoints without the record)."""
    options = checkpoint.get(NETWORK_KEY)
    if options is None:
        return None
    if not isinstance(options, Mapping) or not isinstance(options.get('type'), str):
        raise ValueError(f'{source}: its {NETWORK_KEY!r} entry is not network options with a type: {options!r}.')
    return dict(options)


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
        if state_dict is checkpoint:  # a bare state dict: the network record is not a weight
            state_dict = {k: v for k, v in checkpoint.items() if k != NETWORK_KEY}
    if not isinstance(state_dict, Mapping):
        found = next(k for k in (key, *PARAM_KEYS) if k is not None and k in checkpoint)
        raise ValueError(
            f'{source}: its {found!r} entry is a {type(state_dict).__name__}, not a state dict of tensors.'
        )
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


def load_params(path: PathLike, key: Optional[str] = None) -> dict[str, torch.Tensor]:
    """:func:`load_checkpoint` then :func:`select_params`: the weights inference and folding use."""
    return select_params(load_checkpoint(path), source=str(path), key=key)
