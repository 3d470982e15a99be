"""The network input of one tile, built from a bracket's frames as they are held (uint8 / uint16 as decoded, or
float32) when the tile is fused, so a tiled fusion never builds the full-resolution input (T x 6 x H x W float32).

Each row of tiles converts (and, for aligned frames, warps: :func:`~lffnet_arch.deploy.align.warp_rows`) the rows
it covers of every frame to float32 once; each tile of the row crops those bands and builds its input with
:func:`~lffnet_arch.hdr_input.network_input` and the bracket's response, exactly as the whole image's input is
built, so a tile's input equals the same crop of the whole input.
"""

from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch

from lffnet_arch.deploy.align import Warp, warp_rows
from lffnet_arch.hdr_input import network_input
from lffnet_arch.response.curves import Response

__all__ = ['TileInputs']


class TileInputs:
    """``inputs(top, left, height, width)`` -> the (1, T, 6, height, width) network input of that region.

    Args:
        frames (sequence of np.ndarray): T RGB frames (H, W, 3), uint8 / uint16 or float32 in [0, 1], in the
            network's frame order.
        times (np.ndarray): Their exposure times (t = 1 for the shortest).
        response (Response): The inverse camera response the frames are linearised with.
        warps (sequence of Warp | None, optional): Each frame's warp onto the reference (None: as it is).
    """

    def __init__(
        self,
        frames: Sequence[np.ndarray],
        times: np.ndarray,
        response: Response,
        warps: Optional[Sequence[Optional[Warp]]] = None,
    ) -> None:
        self.frames = list(frames)
        self.times = times
        self.response = response
        self.warps = list(warps) if warps is not None else [None] * len(self.frames)
        self.height, self.width = self.frames[0].shape[:2]
        self._rows: Optional[tuple] = None  # (top, bottom) of the bands held
        self._bands: list = []

    def bands(self, top: int, bottom: int) -> list[np.ndarray]:
        """The frames' rows ``top:bottom``, aligned, as float32 (rows, W, 3); the last rows asked for are kept for
        the next call (the tiles of one row share them) and released when other rows are asked for."""
        if self._rows != (top, bottom):
            self._bands, self._rows = [], None  # release the previous row's bands before making the next
            self._bands = [warp_rows(frame, warp, top, bottom) for frame, warp in zip(self.frames, self.warps)]
            self._rows = (top, bottom)
        return self._bands

    def release(self) -> None:
        """Drop the bands held."""
        self._bands, self._rows = [], None

    def __call__(self, top: int, left: int, height: int, width: int) -> torch.Tensor:
        crops = [band[:, left : left + width] for band in self.bands(top, top + height)]
        return network_input(crops, self.times, response=self.response)
