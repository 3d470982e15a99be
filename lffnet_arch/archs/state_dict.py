"""What the networks' weights say about the networks: options rebuilt from a state dict, advice on weights that do
not fit. Each architecture answers for itself (``options_from_state_dict`` on its class); this module asks every
registered architecture that can answer, so loaders outside ``archs/`` never name a parameter.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Optional

import torch
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['infer_network_options', 'kernel', 'loading_advice', 'numbered_children']


def numbered_children(state_dict: Mapping, prefix: str) -> list:
    """Sorted distinct integers ``k`` of keys ``<prefix>.<k>.*`` (the children of an ``nn.ModuleList``)."""
    pattern = re.compile(rf'^{re.escape(prefix)}\.(\d+)\.')
    return sorted({int(m.group(1)) for m in map(pattern.match, state_dict) if m})


def kernel(state_dict: Mapping, name: str, source: str) -> torch.Tensor:
    """The kernel of conv ``name``: ``<name>.weight`` (nn.Conv2d) or ``<name>.W`` (DOConv2d)."""
    for key in (f'{name}.weight', f'{name}.W'):
        if key in state_dict:
            return state_dict[key]
    raise KeyError(f'{source}: no {name}.weight or {name}.W; not a state dict of this architecture.')


def _answering_architectures() -> list:
    """Registered architecture classes that rebuild their options from weights, in registration order."""
    return [cls for _, cls in ARCH_REGISTRY if hasattr(cls, 'options_from_state_dict')]


def _foreign_format_advice(state_dict: Mapping) -> Optional[str]:
    for cls in _answering_architectures():
        advice = getattr(cls, 'foreign_format_advice', lambda _: None)(state_dict)
        if advice:
            return advice
    return None


def infer_network_options(state_dict: Mapping, source: str = 'checkpoint') -> dict:
    """``network_g`` options (with ``type``) of the registered architecture whose weights ``state_dict`` holds.

    Every registered class with ``options_from_state_dict`` is asked (LFFNet and AHDRNet here); the first that
    recognises the weights rebuilds everything that changes a parameter's name or shape.

    Raises:
        KeyError: No architecture recognises the weights (the message says why, e.g. official AHDRNet names).
    """
    advice = _foreign_format_advice(state_dict)
    if advice:
        raise KeyError(f'{source} {advice}')
    architectures = _answering_architectures()
    for cls in architectures:
        options = cls.options_from_state_dict(state_dict, source)
        if options is not None:
            return {'type': cls.__name__, **options}
    raise KeyError(
        f'{source}: the weights are not those of any of {", ".join(c.__name__ for c in architectures)} '
        f'(first keys: {list(state_dict)[:5]}).'
    )


def _has_doconv_factors(keys: Iterable[str]) -> bool:
    from lffnet_arch.archs.doconv import DOConv2d

    return any(k.endswith(DOConv2d.FACTOR_SUFFIXES) for k in keys)


def loading_advice(net_type: str, expected: Mapping, found: Mapping, source: str = 'checkpoint') -> str:
    """How to load weights ``found`` that do not fit a ``net_type`` network whose state dict is ``expected``.

    Returns:
        str: Sentences to append to the mismatch message ('' when there is nothing to advise).
    """
    advice = _foreign_format_advice(found)
    if advice:
        return f' It {advice}'
    try:
        inferred = infer_network_options(found, source)
    except KeyError:
        inferred = None
    if inferred is not None and inferred['type'] != net_type:
        return (
            f' It is an {inferred["type"]} checkpoint (network_g {inferred}): use --arch '
            f'{inferred["type"]} (arch=...), the options YAML it was trained with (--opt), or neither '
            'to infer the options from the weights.'
        )
    message = ''
    if _has_doconv_factors(found) and not _has_doconv_factors(expected):
        message += (
            " The checkpoint holds DO-Conv factors (W, D) but the network has plain convolutions (doconv='none'"
            " or folded): build it with the options it was trained with (doconv='fusion' or 'rfft', e.g. "
            '--opt with the training YAML), or fold the checkpoint first with fold_doconv and load the result '
            "with the folded options (doconv='none')."
        )
    elif _has_doconv_factors(expected) and not _has_doconv_factors(found):
        message += (
            ' The checkpoint holds plain convolution weights where the network expects DO-Conv factors (W, D):'
            " it was folded with fold_doconv or trained with doconv='none'; load it with the folded options "
            "(doconv='none')."
        )
    if inferred is not None:
        message += f' Its weights look like network_g {inferred}; pass matching --opt / --arch options.'
    return message
