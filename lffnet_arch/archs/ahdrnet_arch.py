"""AHDRNet: attention-guided network for ghost-free HDR imaging (Yan et al., CVPR 2019), the LFFNet baseline."""

from typing import Optional

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from lffnet_arch.archs.attention_hdr import AttentionGuidedHDRNet

__all__ = ['AHDRNet', 'DRDB']


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
    """

    def __init__(
        self,
        num_in_ch: int = 6,
        num_out_ch: int = 3,
        num_exposure: int = 3,
        ref_idx: Optional[int] = None,
        num_feat: int = 64,
        num_block: int = 3,
        official_unused_convs: bool = False,
    ) -> None:
        super().__init__(
            num_in_ch, num_out_ch, num_exposure, ref_idx, num_feat, num_block, official_unused_convs, make_block=DRDB
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0, mode='fan_in')
