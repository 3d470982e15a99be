"""The attention-guided skeleton shared by AHDRNet and LFFNet: alignment network, fusion network, reconstruction.

Module names follow AHDRNet (Yan et al. 2019) and the LFFNet paper; the official AHDRNet names are given in
brackets where they differ, which is what ``scripts/model_conversion/convert_official_ahdrnet.py`` maps.
"""

from collections.abc import Mapping
from typing import Callable, Optional

import torch
from torch import nn

from lffnet_arch.archs.merge import merge_features, merge_frames, pixel_norm
from lffnet_arch.archs.state_dict import kernel, numbered_children

__all__ = ['HEADS', 'AttentionGuidedHDRNet', 'SpatialAttention', 'check_hdr_input']

HEADS = ('image', 'merge')


def check_hdr_input(lq: torch.Tensor, num_in_ch: int, num_exposure: int) -> None:
    """Raise ``ValueError`` unless ``lq`` is (B, num_exposure, num_in_ch, H, W)."""
    expected = f'(B, T={num_exposure}, C={num_in_ch}, H, W)'
    if lq.dim() != 5:
        raise ValueError(f'lq must have shape {expected}, got a {lq.dim()}-D tensor of shape {tuple(lq.shape)}.')
    if lq.shape[2] != num_in_ch:
        raise ValueError(
            f'lq must have shape {expected}: {num_in_ch} channels per frame (LDR and HDR-domain RGB), '
            f'got {lq.shape[2]} channels (shape {tuple(lq.shape)}).'
        )
    if lq.shape[1] != num_exposure:
        raise ValueError(
            f'lq must have shape {expected}: the network was built for num_exposure={num_exposure} '
            f'frames, got {lq.shape[1]} (shape {tuple(lq.shape)}).'
        )


class SpatialAttention(nn.Module):
    """Attention of one non-reference frame against the reference [att{i}1, att{i}2].

    A = sigmoid(conv(LeakyReLU(conv(cat(F_i, F_ref))))), returns F_i * A.
    """

    def __init__(self, num_feat: int, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.conv_hidden = nn.Conv2d(2 * num_feat, 2 * num_feat, 3, padding=1)
        self.conv_mask = nn.Conv2d(2 * num_feat, num_feat, 3, padding=1)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)  # on a conv output, which backward does not need

    def forward(self, feat: torch.Tensor, ref_feat: torch.Tensor) -> torch.Tensor:
        """feat, ref_feat: (B, C, H, W) -> attended feat (B, C, H, W)."""
        mask = torch.sigmoid(self.conv_mask(self.act(self.conv_hidden(torch.cat([feat, ref_feat], dim=1)))))
        return feat * mask


class AttentionGuidedHDRNet(nn.Module):
    """Attention-guided multi-exposure fusion; subclasses choose the fusion blocks and the fusion convolutions.

    forward: lq (B, T, 6, H, W), each frame's LDR and HDR-domain RGB in [0, 1] -> (B, 3, H, W) linear HDR in [0, 1].

    1. Alignment network: a shared conv extracts features F_i of every frame [conv1]; each non-reference frame is
       gated by a spatial attention map computed against the reference [att11/att12, att31/att32].
    2. Fusion network: merge conv over cat(F_1 * A_1, F_ref, F_3 * A_3) (frames in order) [conv2], ``num_block``
       fusion blocks in series [RDB1..3], global feature fusion of all block outputs [GFF_1x1, GFF_3x3] plus a
       global residual from the reference features F_ref.
    3. Reconstruction: conv [conv_up], conv to RGB and sigmoid [conv3]. With ``ref_skip`` the sigmoid's input
       is the reconstruction plus logit(H_ref), the reference frame's HDR-domain image (channels
       ``num_out_ch:2 * num_out_ch`` of its input): the network predicts a correction of the reference in log-odds,
       close to a log-domain correction for the small values of linear HDR, and starts as the reference frame
       (the reconstruction conv is zero-initialised). Not in the papers; see docs/design.md.
    4. With ``head='merge'`` (not in the papers) the network sees each frame as its LDR values and its log ratio to
       the reference, and the last conv predicts a correction of the noise prior's log weight of every frame
       instead of an image, from the fused features scaled to unit RMS per pixel (the fusion blocks' features reach
       hundreds, where a softmax saturates and stops learning): the output is a per-pixel convex combination of the
       frames' HDR-domain images
       (:mod:`lffnet_arch.archs.merge`), exposure-equivariant, and the noise-weighted merge where the frames agree.

    Args:
        num_in_ch (int): Channels per frame. Default: 6.
        num_out_ch (int): Output channels. Default: 3.
        num_exposure (int): Frames T >= 2. Default: 3.
        ref_idx (int | None): Index of the reference frame in [0, T); None takes the middle frame (T - 1) // 2,
            which is 1 for T = 3.
        num_feat (int): Feature channels. Default: 64.
        num_block (int): Fusion blocks. Default: 3.
        official_unused_convs (bool): Add the two convs [attConv1, attConv3] the official AHDRNet defines and never
            calls (one per non-reference frame), to reproduce the published counts and load official weights.
        make_block (callable): ``make_block(num_feat)`` builds one fusion block.
        fusion_conv (callable): ``fusion_conv(in_ch, out_ch, kernel_size, padding=...)`` builds the fusion and
            reconstruction convs (``nn.Conv2d`` or ``DOConv2d``).
        ref_skip (bool): Predict a correction of the reference frame's HDR-domain image (see 3.). Marked in the
            state dict by a ``reference_skip`` buffer holding ``ref_idx``, so weights load only into a network
            built the same way, with the same reference.
            Default: False (the papers' networks).
        head (str): ``'image'``, the papers' reconstruction of the HDR image, or ``'merge'``, per-pixel merge weights
            over the frames (see 4.); marked in the state dict by a ``merge_head`` buffer holding ``ref_idx``.
            The parameters are those of ``'image'`` when T equals ``num_out_ch``. Default: 'image'.
    """

    # logit(H_ref) clamps H_ref to [REF_SKIP_EPS, 1 - REF_SKIP_EPS]; mu-law(1e-6) is 6e-4, below what PSNR-mu sees.
    REF_SKIP_EPS = 1e-6

    def __init__(
        self,
        num_in_ch: int,
        num_out_ch: int,
        num_exposure: int,
        ref_idx: Optional[int],
        num_feat: int,
        num_block: int,
        official_unused_convs: bool,
        make_block: Callable[[int], nn.Module],
        fusion_conv: Callable[..., nn.Module] = nn.Conv2d,
        ref_skip: bool = False,
        head: str = 'image',
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f'head must be one of {HEADS}, got {head!r}.')
        if head == 'merge' and (ref_skip or num_in_ch != 2 * num_out_ch):
            raise ValueError(
                f"head=merge merges the frames' HDR-domain images: it needs num_in_ch = 2 * num_out_ch and no "
                f'ref_skip; got num_in_ch={num_in_ch}, num_out_ch={num_out_ch}, ref_skip={ref_skip}.'
            )
        if num_exposure < 2:
            raise ValueError(f'num_exposure must be >= 2, got {num_exposure}.')
        if ref_idx is None:
            ref_idx = (num_exposure - 1) // 2
        if not 0 <= ref_idx < num_exposure:
            raise ValueError(
                f'ref_idx must be in [0, {num_exposure - 1}] for num_exposure={num_exposure}, got {ref_idx}.'
            )
        if num_block < 1:
            raise ValueError(f'num_block must be >= 1, got {num_block}.')
        if ref_skip and num_in_ch != 2 * num_out_ch:
            raise ValueError(
                f'ref_skip needs each frame as LDR and HDR-domain images, num_in_ch = 2 * num_out_ch; got '
                f'num_in_ch={num_in_ch}, num_out_ch={num_out_ch}.'
            )
        self.ref_skip = bool(ref_skip)
        self.head = head
        self.num_in_ch = num_in_ch
        self.num_exposure = num_exposure
        self.num_feat = num_feat
        self.ref_idx = ref_idx

        # Alignment network.
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.attention = nn.ModuleList(SpatialAttention(num_feat) for _ in range(num_exposure - 1))
        if official_unused_convs:
            self.unused_att_convs = nn.ModuleList(
                nn.Conv2d(num_feat, num_feat, 3, padding=1) for _ in range(num_exposure - 1)
            )
        self.lrelu = nn.LeakyReLU(0.01, inplace=True)

        # Fusion network.
        self.conv_merge = fusion_conv(num_exposure * num_feat, num_feat, 3, padding=1)
        self.fusion_blocks = nn.ModuleList(make_block(num_feat) for _ in range(num_block))
        self.gff_1x1 = fusion_conv(num_block * num_feat, num_feat, 1, padding=0)
        self.gff_3x3 = fusion_conv(num_feat, num_feat, 3, padding=1)

        # Reconstruction.
        self.conv_up = fusion_conv(num_feat, num_feat, 3, padding=1)
        self.conv_last = fusion_conv(num_feat, num_exposure if head == 'merge' else num_out_ch, 3, padding=1)
        if self.ref_skip:
            self.register_buffer('reference_skip', torch.tensor(float(ref_idx)))
        if head == 'merge':
            self.register_buffer('merge_head', torch.tensor(float(ref_idx)))
        self.init_reference_skip()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected, errors):
        for name, built in (('reference_skip', self.ref_skip), ('merge_head', self.head == 'merge')):
            key = prefix + name
            if built and key in state_dict and float(state_dict[key]) != self.ref_idx:
                errors.append(
                    f'{key}: the weights were trained with reference frame {float(state_dict[key]):g}, this network '
                    f'was built with ref_idx={self.ref_idx}; build it with ref_idx={float(state_dict[key]):g}.'
                )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected, errors)

    @torch.no_grad()
    def init_reference_skip(self) -> None:
        """With ``ref_skip``, zero the reconstruction conv so the untrained network returns the reference frame;
        with the merge head, so it returns the noise prior's merge (subclasses that re-initialise their convs call it
        again). Does nothing to the papers' networks."""
        if self.ref_skip or self.head == 'merge':
            for param in self.conv_last.parameters():
                param.zero_()

    @staticmethod
    def skeleton_options(state_dict: Mapping, source: str = 'checkpoint') -> dict:
        """The options of the shared skeleton that a state dict of ours determines.

        ``ref_idx`` is read from the ``reference_skip`` or ``merge_head`` buffer of a network with either; otherwise
        it leaves no trace in the weights and is set to the default (T - 1) // 2 (docs/design.md §10).

        Returns:
            dict: ``num_in_ch``, ``num_out_ch``, ``num_exposure``, ``ref_idx``, ``num_feat``, ``num_block``,
            ``official_unused_convs``, ``ref_skip`` and ``head``.
        """
        conv_first = kernel(state_dict, 'conv_first', source)
        num_exposure = len(numbered_children(state_dict, 'attention')) + 1
        merge = 'merge_head' in state_dict
        marker = state_dict.get('merge_head', state_dict.get('reference_skip'))
        return {
            'num_in_ch': conv_first.shape[1],
            'num_out_ch': conv_first.shape[1] // 2 if merge else kernel(state_dict, 'conv_last', source).shape[0],
            'num_exposure': num_exposure,
            'ref_idx': int(marker) if marker is not None else (num_exposure - 1) // 2,
            'num_feat': conv_first.shape[0],
            'num_block': len(numbered_children(state_dict, 'fusion_blocks')),
            'official_unused_convs': any(k.startswith('unused_att_convs.') for k in state_dict),
            'ref_skip': 'reference_skip' in state_dict,
            'head': 'merge' if merge else 'image',
        }

    def align(self, lq: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """lq (B, T, C_in, H, W) -> (T feature maps (B, C, H, W) with non-reference ones attended, F_ref)."""
        b, t, c, h, w = lq.shape
        feats = self.lrelu(self.conv_first(lq.reshape(b * t, c, h, w))).reshape(b, t, -1, h, w).unbind(1)
        ref_feat = feats[self.ref_idx]
        others = iter(self.attention)
        aligned = [feat if i == self.ref_idx else next(others)(feat, ref_feat) for i, feat in enumerate(feats)]
        return aligned, ref_feat

    def features(self, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """lq (B, T, C_in, H, W) -> (the merged features entering the fusion blocks, F_ref), both (B, C, H, W).

        Every operation up to here is local (3x3 convolutions), as is :meth:`reconstruct`; only the fusion blocks
        may see the whole image (:mod:`lffnet_arch.strips` runs the three stages separately)."""
        aligned, ref_feat = self.align(merge_features(lq, self.ref_idx) if self.head == 'merge' else lq)
        return self.conv_merge(torch.cat(aligned, dim=1)), ref_feat

    def global_fusion(self, block_outputs: list[torch.Tensor], ref_feat: torch.Tensor) -> torch.Tensor:
        """The fusion blocks' outputs and F_ref -> fused features: global feature fusion plus the reference skip."""
        return self.gff_3x3(self.gff_1x1(torch.cat(block_outputs, dim=1))) + ref_feat

    def fuse(self, aligned: list[torch.Tensor], ref_feat: torch.Tensor) -> torch.Tensor:
        """Fusion network: T aligned feature maps (B, C, H, W) -> fused features (B, C, H, W)."""
        feat = self.conv_merge(torch.cat(aligned, dim=1))
        block_outputs = []
        for block in self.fusion_blocks:
            feat = block(feat)
            block_outputs.append(feat)
        return self.global_fusion(block_outputs, ref_feat)

    def reconstruct(
        self, fused: torch.Tensor, lq: Optional[torch.Tensor] = None, reference_hdr: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Fused features (B, C, H, W) -> (B, 3, H, W) linear HDR in [0, 1]. The merge head reads the input ``lq``,
        the reference skip only the reference frame's HDR-domain image ``reference_hdr`` (B, 3, H, W), taken from
        ``lq`` when not given; the papers' networks read neither."""
        if self.head == 'merge':
            return merge_frames(lq, self.conv_last(self.conv_up(pixel_norm(fused))), self.ref_idx)
        out = self.conv_last(self.conv_up(fused))
        if self.ref_skip:
            c = out.shape[1]
            ref = reference_hdr if reference_hdr is not None else lq[:, self.ref_idx, c : 2 * c]
            ref = ref.clamp(self.REF_SKIP_EPS, 1 - self.REF_SKIP_EPS)
            out = out + (torch.log(ref) - torch.log1p(-ref))  # logit, in operators every exporter knows
        return torch.sigmoid(out)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """lq: (B, T, 6, H, W), LDR and HDR-domain in [0, 1] -> (B, 3, H, W) linear HDR in [0, 1]."""
        check_hdr_input(lq, self.num_in_ch, self.num_exposure)
        feat, ref_feat = self.features(lq)
        block_outputs = []
        for block in self.fusion_blocks:
            feat = block(feat)
            block_outputs.append(feat)
        return self.reconstruct(self.global_fusion(block_outputs, ref_feat), lq)
