"""AHDRNet: attention-guided network for ghost-free HDR imaging (Yan et al., CVPR 2019), the LFFNet baseline."""

import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Optional

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from lffnet_arch.archs.attention_hdr import AttentionGuidedHDRNet

__all__ = ['AHDRNet', 'DRDB', 'convert_official_ahdrnet_state_dict', 'official_ahdrnet_keys']


class DRDB(nn.Module):
    """Dilated residual dense block [RDB]: dense 3x3 convs with dilation 2 and ReLU, 1x1 fusion, residual.

    Args:
        num_feat (int): Input and output channels. Default: 64.
        num_layer (int): Dense layers. Default: 6.
        growth (int): Channels each dense layer adds. Default: 32.
    """

    def __init__(self, num_feat: int = 64, num_layer: int = 6, growth: int = 32) -> None:
        super().__init__()
        self.dense_layers = nn.ModuleList(
            nn.Conv2d(num_feat + i * growth, growth, 3, padding=2, dilation=2) for i in range(num_layer)
        )
        self.conv_fuse = nn.Conv2d(num_feat + num_layer * growth, num_feat, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        dense = x
        for conv in self.dense_layers:
            dense = torch.cat([dense, F.relu(conv(dense))], dim=1)
        return x + self.conv_fuse(dense)


@ARCH_REGISTRY.register()
class AHDRNet(AttentionGuidedHDRNet):
    """AHDRNet, exactly as the official code (1,441,283 parameters; 1,515,139 with the unused official convs).

    Fusion blocks are dilated residual dense blocks (:class:`DRDB`); all convs are plain with bias. Conv weights
    are Kaiming-normal initialised as in the official training script.

    Args:
        num_in_ch (int): Channels per frame (LDR and HDR-domain RGB). Default: 6.
        num_out_ch (int): Output channels. Default: 3.
        num_exposure (int): Frames T >= 2. Default: 3.
        ref_idx (int | None): Reference frame index; None (default) takes (T - 1) // 2, i.e. 1 for T = 3.
        num_feat (int): Feature channels. Default: 64.
        num_block (int): DRDBs. Default: 3.
        official_unused_convs (bool): Add the official attConv1/attConv3, which are never called. Default: False.
        ref_skip (bool): Correct the reference frame's HDR-domain image instead of predicting the HDR image
            from scratch (:class:`~lffnet_arch.archs.attention_hdr.AttentionGuidedHDRNet`). Default: False.
        head (str): ``'image'`` (the paper's) or ``'merge'``: per-pixel merge weights over the frames, exposure-
            equivariant (:mod:`lffnet_arch.archs.merge`). Default: 'image'.
    """

    # Peak memory of one fp32 forward pass per input pixel at num_feat = 64, T = 3 (see archs/memory.py).
    FORWARD_BYTES_PER_PIXEL = 5600

    def __init__(
        self,
        num_in_ch: int = 6,
        num_out_ch: int = 3,
        num_exposure: int = 3,
        ref_idx: Optional[int] = None,
        num_feat: int = 64,
        num_block: int = 3,
        official_unused_convs: bool = False,
        ref_skip: bool = False,
        head: str = 'image',
    ) -> None:
        super().__init__(
            num_in_ch,
            num_out_ch,
            num_exposure,
            ref_idx,
            num_feat,
            num_block,
            official_unused_convs,
            make_block=DRDB,
            ref_skip=ref_skip,
            head=head,
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0, mode='fan_in')
        self.init_reference_skip()

    @classmethod
    def options_from_state_dict(cls, state_dict: Mapping, source: str = 'checkpoint') -> Optional[dict]:
        """The options (without ``type``) that rebuild the AHDRNet of ``state_dict``; None when it is not one."""
        if 'conv_first.weight' not in state_dict or 'fusion_blocks.0.conv_fuse.weight' not in state_dict:
            return None
        return cls.skeleton_options(state_dict, source)

    @staticmethod
    def foreign_format_advice(state_dict: Mapping) -> Optional[str]:
        """What to do with a state dict that has the official AHDRNet key names (None when it has ours)."""
        if 'conv1.weight' in state_dict and 'att11.weight' in state_dict:
            return (
                'has the official AHDRNet key names; convert it first with '
                'scripts/model_conversion/convert_official_ahdrnet.py.'
            )
        return None


# ---------------------------------------------------------------- the official code's weights (qingsenyangit/AHDRNet)


def official_ahdrnet_keys(num_block: int = 3, num_layer: int = 6) -> list:
    """Parameter names of the official AHDRNet (qingsenyangit/AHDRNet ``model.py``), without ``module.``."""
    convs = ['conv1', 'att11', 'att12', 'attConv1', 'att31', 'att32', 'attConv3', 'conv2']
    for block in range(1, num_block + 1):
        convs += [f'RDB{block}.dense_layers.{j}.conv' for j in range(num_layer)] + [f'RDB{block}.conv_1x1']
    convs += ['GFF_1x1', 'GFF_3x3', 'conv_up', 'conv3']
    return [f'{conv}.{kind}' for conv in convs for kind in ('weight', 'bias')]


# Official conv name -> ours (attention_hdr.py, this file). Frame 1 is the short exposure (att11/att12, attention.0),
# frame 3 the long one (att31/att32, attention.1); frame 2 is the reference.
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


def convert_official_ahdrnet_state_dict(
    state_dict: Mapping, num_block: int = 3, num_layer: int = 6, source: str = 'checkpoint'
) -> dict[str, torch.Tensor]:
    """Rename an official AHDRNet state dict to ours; loads into ``AHDRNet(official_unused_convs=True)`` strictly.

    Args:
        state_dict (Mapping): Official parameter names (``conv1.weight``, ``att11.bias``, ``RDB1.conv_1x1.weight``,
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
    state_dict = {k[len('module.') :] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    expected = official_ahdrnet_keys(num_block, num_layer)
    missing = [k for k in expected if k not in state_dict]
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise KeyError(
            f'{source} is not an official AHDRNet state dict ({num_block} DRDBs of {num_layer} layers): '
            f'missing keys {missing}; unexpected keys {unexpected}.'
        )
    converted = OrderedDict()
    for key in expected:
        conv, kind = key.rsplit('.', 1)
        converted[f'{_our_conv_name(conv)}.{kind}'] = state_dict[key]
    return converted
