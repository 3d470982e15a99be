"""The merge head: the network chooses, per pixel, where to take radiance from, and never invents a brightness.

With ``head: merge`` (:class:`~lffnet_arch.archs.attention_hdr.AttentionGuidedHDRNet`) the output is a convex
combination of the frames' HDR-domain images H_i = g(L_i) / t_i, which in static, unclipped regions all estimate the
same radiance:

    out = sum_i w_i H_i,    w_i = softmax_i(z_i),
    z_i = prior_i + log(v_i + CLIPPED_WEIGHT) + consistency_i + v_i correction_i.

- ``prior_i`` is the log inverse variance of H_i under shot and read noise, 2 log s_i - log(a s_i + b) with s_i the
  frame's signal level, so a merge that starts from it takes shadows from the long frame (noise-aware merging).
- ``v_i`` is 0 where frame i clips (any channel of L_i at or above ``CLIP_HIGH``) and 1 below ``CLIP_LOW``; the
  shortest frame (index 0, frames in exposure order) is always valid. A clipped frame keeps a weight of
  ``CLIPPED_WEIGHT`` (1e-4) of a valid one's: what it says, that the radiance is at least its clipped value, is the
  last resort where every valid frame contradicts it (a moving object in the short frame over a blown-out window).
- ``consistency_i`` (:func:`consistency`) takes the weight away from a frame that contradicts the reference frame
  beyond its noise: a classical deghosting prior.
- ``correction_i`` is what the network learns (its last conv, zero at initialisation): where motion or misalignment
  makes a frame disagree, it moves the weight to the frames that agree. It counts in proportion to v_i: the
  network can never raise a clipped frame's weight.

Two properties follow for every weight the network may predict (docs/design.md): scaling the scene radiance by 2^k
scales the output by 2^k wherever nothing new clips, and in static unclipped regions of a noise-free bracket the
output is the frames' common radiance, the merge itself. The features the network sees are scale-free as well: each
frame's LDR values (well-exposedness) and its log2 ratio to the reference frame (what disagrees).
"""

import math
from typing import Optional

import torch

__all__ = [
    'CLIP_HIGH',
    'CLIP_LOW',
    'CLIPPED_WEIGHT',
    'consistency',
    'merge_features',
    'merge_frames',
    'merge_weights',
    'noise_prior',
    'pixel_norm',
    'validity',
]

CLIP_LOW, CLIP_HIGH = 0.90, 0.98  # code values where a frame's weight starts to fall and where it is 0
SHOT_NOISE, READ_NOISE = 1e-3, 3e-3  # the prior's noise: variance a * s + b with a = shot, b = read ** 2
GAMMA = 2.2  # the prior's signal level s = mean_c(L ** 2.2): the weights' prior only, never the output
RATIO_EPS, RATIO_STOPS = 1e-6, 4.0  # the log2 ratio feature: offset and the stops it is clamped to
# The consistency prior: disagreement with the reference frame beyond noise, in stops, that costs a frame a factor e of
# its weight; and the offset of its log ratio. CLIPPED_WEIGHT: a clipped frame's weight relative to a valid one's.
# Chosen on the training recipe's validation scenes (held-out photographs, Kalantari style), untrained merge, PSNR-mu:
# the reference frame 37.36 dB; symmetric consistency only where the reference is valid, clipped frames at weight 0:
# 40.73; one-sided where it clips: 41.44; and a clipped frame at weight 1e-4: 48.60 (1e-3 to 1e-6 within 0.15 dB;
# CONSISTENCY_STOPS 0.05 to 0.2 within 0.2 dB).
CONSISTENCY_STOPS, CONSISTENCY_EPS, CLIPPED_WEIGHT = 0.1, 1e-4, 1e-4


def _frames(lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """lq (B, T, 2C, H, W) -> LDR (B, T, C, H, W) and HDR-domain (B, T, C, H, W) views."""
    c = lq.shape[2] // 2
    return lq[:, :, :c], lq[:, :, c:]


def merge_features(lq: torch.Tensor, ref_idx: int) -> torch.Tensor:
    """The network's view of the bracket with the merge head: per frame, cat(L_i, r_i) (B, T, 2C, H, W), where
    r_i = clamp(log2((H_i + eps) / (H_ref + eps)), +-4 stops) / 4 is 0 wherever frame i agrees with the reference."""
    ldr, hdr = _frames(lq)
    ref = hdr[:, ref_idx : ref_idx + 1]
    ratio = torch.log2((hdr + RATIO_EPS) / (ref + RATIO_EPS)).clamp(-RATIO_STOPS, RATIO_STOPS) / RATIO_STOPS
    return torch.cat([ldr, ratio], dim=2)


def pixel_norm(feat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """feat (B, C, H, W) scaled to unit root-mean-square over its channels at every pixel: no parameters, and the
    same in a tile as in the whole image. It keeps the correction's logits where the softmax still learns."""
    return feat * torch.rsqrt(feat.float().pow(2).mean(dim=1, keepdim=True).to(feat.dtype) + eps)


def _unclipped(codes: torch.Tensor) -> torch.Tensor:
    """How far code values are from clipping: 1 below CLIP_LOW, 0 from CLIP_HIGH, linear between."""
    return ((CLIP_HIGH - codes) / (CLIP_HIGH - CLIP_LOW)).clamp(0.0, 1.0)


def _signal(ldr: torch.Tensor) -> torch.Tensor:
    """ldr (B, T, C, H, W) -> each frame's signal level (B, T, 1, H, W): mean_c L^GAMMA."""
    return ldr.clamp(0.0, 1.0).pow(GAMMA).mean(dim=2, keepdim=True)


def validity(ldr: torch.Tensor) -> torch.Tensor:
    """ldr (B, T, C, H, W) -> v (B, T, 1, H, W): 1 below CLIP_LOW, 0 from CLIP_HIGH (brightest channel), linear
    between; the shortest frame, index 0, is 1 everywhere."""
    brightest = ldr.amax(dim=2, keepdim=True)
    v = _unclipped(brightest)
    return torch.cat([torch.ones_like(v[:, :1]), v[:, 1:]], dim=1)


def noise_prior(ldr: torch.Tensor) -> torch.Tensor:
    """ldr (B, T, C, H, W) -> the log inverse-variance weight of each frame (B, T, 1, H, W), up to a constant.

    For one radiance, frame i's signal is s_i = t_i E and the variance of H_i = s_i / t_i is (a s_i + b) / t_i^2,
    so 1 / var = E^2 s_i^2 / (a s_i + b): the common E^2 drops out of the normalised weights.
    """
    signal = _signal(ldr)
    return 2.0 * torch.log(signal + READ_NOISE**2) - torch.log(SHOT_NOISE * signal + READ_NOISE**2)


def consistency(ldr: torch.Tensor, hdr: torch.Tensor, ref_idx: int) -> torch.Tensor:
    """The log weight (B, T, 1, H, W) that a frame loses where it contradicts the reference frame: -(d_i / sigma_i)^2.

    - d_i is the largest disagreement over the channels, in stops. Where the reference's channel is valid it is
      |log2(H_i / H_ref)|. Where it clips, H_ref is only a lower bound of the radiance, so only a frame darker than
      it disagrees (by log2(H_ref / H_i)): a moving object in the short frame over a blown-out window is a ghost.
      Between CLIP_LOW and CLIP_HIGH the two blend.
    - sigma_i is the disagreement that noise alone explains (the prior's shot and read noise of both frames, in
      stops) plus CONSISTENCY_STOPS.
    - The reference frame itself loses nothing.

    Scale-free (a ratio of radiances and the LDR values), and 0 wherever the frames agree: the merge's properties hold
    as without it. It is a classical deghosting prior: without it the untrained merge averages moving objects' ghosts
    in, 10 dB below the reference frame on held-out Kalantari-style scenes, and training collapses onto the reference
    frame."""
    ratio = torch.log2((hdr + CONSISTENCY_EPS) / (hdr[:, ref_idx : ref_idx + 1] + CONSISTENCY_EPS))
    ref_valid = _unclipped(ldr[:, ref_idx : ref_idx + 1])  # per channel
    disagreement = (ref_valid * ratio.abs() + (1.0 - ref_valid) * torch.relu(-ratio)).amax(dim=2, keepdim=True)
    signal = _signal(ldr)
    relative_var = (SHOT_NOISE * signal + READ_NOISE**2) / (signal + READ_NOISE) ** 2  # of H_i, per frame
    noise_stops = torch.sqrt(relative_var + relative_var[:, ref_idx : ref_idx + 1]) / math.log(2.0)
    penalty = -(disagreement**2) / (noise_stops**2 + CONSISTENCY_STOPS**2)
    penalty[:, ref_idx] = 0.0
    return penalty


def merge_weights(
    ldr: torch.Tensor, correction: torch.Tensor, hdr: Optional[torch.Tensor] = None, ref_idx: Optional[int] = None
) -> torch.Tensor:
    """The merge weights (B, T, 1, H, W), summing to 1 over T, from the LDR frames and the network's correction
    (B, T, H, W) of the prior's log weights; with the HDR-domain frames and the reference index, the prior includes
    the :func:`consistency` with the reference frame."""
    valid = validity(ldr)
    # The correction counts in proportion to validity: the network can take weight from a clipped frame, never give it.
    logits = noise_prior(ldr) + valid * correction.unsqueeze(2).float() + torch.log(valid + CLIPPED_WEIGHT)
    if hdr is not None:
        logits = logits + consistency(ldr, hdr, ref_idx)
    return torch.softmax(logits, dim=1)  # finite: the shortest frame is always valid


def merge_frames(lq: torch.Tensor, correction: torch.Tensor, ref_idx: Optional[int] = None) -> torch.Tensor:
    """lq (B, T, 2C, H, W) and the correction (B, T, H, W) -> the merged HDR image (B, C, H, W); with ``ref_idx``
    the weights' prior includes the consistency with that reference frame."""
    ldr, hdr = _frames(lq.float())
    weights = merge_weights(ldr, correction, hdr if ref_idx is not None else None, ref_idx)
    return (weights * hdr).sum(dim=1)
