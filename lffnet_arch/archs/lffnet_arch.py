"""LFFNet: lightweight attention-guided network with frequency-domain fusion (Park, Lee and Cho)."""

from collections.abc import Mapping
from functools import partial
from typing import Optional

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from lffnet_arch.archs.attention_hdr import AttentionGuidedHDRNet
from lffnet_arch.archs.doconv import DOConv2d
from lffnet_arch.archs.rfft import RFFTBlock

__all__ = ['LFFNet']

DOCONV_PLACEMENTS = ('fusion', 'rfft', 'none')


@ARCH_REGISTRY.register()
class LFFNet(AttentionGuidedHDRNet):
    """AHDRNet's alignment network with RFFT fusion blocks and DO-Conv layers.

    Parameters at the defaults: 995,459 (``doconv='fusion'`` or ``'rfft'``), 964,355 (``'none'``, and after
    :func:`~lffnet_arch.archs.fold_doconv`); 31,104 more of each with ``official_unused_convs=True``, which gives the
    paper's 1,069,315 and 1,038,211.

    Args:
        num_in_ch (int): Channels per frame (LDR and HDR-domain RGB). Default: 6.
        num_out_ch (int): Output channels. Default: 3.
        num_exposure (int): Frames T >= 2. Default: 3.
        ref_idx (int | None): Reference frame index; None (default) takes (T - 1) // 2, i.e. 1 for T = 3.
        num_feat (int): Feature channels. Default: 64.
        num_block (int): RFFT blocks. Default: 3.
        doconv (str): Where DO-Conv replaces plain convs: ``'fusion'`` (the merge, global-feature-fusion and
            reconstruction convs; the paper's model), ``'rfft'`` (the 3x3 convs inside the RFFT blocks; an equally
            valid reading of the paper with the same count) or ``'none'`` (the "baseline w/ RFFT" ablation).
            Default: 'fusion'.
        official_unused_convs (bool): Add the two convs the official AHDRNet never calls. Default: False.
        ref_skip (bool): Correct the reference frame's HDR-domain image instead of predicting the HDR image
            from scratch (:class:`~lffnet_arch.archs.attention_hdr.AttentionGuidedHDRNet`). Default: False.
        head (str): ``'image'`` (the paper's) or ``'merge'``: per-pixel merge weights over the frames, exposure-
            equivariant (:mod:`lffnet_arch.archs.merge`). Default: 'image'.
    """

    # Peak memory of one fp32 forward pass per input pixel at num_feat = 64, T = 3 (see archs/memory.py).
    FORWARD_BYTES_PER_PIXEL = 5200

    def __init__(
        self,
        num_in_ch: int = 6,
        num_out_ch: int = 3,
        num_exposure: int = 3,
        ref_idx: Optional[int] = None,
        num_feat: int = 64,
        num_block: int = 3,
        doconv: str = 'fusion',
        official_unused_convs: bool = False,
        ref_skip: bool = False,
        head: str = 'image',
    ) -> None:
        if doconv not in DOCONV_PLACEMENTS:
            raise ValueError(f'doconv must be one of {DOCONV_PLACEMENTS}, got {doconv!r}.')
        super().__init__(
            num_in_ch,
            num_out_ch,
            num_exposure,
            ref_idx,
            num_feat,
            num_block,
            official_unused_convs,
            make_block=partial(RFFTBlock, doconv=doconv == 'rfft'),
            fusion_conv=DOConv2d if doconv == 'fusion' else nn.Conv2d,
            ref_skip=ref_skip,
            head=head,
        )
        self.doconv = doconv

    @classmethod
    def options_from_state_dict(cls, state_dict: Mapping, source: str = 'checkpoint') -> Optional[dict]:
        """The options (without ``type``) that rebuild the LFFNet of ``state_dict``, ``doconv`` included; None when
        it is not one."""
        if 'conv_first.weight' not in state_dict or 'fusion_blocks.0.frequency.0.weight' not in state_dict:
            return None
        if 'conv_merge.W' in state_dict:
            doconv = 'fusion'
        elif 'fusion_blocks.0.spatial.0.W' in state_dict:
            doconv = 'rfft'
        else:
            doconv = 'none'
        return {**cls.skeleton_options(state_dict, source), 'doconv': doconv}
