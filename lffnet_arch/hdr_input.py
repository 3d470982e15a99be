"""The networks' input contract: how a bracket of LDR frames and exposure times becomes the tensor both networks
take, the reference-frame baseline read back from it, and the mu-law tonemap every loss and metric compares in.

Every frame enters twice, as its LDR values L in [0, 1] and as its HDR-domain image L ** gamma / t (docs/design.md
§1); the training datasets, validation, the quality evaluation and inference all build the input here.
"""

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
import torch

if TYPE_CHECKING:
    from lffnet_arch.response import Response

__all__ = ['MU', 'ldr_to_hdr', 'mu_law', 'network_input', 'reference_frame_hdr']

MU = 5000.0
ArrayOrTensor = Union[np.ndarray, torch.Tensor]


def mu_law(x: ArrayOrTensor, mu: float = MU) -> ArrayOrTensor:
    """Mu-law tonemapping T(x) = log(1 + mu x) / log(1 + mu) for linear HDR values in [0, 1]."""
    if isinstance(x, torch.Tensor):
        return torch.log1p(mu * x) / math.log1p(mu)
    return (np.log1p(mu * x) / np.log1p(mu)).astype(np.result_type(x, np.float32), copy=False)


def ldr_to_hdr(ldr: ArrayOrTensor, exposure: float, gamma: float = 2.2) -> ArrayOrTensor:
    """HDR-domain image H = L ** gamma / t of an LDR frame L in [0, 1] with exposure time t."""
    return ldr**gamma / exposure


def network_input(
    ldrs: Sequence[np.ndarray], exposures: Sequence[float], gamma: float = 2.2, response: Optional['Response'] = None
) -> torch.Tensor:
    """The networks' input for one bracket: lq (1, T, 6, H, W) = cat(L_i, g(L_i) / t_i) per frame.

    The one linearisation of training, validation and inference: g is ``response`` (a camera's inverse response,
    :class:`lffnet_arch.response.Response`, given or calibrated from the bracket), or L ** ``gamma`` without one. A
    gamma response is applied as L ** gamma, so the Kalantari protocol's input is the same whichever way it is
    given.

    Args:
        ldrs (sequence of np.ndarray): T float RGB frames (H, W, 3) in [0, 1], in the network's frame order.
        exposures (sequence of float): T exposure times, in the units the network was trained with (t = 1 for the
            shortest frame).
        gamma (float): Gamma of the LDR-to-HDR-domain mapping when no ``response`` is given. Default: 2.2.
        response (Response, optional): The inverse camera response. Default: None (``gamma``).
    """
    if response is not None and response.gamma_value is not None:
        gamma, response = response.gamma_value, None
    ldr = torch.from_numpy(np.stack([np.asarray(x, dtype=np.float32) for x in ldrs])).permute(0, 3, 1, 2)
    times = torch.as_tensor(np.asarray(exposures, dtype=np.float32)).view(-1, 1, 1, 1)
    if response is None:
        hdr = ldr_to_hdr(ldr, times, gamma)
    else:
        linear = np.stack([response.linearise(np.asarray(x, dtype=np.float32)) for x in ldrs])
        hdr = torch.from_numpy(linear).permute(0, 3, 1, 2) / times
    return torch.cat([ldr, hdr], dim=1).unsqueeze(0)


def reference_frame_hdr(lq: torch.Tensor, ref_idx: Optional[int] = None) -> torch.Tensor:
    """The reference-frame baseline: the reference frame's HDR-domain image L_ref ** gamma / t_ref, as the network
    sees it (channels 3:6 of its input). Validation and the quality evaluation score it beside the networks.

    Args:
        lq (Tensor): Network input (T, 6, H, W) or (B, T, 6, H, W), e.g. from :func:`network_input`.
        ref_idx (int, optional): Reference frame; None takes the middle one, (T - 1) // 2.

    Returns:
        Tensor: (3, H, W) or (B, 3, H, W), a view of ``lq``.
    """
    num_frames = lq.shape[-4]
    frame = (num_frames - 1) // 2 if ref_idx is None else ref_idx
    if not 0 <= frame < num_frames:
        raise ValueError(f'reference_frame_hdr: ref_idx must be in [0, {num_frames - 1}], got {ref_idx}.')
    return lq[..., frame, 3:6, :, :]
