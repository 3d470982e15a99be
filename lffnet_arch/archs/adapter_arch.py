"""HDRAdapter: any image-to-image network of BasicSR's ``ARCH_REGISTRY`` on the multi-exposure HDR protocol.

The wrapped ("inner") network maps an image to an image at scale 1 (e.g. BasicSR's SwinIR, RRDBNet, EDSR, RCAN).
The adapter gives it the HDR networks' interface::

    lq (B, T, 6, H, W) -> stem: 3x3 conv, T*6 -> C_in -> pad to a multiple -> inner (C_in -> C_out)
                       -> crop back -> head: 3x3 conv, C_out -> 3 -> sigmoid -> (B, 3, H, W) linear HDR in [0, 1]

so it trains and tests with the same dataset, losses, metrics, benchmark and inference as LFFNet and AHDRNet.
"""

import inspect
from collections.abc import Mapping
from typing import Any, Optional

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

__all__ = ['HDRAdapter', 'inner_network_arguments']

# Argument names BasicSR-style networks use for their input / output channels and their scale factor.
IN_CHANNEL_NAMES = ('num_in_ch', 'in_chans', 'in_channels', 'in_nc', 'in_ch', 'inp_channels')
OUT_CHANNEL_NAMES = ('num_out_ch', 'out_chans', 'out_channels', 'out_nc', 'out_ch')
SCALE_NAMES = ('scale', 'upscale', 'upscale_factor')


def _signature(cls: type) -> inspect.Signature:
    return inspect.signature(cls.__init__)


def _find(parameters: Mapping, names: tuple) -> Optional[str]:
    return next((name for name in names if name in parameters), None)


def _given(options: Mapping, names: tuple, what: str, arch: str) -> Optional[tuple]:
    """The (name, value) the user gave under one of ``names``, or None; two aliases at once are refused."""
    found = [(name, options[name]) for name in names if name in options]
    if len(found) > 1:
        raise ValueError(f'HDRAdapter inner {arch}: {what} given twice ({", ".join(n for n, _ in found)}); give one.')
    return found[0] if found else None


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'HDRAdapter: {what} must be a positive integer; got {value!r}.')
    return value


def inner_network_arguments(inner: Mapping, num_frame_channels: int) -> tuple:
    """Resolve the wrapped network's arguments: channel counts, scale 1 and the padding multiple.

    Channel arguments may be given in BasicSR's vocabulary (``num_in_ch`` / ``num_out_ch``) or the network's own
    (``in_chans``, ``in_channels``, ...); they are renamed to what the network takes. Defaults: the network takes
    all ``num_frame_channels`` (T x 6) stem channels, and returns 3; networks with a built-in RGB mean (an
    ``rgb_mean`` argument: EDSR, RCAN, RIDNet) take and return 3, and networks without an output-channel argument
    (SwinIR) return as many as they take. The scale argument is set to 1 (another value is refused).

    Args:
        inner (Mapping): ``type`` (a registered architecture) and its options.
        num_frame_channels (int): Channels of the stacked frames, T x 6.

    Returns:
        tuple[type, dict, int, int, int]: The class, its keyword arguments, its input and output channels, and the
        multiple that H and W must be padded to (SwinIR: ``window_size``; RRDBNet: 4 at scale 1; else 1).

    Raises:
        ValueError: No or an unknown ``type``, a scale other than 1, channel counts a network with an RGB mean
            cannot take, or a network without an input-channel argument.
    """
    arch, cls, options = _inner_class(inner)
    parameters = _signature(cls).parameters
    in_ch, out_ch = _set_channels(options, parameters, arch, num_frame_channels)
    _set_scale(options, parameters, arch)
    if arch == 'SwinIR':
        multiple = options.get('window_size', parameters['window_size'].default)
    elif arch == 'RRDBNet':
        multiple = 4  # scale 1 works on 4x pixel-unshuffled features
    else:
        multiple = 1
    return cls, options, in_ch, out_ch, multiple


def _inner_class(inner: Mapping) -> tuple:
    """(type name, registered class, the other options) of the wrapped network's options."""
    if not isinstance(inner, Mapping) or 'type' not in inner:
        raise ValueError(
            f'HDRAdapter: inner must be a mapping with the wrapped network\'s "type" (e.g. {{type: SwinIR}}); '
            f'got {inner!r}.'
        )
    import basicsr.archs  # noqa: F401  (registers BasicSR's own networks: SwinIR, RRDBNet, EDSR, ...)

    options = dict(inner)
    arch = options.pop('type')
    if arch in ('HDRAdapter', 'LFFNet', 'AHDRNet'):
        raise ValueError(f'HDRAdapter: inner {arch} already takes lq (B, T, 6, H, W); use it without the adapter.')
    try:
        cls = ARCH_REGISTRY.get(arch)
    except KeyError as error:
        raise ValueError(
            f'HDRAdapter: inner type {arch!r} is not registered; registered: {", ".join(sorted(ARCH_REGISTRY.keys()))}.'
        ) from error
    return arch, cls, options


def _set_channels(options: dict, parameters: Mapping, arch: str, num_frame_channels: int) -> tuple:
    """Rename the channel arguments in ``options`` to the network's own and fill in the defaults; returns
    (input channels, output channels)."""
    in_name, out_name = _find(parameters, IN_CHANNEL_NAMES), _find(parameters, OUT_CHANNEL_NAMES)
    if in_name is None:
        raise ValueError(
            f'HDRAdapter: inner {arch} has no input-channel argument (one of {", ".join(IN_CHANNEL_NAMES)}), '
            'so it does not look like an image-to-image network.'
        )
    rgb_mean = 'rgb_mean' in parameters
    given_in = _given(options, IN_CHANNEL_NAMES, 'the input channels', arch)
    given_out = _given(options, OUT_CHANNEL_NAMES, 'the output channels', arch)
    for given in (given_in, given_out):
        if given:
            options.pop(given[0])
            _positive_int(given[1], f'inner {given[0]}')
    in_ch = given_in[1] if given_in else (3 if rgb_mean else num_frame_channels)
    if out_name is None:
        if given_out and given_out[1] != in_ch:
            raise ValueError(f'HDRAdapter: inner {arch} returns as many channels as it takes ({in_ch}).')
        out_ch = in_ch
    else:
        out_ch = given_out[1] if given_out else 3
    if rgb_mean and (in_ch, out_ch) != (3, 3):
        raise ValueError(
            f'HDRAdapter: inner {arch} subtracts a 3-channel RGB mean, so it takes and returns 3 channels; '
            f'got {in_ch} -> {out_ch}.'
        )
    options[in_name] = in_ch
    if out_name is not None:
        options[out_name] = out_ch
    return in_ch, out_ch


def _set_scale(options: dict, parameters: Mapping, arch: str) -> None:
    """Set the network's scale argument to 1 in ``options``; another given scale is refused."""
    scale_name = _find(parameters, SCALE_NAMES)
    given_scale = _given(options, SCALE_NAMES, 'the scale', arch)
    if given_scale:
        options.pop(given_scale[0])
        if given_scale[1] != 1:
            raise ValueError(
                f'HDRAdapter: inner {arch} must keep the image size (scale 1); got {given_scale[0]}={given_scale[1]!r}.'
            )
    if scale_name is not None:
        options[scale_name] = 1


@ARCH_REGISTRY.register()
class HDRAdapter(nn.Module):
    """Wraps a registered image-to-image network so it fuses exposures like LFFNet (see the module docstring).

    Args:
        inner (dict): The wrapped network: ``type`` (registered in ``ARCH_REGISTRY``) and its options; channel and
            scale arguments are filled in (see :func:`inner_network_arguments`).
        num_in_ch (int): Channels per frame (LDR RGB + HDR-domain RGB). Default: 6.
        num_out_ch (int): Output channels. Default: 3.
        num_exposure (int): Frames T. Default: 3.
        ref_idx (int, optional): Reference frame (for the reference-frame baseline); default (T - 1) // 2.
        pad_multiple (int, optional): Pad H and W to a multiple of this before the inner network; default what
            the network needs (SwinIR: its window size; RRDBNet: 4).

    Attributes:
        stem (nn.Conv2d): 3x3 conv, T * num_in_ch -> the inner network's input channels.
        inner (nn.Module): The wrapped network.
        head (nn.Conv2d): 3x3 conv, the inner network's output channels -> num_out_ch, then a sigmoid.
    """

    def __init__(
        self,
        inner: dict,
        num_in_ch: int = 6,
        num_out_ch: int = 3,
        num_exposure: int = 3,
        ref_idx: Optional[int] = None,
        pad_multiple: Optional[int] = None,
    ) -> None:
        super().__init__()
        for name, value in (('num_in_ch', num_in_ch), ('num_out_ch', num_out_ch), ('num_exposure', num_exposure)):
            _positive_int(value, name)
        if ref_idx is None:
            ref_idx = (num_exposure - 1) // 2
        if isinstance(ref_idx, bool) or not isinstance(ref_idx, int) or not 0 <= ref_idx < num_exposure:
            raise ValueError(f'HDRAdapter: ref_idx must be an integer in [0, {num_exposure}); got {ref_idx!r}.')
        cls, options, in_ch, out_ch, multiple = inner_network_arguments(inner, num_in_ch * num_exposure)
        self.num_in_ch, self.num_out_ch, self.num_exposure, self.ref_idx = num_in_ch, num_out_ch, num_exposure, ref_idx
        self.pad_multiple = multiple if pad_multiple is None else _positive_int(pad_multiple, 'pad_multiple')
        self.inner_type = inner['type']
        self.stem = nn.Conv2d(num_in_ch * num_exposure, in_ch, 3, 1, 1)
        try:
            self.inner = cls(**options)
        except TypeError as error:
            message = f'HDRAdapter: invalid options for inner {self.inner_type}: {options} ({error}).'
            raise ValueError(message) from error
        self.head = nn.Conv2d(out_ch, num_out_ch, 3, 1, 1)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.pad_multiple, -width % self.pad_multiple
        if not pad_h and not pad_w:
            return x
        mode = 'reflect' if pad_h < height and pad_w < width else 'replicate'
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """lq: (B, T, 6, H, W), LDR and HDR-domain in [0, 1] -> (B, 3, H, W) linear HDR in [0, 1] (sigmoid)."""
        if lq.dim() != 5 or lq.shape[1] != self.num_exposure or lq.shape[2] != self.num_in_ch:
            raise ValueError(
                f'HDRAdapter expects lq of shape (B, {self.num_exposure}, {self.num_in_ch}, H, W); '
                f'got {tuple(lq.shape)}.'
            )
        batch, frames, channels, height, width = lq.shape
        features = self.inner(self._pad(self.stem(lq.reshape(batch, frames * channels, height, width))))
        if features.shape[-2:] != self._pad_size(height, width) or features.shape[1] != self.head.in_channels:
            raise ValueError(
                f'HDRAdapter: inner {self.inner_type} returned {tuple(features.shape)} for a padded '
                f'{self._pad_size(height, width)} input of {self.stem.out_channels} channels; it must keep the size '
                f'(scale 1) and return {self.head.in_channels} channels.'
            )
        return torch.sigmoid(self.head(features[..., :height, :width]))

    def _pad_size(self, height: int, width: int) -> tuple:
        return height + (-height % self.pad_multiple), width + (-width % self.pad_multiple)
