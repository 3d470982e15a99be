"""Exact inference in bounded memory: the whole-image forward pass computed a strip of rows at a time.

Tiling (:mod:`lffnet_arch.tiling`) changes what a network with RFFT blocks computes: each block's FFT sees one tile
instead of the image, so a tiled result differs from the whole-image one everywhere inside a tile. This module
computes the whole-image result itself, with memory bounded by a strip of full-width rows:

- **Local stages** (every 3x3 convolution: the alignment network and the merge conv, the blocks' spatial branches,
  the global feature fusion and the reconstruction) run on strips of rows with a halo of as many rows as the stage's
  receptive-field radius on each side, and keep the strip's own rows. Inside the image the halo rows are the real
  neighbours, at the image's top and bottom the strip's zero padding is the image's, so each strip equals the same
  rows of the whole-image stage.
- **The RFFT blocks' frequency branch** is a 2-D real FFT of the whole feature map, a per-frequency 1x1 MLP and the
  inverse FFT. A 2-D FFT is a 1-D FFT along the rows followed by one along the columns, so it runs out of core:
  pass 1 reads strips of rows and transforms each row (``rfft`` along W); pass 2 reads blocks of frequency columns
  (all rows), transforms along H, applies the block's MLP to every frequency and transforms back along H; pass 3
  reads strips of rows again, inverts along W and adds the spatial branch and the residual.
- The feature maps between stages (C x H x W float32 each) live in files in a scratch folder; at most five are held
  at once (the reference features, the merged features or the previous block's output, each finished block's
  output for the global feature fusion, and the spectrum), 128 bytes a pixel each at the shipped width of 32. They
  are read and written with ``pread``/``pwrite``, so they sit in the page cache, not in the process's memory, and
  are removed when the pass ends, also on an error.

A network whose fusion blocks are all local (AHDRNet) runs whole on strips with the halo of its full receptive
field. Only the rounding of the split FFTs and of the per-strip convolutions differs from one whole-image pass
(max. abs. differences near 1e-6 in fp32).
"""

import concurrent.futures
import os
import re
import shutil
import tempfile
import warnings
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from lffnet_arch.archs.attention_hdr import AttentionGuidedHDRNet
from lffnet_arch.archs.rfft import RFFTBlock
from lffnet_arch.fileio.atomic import pid_alive
from lffnet_arch.tiling import ProgressLike, _report, module_device

__all__ = [
    'ScratchSpaceError',
    'column_block_for',
    'conv_radius',
    'remove_stale_scratch',
    'scratch_bytes',
    'strip_forward',
    'strip_plan',
    'supports_strips',
]

SCRATCH_PREFIX = 'lffnet-strips-'


class ScratchSpaceError(OSError):
    """The scratch folder has too little free space for the feature maps of an exact strip-wise pass."""


def conv_radius(module: nn.Module) -> int:
    """Rows of context a module's convolutions need on each side: the sum of ``dilation * (kernel // 2)`` over every
    convolution in it (an upper bound for parallel branches, exact for a chain)."""
    radius = 0
    for child in module.modules():
        kernel = getattr(child, 'kernel_size', None)
        if kernel is None or not hasattr(child, 'weight') and not hasattr(child, 'composite_weight'):
            continue
        kernel = kernel if isinstance(kernel, (tuple, list)) else (kernel, kernel)
        dilation = getattr(child, 'dilation', 1)
        dilation = dilation if isinstance(dilation, (tuple, list)) else (dilation, dilation)
        radius += dilation[0] * (kernel[0] // 2)
    return radius


def _is_global(block: nn.Module) -> bool:
    return isinstance(block, RFFTBlock)


def supports_strips(net: nn.Module) -> bool:
    """Whether :func:`strip_forward` can run ``net``: one of the attention-guided networks (LFFNet, AHDRNet) whose
    fusion blocks are RFFT blocks or local blocks."""
    return isinstance(net, AttentionGuidedHDRNet)


def _halos(net: AttentionGuidedHDRNet) -> dict:
    head = conv_radius(net.conv_first) + conv_radius(net.attention[0] if len(net.attention) else nn.Identity())
    head += conv_radius(net.conv_merge)
    tail = sum(conv_radius(m) for m in (net.gff_1x1, net.gff_3x3, net.conv_up, net.conv_last))
    blocks = [conv_radius(block.spatial if _is_global(block) else block) for block in net.fusion_blocks]
    return {'head': head, 'blocks': blocks, 'tail': tail, 'whole': head + sum(blocks) + tail}


def strip_plan(net: nn.Module) -> dict:
    """How :func:`strip_forward` runs ``net``: ``mode`` (``'staged'`` with RFFT blocks, ``'local'`` without),
    ``halo`` (the largest halo of a strip, in rows), ``maps`` (feature maps held in the scratch folder at once) and
    ``channels`` (their channels)."""
    if not supports_strips(net):
        raise TypeError(f'strip-wise inference needs an LFFNet or AHDRNet, got {type(net).__name__}.')
    halos = _halos(net)
    if any(_is_global(block) for block in net.fusion_blocks):
        # Held at once: the reference features, every finished block's output (the global feature fusion reads
        # them all), the current block's output and the spectrum; during the first block also the merged features.
        maps = max(4, len(net.fusion_blocks) + 2)
        halo = max(halos['head'], halos['tail'], *halos['blocks'])
        return {'mode': 'staged', 'halo': halo, 'maps': maps, 'channels': net.num_feat}
    return {'mode': 'local', 'halo': halos['whole'], 'maps': 0, 'channels': net.num_feat}


def scratch_bytes(
    net: nn.Module, height: int, width: int, column_block: int = 64, storage: torch.dtype = torch.float32
) -> int:
    """Disk space the scratch folder needs for a ``height`` x ``width`` image (0 for a network without RFFT
    blocks): the feature maps (4 bytes a value, 2 in bf16) and the spectrum (8 bytes per half-spectrum value, padded
    to whole column blocks)."""
    plan = strip_plan(net)
    if plan['mode'] == 'local':
        return 0
    itemsize = 2 if storage == torch.bfloat16 else 4
    spectrum = 8 * plan['channels'] * height * (width // 2 + 1 + column_block)
    skip = 4 * (net.num_in_ch // 2) * height * width if net.ref_skip and net.head != 'merge' else 0
    return (plan['maps'] - 1) * plan['channels'] * height * width * itemsize + spectrum + skip


def remove_stale_scratch(folder: str) -> list:
    """Remove the scratch folders in ``folder`` of runs that were killed (``lffnet-strips-PID-*`` of a process id no
    longer running on this machine); returns their paths."""
    removed = []
    for entry in sorted(os.listdir(folder)):
        match = re.fullmatch(rf'{SCRATCH_PREFIX}(\d+)-\w+', entry)
        path = os.path.join(folder, entry)
        if match and os.path.isdir(path) and not pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor's memory (bf16 as int16: NumPy has no bfloat16)."""
    return (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy()


class _ScratchFile:
    """A scratch file read ahead and written behind by a thread of its own, so the caller computes while its data
    moves (``pread`` and ``pwrite`` release the GIL).

    - A write is queued and the caller goes on; at most one write is pending, and the next write or a read that is
      not read ahead first waits for it. A failed write raises at that wait; every map written is read again later,
      so none fails unseen.
    - :meth:`_ahead` queues a read of a region that a later read of the same region takes. The thread runs its work
      in order, so a read ahead sees every write queued before it; a write drops the reads ahead of regions it
      overlaps, so none is stale.

    Regions are ``('rows', top, bottom)`` or ``('block', index)``; a block holds some columns of every row."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._pending: Optional[concurrent.futures.Future] = None
        self._read_ahead: dict = {}

    @staticmethod
    def _overlap(one: tuple, other: tuple) -> bool:
        if one[0] == other[0] == 'rows':
            return one[1] < other[2] and other[1] < one[2]
        return one[0] != other[0] or one == other

    def _write_behind(self, region: tuple, writes: list) -> None:
        """writes: (array, offset) pairs within ``region``, written in this order; the arrays must not change
        afterwards."""
        self._wait()
        self._read_ahead = {key: job for key, job in self._read_ahead.items() if not self._overlap(key, region)}
        self._pending = self._worker.submit(lambda: [_pwrite_all(self.fd, *write) for write in writes])

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _ahead(self, region: tuple, plan: Callable) -> None:
        """Queue the reads of ``plan()`` (see :meth:`_read`); its buffers are allocated here, in the calling thread,
        so the worker thread only moves bytes (allocations from other threads would grow more malloc arenas)."""
        if region not in self._read_ahead:
            buffer, reads, finish = plan()
            job = self._worker.submit(lambda: [_pread_all(self.fd, *read) for read in reads])
            self._read_ahead[region] = (job, buffer, finish)

    def _read(self, region: tuple, plan: Callable):
        """``plan()`` gives (buffer, [(array in buffer, offset), ...], finish): the reads fill the buffer and
        ``finish(buffer)`` is the result. Taken from a read ahead of ``region`` when one was queued."""
        entry = self._read_ahead.pop(region, None)
        if entry is None:
            self._wait()
            buffer, reads, finish = plan()
            for read in reads:
                _pread_all(self.fd, *read)
        else:
            job, buffer, finish = entry
            job.result()
        return finish(buffer)

    def close(self) -> None:
        """Wait for the pending write, then close and remove the file (also when that write failed: its error is
        raised after the removal). Reads ahead that nobody took are dropped."""
        if self.fd < 0:
            return
        try:
            self._wait()
        finally:
            self._read_ahead.clear()
            self._worker.shutdown(wait=True)
            os.close(self.fd)
            self.fd = -1
            os.unlink(self.path)


class _MapFile(_ScratchFile):
    """A (C, H, W) feature map in a file (float32, or bfloat16 when the network runs in bf16), read and written by
    rows. Buffers are torch tensors, so they come from torch's allocator (with transparent huge pages where
    ``THP_MEM_ALLOC_ENABLE`` is set, as ``lffnet-inference`` does)."""

    def __init__(self, folder: str, name: str, channels: int, height: int, width: int, dtype: torch.dtype) -> None:
        super().__init__(os.path.join(folder, name))
        self.shape, self.dtype = (channels, height, width), dtype
        self.itemsize = torch.empty((), dtype=dtype).element_size()

    def write(self, top: int, rows: torch.Tensor) -> None:
        """rows: (C, h, W), e.g. a crop of rows of a strip -> rows top:top + h, written behind (the caller must not
        change ``rows`` afterwards)."""
        channels, height, width = self.shape
        data = rows.detach().to('cpu', self.dtype)
        offsets = [((channel * height) + top) * width * self.itemsize for channel in range(channels)]
        writes = [(_numpy(data[channel]), offset) for channel, offset in enumerate(offsets)]
        self._write_behind(('rows', top, top + data.shape[1]), writes)

    def read(self, top: int, bottom: int) -> torch.Tensor:
        """Rows top:bottom as a (C, bottom - top, W) tensor."""
        return self._read(('rows', top, bottom), lambda: self._rows_plan(top, bottom))

    def read_ahead(self, top: int, bottom: int) -> None:
        """Start reading rows top:bottom for a later :meth:`read` of them."""
        self._ahead(('rows', top, bottom), lambda: self._rows_plan(top, bottom))

    def _rows_plan(self, top: int, bottom: int) -> tuple:
        channels, height, width = self.shape
        data = torch.empty((channels, bottom - top, width), dtype=self.dtype)
        offsets = [((channel * height) + top) * width * self.itemsize for channel in range(channels)]
        return data, [(_numpy(data[channel]), offset) for channel, offset in enumerate(offsets)], _same


class _SpectrumFile(_ScratchFile):
    """The half spectrum of a (C, H, W) map, complex64 (C, H, W // 2 + 1), stored in blocks of ``block`` frequency
    columns, each (H, block, C) and contiguous: a strip of rows of a block and a whole block are single reads, and a
    block's values have their channels last, as the column pass's per-frequency MLP reads them."""

    def __init__(self, folder: str, channels: int, height: int, width: int, block: int) -> None:
        super().__init__(os.path.join(folder, 'spectrum'))
        self.channels, self.height, self.bins, self.block = channels, height, width // 2 + 1, block
        self.num_blocks = -(-self.bins // block)

    def _offset(self, index: int, top: int) -> int:
        return ((index * self.height + top) * self.block * self.channels) * 8

    def _span(self, index: int) -> tuple:
        start = index * self.block
        return start, min(self.bins, start + self.block)

    def write_rows(self, top: int, spectrum: torch.Tensor) -> None:
        """spectrum: (C, h, bins) complex -> rows top:top + h of every block."""
        data = spectrum.cpu().permute(1, 2, 0)  # (h, bins, C), a view
        pieces = torch.zeros((self.num_blocks, data.shape[0], self.block, self.channels), dtype=torch.complex64)
        for index in range(self.num_blocks):
            start, stop = self._span(index)
            pieces[index, :, : stop - start] = data[:, start:stop]
        writes = [(pieces[index].numpy(), self._offset(index, top)) for index in range(self.num_blocks)]
        self._write_behind(('rows', top, top + data.shape[0]), writes)

    def read_rows(self, top: int, bottom: int) -> torch.Tensor:
        """Rows top:bottom of every block -> (C, bottom - top, bins) complex64."""
        return self._read(('rows', top, bottom), lambda: self._rows_plan(top, bottom))

    def read_ahead(self, top: int, bottom: int) -> None:
        """Start reading rows top:bottom of every block for a later :meth:`read_rows` of them."""
        self._ahead(('rows', top, bottom), lambda: self._rows_plan(top, bottom))

    def _rows_plan(self, top: int, bottom: int) -> tuple:
        pieces = torch.empty((self.num_blocks, bottom - top, self.block, self.channels), dtype=torch.complex64)
        reads = [(pieces[index].numpy(), self._offset(index, top)) for index in range(self.num_blocks)]
        return pieces, reads, self._assemble

    def _assemble(self, pieces: torch.Tensor) -> torch.Tensor:
        out = torch.empty((self.channels, pieces.shape[1], self.bins), dtype=torch.complex64)
        for index in range(self.num_blocks):
            start, stop = self._span(index)
            out[..., start:stop] = pieces[index, :, : stop - start].permute(2, 0, 1)
        return out

    def read_block(self, index: int) -> torch.Tensor:
        """Block ``index``: (H, block, C) complex64."""
        return self._read(('block', index), lambda: self._block_plan(index))

    def read_block_ahead(self, index: int) -> None:
        self._ahead(('block', index), lambda: self._block_plan(index))

    def _block_plan(self, index: int) -> tuple:
        data = torch.empty((self.height, self.block, self.channels), dtype=torch.complex64)
        return data, [(data.numpy(), self._offset(index, 0))], _same

    def write_block(self, index: int, data: torch.Tensor) -> None:
        """data: (H, block, C), written behind (the caller must not change it afterwards)."""
        self._write_behind(
            ('block', index), [(data.cpu().to(torch.complex64).contiguous().numpy(), self._offset(index, 0))]
        )


def _same(buffer: torch.Tensor) -> torch.Tensor:
    return buffer


def _close_all(files: list) -> None:
    """Close (and remove) every file, then raise the first error a pending write left, if any."""
    errors = []
    for file in files:
        try:
            file.close()
        except OSError as error:
            errors.append(error)
    if errors:
        raise errors[0]


def _pwrite_all(fd: int, array: np.ndarray, offset: int) -> None:
    view = memoryview(np.ascontiguousarray(array)).cast('B')
    while len(view):
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _pread_all(fd: int, array: np.ndarray, offset: int) -> None:
    if not array.flags.c_contiguous:
        raise ValueError('scratch reads go into contiguous buffers only')
    view = memoryview(array).cast('B')
    while len(view):
        read = os.preadv(fd, [view], offset)
        if read <= 0:
            raise OSError(f'short read from a scratch file at byte {offset}: the file was truncated.')
        view, offset = view[read:], offset + read


def _strips(height: int, rows: int) -> list:
    return [(top, min(height, top + rows)) for top in range(0, height, rows)]


def _read_next(files: list, strips: list, index: int, halo: int, height: int) -> None:
    """Start reading strip ``index + 1`` (with ``halo``) from ``files`` while strip ``index`` is computed."""
    if index + 1 < len(strips):
        start, stop, _ = _with_halo(*strips[index + 1], halo, height)
        for file in files:
            file.read_ahead(start, stop)


def _with_halo(top: int, bottom: int, halo: int, height: int) -> tuple:
    """(first row read, last row read, rows to drop at the top of the result)."""
    start, stop = max(0, top - halo), min(height, bottom + halo)
    return start, stop, top - start


class _Progress:
    def __init__(self, progress: Optional[ProgressLike], total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0
        _report(progress, 0, total)

    def step(self) -> None:
        self.done += 1
        _report(self.progress, self.done, self.total)


@torch.no_grad()
def strip_forward(
    net: nn.Module,
    make_input: Callable[[int, int, int, int], torch.Tensor],
    height: int,
    width: int,
    strip_rows: int,
    out: Optional[np.ndarray] = None,
    scratch_dir: Optional[str] = None,
    column_block: int = 64,
    progress: Optional[ProgressLike] = None,
    storage: torch.dtype = torch.float32,
) -> np.ndarray:
    """The whole-image forward pass of ``net`` computed ``strip_rows`` rows at a time (see the module docstring).

    Args:
        net (nn.Module): An LFFNet or AHDRNet (:func:`supports_strips`), mapping (1, T, C, h, w) to (1, 3, h, w).
        make_input (callable): ``(top, left, rows, cols) -> Tensor`` (1, T, C, rows, cols), the network input of that
            region (:class:`~lffnet_arch.deploy.stream.TileInputs`); asked for full-width strips only.
        height (int): Image height H.
        width (int): Image width W.
        strip_rows (int): Rows computed per strip (>= 1), halo not included.
        out (np.ndarray, optional): An (H, W, 3) float32 array to write into; allocated when None.
        scratch_dir (str, optional): Folder for the feature-map files (a private subfolder is made and removed).
            Default: the system's temporary folder.
        column_block (int): Frequency columns per block of the FFT's column pass. Default: 64.
        progress (callable | tqdm, optional): Strip progress, as for :func:`~lffnet_arch.tiling.tiled_forward`.
        storage (torch.dtype): How the feature maps are kept between stages: ``torch.float32`` (default), or
            ``torch.bfloat16`` under bf16 autocast, whose convolutions give bf16 maps anyway (half the scratch space
            and traffic). The spectra stay complex64 (the FFTs run in float32).

    Returns:
        np.ndarray: (H, W, 3) float32 (``out`` when given).

    Raises:
        ScratchSpaceError: The scratch folder lacks the space the feature maps need (named, with the amount).
    """
    if int(strip_rows) != strip_rows or strip_rows < 1:
        raise ValueError(f'strip_rows must be a positive integer, got {strip_rows!r}.')
    if storage not in (torch.float32, torch.bfloat16):
        raise ValueError(f'storage must be torch.float32 or torch.bfloat16, got {storage}.')
    plan = strip_plan(net)
    device = module_device(net)
    if out is None:
        out = np.zeros((height, width, 3), np.float32)
    strips = _strips(height, int(strip_rows))
    if plan['mode'] == 'local':
        bar = _Progress(progress, len(strips))
        for top, bottom in strips:
            start, stop, drop = _with_halo(top, bottom, plan['halo'], height)
            result = net(make_input(start, 0, stop - start, width).to(device))[0, :, drop : drop + bottom - top]
            out[top:bottom] = result.float().permute(1, 2, 0).cpu().numpy()
            bar.step()
        return out
    folder = scratch_dir if scratch_dir is not None else tempfile.gettempdir()
    needed = scratch_bytes(net, height, width, column_block, storage)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ScratchSpaceError(
            f'The scratch folder {folder} has {free / 1e9:.1f} GB free; the exact strip-wise pass of a {width} x '
            f'{height} image keeps {needed / 1e9:.1f} GB of feature maps there. Free some space, or choose another '
            'folder (--scratch_dir).'
        )
    for stale in remove_stale_scratch(folder):
        warnings.warn(f'Removed {stale}, scratch files left by an interrupted run.', stacklevel=2)
    with tempfile.TemporaryDirectory(prefix=f'{SCRATCH_PREFIX}{os.getpid()}-', dir=folder) as private:
        _staged(net, make_input, height, width, strips, out, private, column_block, progress, storage)
    return out


def _staged(net, make_input, height, width, strips, out, folder, column_block, progress, storage) -> None:
    halos = _halos(net)
    channels = net.num_feat
    device = module_device(net)
    blocks = list(net.fusion_blocks)
    passes = 2 + sum(2 if _is_global(block) else 1 for block in blocks)
    num_col_blocks = -(-(width // 2 + 1) // column_block)
    bar = _Progress(progress, passes * len(strips) + sum(map(_is_global, blocks)) * num_col_blocks)
    files: list = []

    def new_map(name: str) -> _MapFile:
        files.append(_MapFile(folder, name, channels, height, width, storage))
        return files[-1]

    try:
        reference, previous = new_map('reference'), new_map('merged')
        # The reference skip's input, the reference frame's HDR-domain image, kept in float32 (its logit is added to
        # the output), so the reconstruction does not build the network input again.
        skip = None
        if net.ref_skip and net.head != 'merge':
            colours = net.num_in_ch // 2  # each frame is cat(LDR, HDR-domain) of this many channels
            skip = _MapFile(folder, 'reference_hdr', colours, height, width, torch.float32)
            files.append(skip)
        for top, bottom in strips:  # alignment network and merge conv
            start, stop, drop = _with_halo(top, bottom, halos['head'], height)
            lq = make_input(start, 0, stop - start, width).to(device)
            feat, ref_feat = net.features(lq)
            previous.write(top, feat[0, :, drop : drop + bottom - top])
            reference.write(top, ref_feat[0, :, drop : drop + bottom - top])
            if skip is not None:
                skip.write(top, lq[0, net.ref_idx, colours:, drop : drop + bottom - top])
            del lq
            bar.step()
        outputs: list[_MapFile] = []
        for index, block in enumerate(blocks):
            current = new_map(f'block{index}')
            halo = halos['blocks'][index]
            if _is_global(block):
                _rfft_block(block, previous, current, strips, halo, column_block, folder, device, bar)
            else:
                for index_strip, (top, bottom) in enumerate(strips):
                    start, stop, drop = _with_halo(top, bottom, halo, height)
                    _read_next([previous], strips, index_strip, halo, height)
                    result = block(previous.read(start, stop)[None].to(device))
                    current.write(top, result[0, :, drop : drop + bottom - top])
                    bar.step()
            if index == 0:
                previous.close()  # the merged features: no later stage reads them
            outputs.append(current)
            previous = current
        tail_files = [*outputs, reference, *([skip] if skip is not None else [])]
        for index_strip, (top, bottom) in enumerate(strips):  # global feature fusion and reconstruction
            start, stop, drop = _with_halo(top, bottom, halos['tail'], height)
            _read_next(tail_files, strips, index_strip, halos['tail'], height)
            block_outputs = [output.read(start, stop)[None].to(device) for output in outputs]
            fused = net.global_fusion(block_outputs, reference.read(start, stop)[None].to(device))
            del block_outputs
            lq = make_input(start, 0, stop - start, width).to(device) if net.head == 'merge' else None
            reference_hdr = skip.read(start, stop)[None].to(device) if skip is not None else None
            result = net.reconstruct(fused, lq, reference_hdr)
            out[top:bottom] = result[0, :, drop : drop + bottom - top].float().permute(1, 2, 0).cpu().numpy()
            bar.step()
    finally:
        _close_all(files)


def _rfft_block(block, source, target, strips, halo, column_block, folder, device, bar) -> None:
    """out = x + spatial(x) + frequency_branch(x) of one RFFT block, x in ``source``, out into ``target``."""
    channels, height, width = source.shape
    spectrum = _SpectrumFile(folder, channels, height, width, column_block)
    try:
        for index, (top, bottom) in enumerate(strips):  # pass 1: the real FFT of every row
            _read_next([source], strips, index, 0, height)
            x = source.read(top, bottom).to(device, torch.float32)
            spectrum.write_rows(top, torch.fft.rfft(x, dim=-1, norm='backward'))
            bar.step()
        mlp = _interleaved_mlp(block.frequency, device)
        for index in range(spectrum.num_blocks):  # pass 2: along the columns, the MLP, back along the columns
            # out= keeps each transform's result in the (H, k, C) layout: without it the FFT along the first dimension
            # returns H innermost, and the MLP's view and the block's write would each copy it (1.3 times slower).
            block_values = spectrum.read_block(index).to(device)
            if index + 1 < spectrum.num_blocks:
                spectrum.read_block_ahead(index + 1)
            columns = torch.fft.fft(block_values, dim=0, norm='backward', out=torch.empty_like(block_values))
            del block_values
            values = mlp(torch.view_as_real(columns).flatten(-2))  # (H, k, 2C): re_0, im_0, re_1, im_1, ...
            del columns
            values = torch.view_as_complex(values.unflatten(-1, (-1, 2)))
            spectrum.write_block(index, torch.fft.ifft(values, dim=0, out=torch.empty_like(values)))
            del values
            bar.step()
        # pass 3: back along the rows, plus the spatial branch and the residual
        for index, (top, bottom) in enumerate(strips):
            _read_next([spectrum], strips, index, 0, height)
            _read_next([source], strips, index, halo, height)
            frequency = torch.fft.irfft(spectrum.read_rows(top, bottom).to(device), n=width, dim=-1, norm='backward')
            start, stop, drop = _with_halo(top, bottom, halo, height)
            x = source.read(start, stop)[None].to(device)
            result = block.spatial(x)[0, :, drop : drop + bottom - top].float()
            result += x[0, :, drop : drop + bottom - top]
            result += frequency
            target.write(top, result)
            bar.step()
    finally:
        spectrum.close()


def _interleaved_mlp(frequency: nn.Module, device: torch.device):
    """The block's per-frequency MLP, conv1x1 - ReLU - conv1x1 on cat(real, imag) channels, as a function of
    (..., 2C) values with real and imaginary parts interleaved (re_0, im_0, re_1, ...), which is how a complex
    tensor's memory holds them: the column pass then needs no concatenation, permutation or complex rebuild. The
    weights are permuted once to that order; the result is float32, (..., 2C) interleaved."""
    first, act, second = frequency
    if not (isinstance(first, nn.Conv2d) and isinstance(act, nn.ReLU) and isinstance(second, nn.Conv2d)):
        raise TypeError('strip-wise inference expects an RFFT block frequency branch of conv1x1, ReLU, conv1x1.')
    channels = first.in_channels // 2

    def interleave_in(weight):  # (out, [re | im] C) -> (out, C x [re, im])
        return weight.reshape(weight.shape[0], 2, channels).transpose(1, 2).reshape(weight.shape[0], -1)

    def interleave_out(values):  # ([re | im] C, ...) -> (C x [re, im], ...)
        return values.reshape(2, channels, *values.shape[1:]).transpose(0, 1).reshape(values.shape)

    w1 = interleave_in(first.weight.detach()[:, :, 0, 0]).to(device)
    b1 = None if first.bias is None else first.bias.detach().to(device)
    w2 = interleave_out(second.weight.detach()[:, :, 0, 0]).to(device)
    b2 = None if second.bias is None else interleave_out(second.bias.detach()).to(device)

    def mlp(values: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu_(nn.functional.linear(values, w1, b1))
        return nn.functional.linear(hidden, w2, b2).float()

    return mlp


def column_block_for(channels: int, height: int, budget: int, largest: int = 256) -> int:
    """Frequency columns per block of the column pass within ``budget`` bytes: the block as read (8 bytes a complex
    value), its transform, the MLP's real input, hidden layer and output (2C channels each) and the inverse
    transform, measured at 41 bytes a value in fp32 and counted as 50."""
    block = int(budget // (50 * channels * height)) // 8 * 8
    return max(8, min(largest, block))
