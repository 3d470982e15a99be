"""ONNX export of LFFNet / AHDRNet with dynamic height and width.

The exported graph is a folded copy of the model whose RFFT blocks use their ONNX export form
(:mod:`lffnet_arch.archs.rfft_onnx`: the 2-D real FFTs as real DFT matrix products, since ONNX Runtime cannot run
what PyTorch's exporters emit for ``rfft2`` / ``irfft2``). Before a file is moved into place, ONNX Runtime runs it
and its output is compared with PyTorch's.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch import nn

from lffnet_arch.archs.rfft_onnx import make_exportable
from lffnet_arch.fileio.atomic import atomic_path

__all__ = ['export_onnx', 'onnx_max_abs_diff']

PathLike = Union[str, os.PathLike]
INPUT_NAME = 'lq'
OUTPUT_NAME = 'hdr'


def export_onnx(
    model: nn.Module,
    path: PathLike,
    example_size: Sequence[int] = (64, 64),
    opset: int = 18,
    optimize: bool = True,
    overwrite: bool = False,
    verify: Optional[Callable[[Path], None]] = None,
) -> None:
    """Export an LFFNet / AHDRNet to ONNX with input ``lq`` (B, T, C, H, W) and output ``hdr`` (B, 3, H, W).

    B, H and W are dynamic (H, W >= 2). Uses ``torch.onnx.export(..., dynamo=True)``, which needs the ``onnx`` and
    ``onnxscript`` packages. The file is written to a temporary name, checked by ``verify`` when given, and only then
    moved into place, so an interrupted or rejected export leaves no file under ``path``.

    Args:
        model (nn.Module): Network with attributes ``num_exposure`` and ``num_in_ch`` (LFFNet, AHDRNet); DO-Conv
            layers are folded and RFFT blocks swapped on a copy (:func:`make_exportable`).
        path (str | PathLike): Output ``.onnx`` file.
        example_size (Sequence[int]): (H, W) of the tracing input (batch 2); any size >= 2, the graph does not
            depend on it. Default: (64, 64).
        opset (int): ONNX opset. Default: 18.
        optimize (bool): Run the exporter's graph optimisation (constant folding, dead-code removal). Turning it off
            halves the export time; ONNX Runtime optimises the graph when it loads it anyway. Default: True.
        overwrite (bool): Replace an existing file. Default: False.
        verify (callable, optional): Called with the temporary file's path before it is moved into place (e.g. an
            ONNX Runtime comparison with :func:`onnx_max_abs_diff`); an exception it raises propagates and nothing is
            written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ImportError: ``onnx`` or ``onnxscript`` is not installed.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} already exists; pass overwrite=True (--overwrite) to replace it.')
    for package in ('onnx', 'onnxscript'):
        try:
            __import__(package)
        except ImportError as error:
            raise ImportError(f'ONNX export needs the {package!r} package: pip install onnx onnxscript') from error
    net = make_exportable(model)
    param = next(net.parameters())
    example = torch.rand(2, net.num_exposure, net.num_in_ch, *example_size, device=param.device, dtype=param.dtype)
    dim = torch.export.Dim
    dynamic_shapes = {INPUT_NAME: {0: dim('batch'), 3: dim('height', min=2), 4: dim('width', min=2)}}
    with atomic_path(path) as tmp, torch.no_grad():
        program = torch.onnx.export(
            net,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            optimize=optimize,
            verbose=False,
        )
        program.save(str(tmp), external_data=False)  # One self-contained file, so the rename is safe.
        if verify is not None:
            verify(tmp)


def onnx_max_abs_diff(
    onnx_path: PathLike, model: nn.Module, lq: torch.Tensor, providers: Optional[Sequence[str]] = None
) -> float:
    """Run an exported model with ONNX Runtime and return max |ONNX - PyTorch| on ``lq``.

    Args:
        onnx_path (str | PathLike): Exported model.
        model (nn.Module): The PyTorch network it came from (any DO-Conv placement); switched to eval mode.
        lq (Tensor): (B, T, C, H, W) input.
        providers (Sequence[str], optional): ONNX Runtime execution providers. Default: CPU.

    Raises:
        ImportError: ``onnxruntime`` is not installed.
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError('Checking an ONNX export needs onnxruntime: pip install onnxruntime') from error
    session = onnxruntime.InferenceSession(str(onnx_path), providers=list(providers or ['CPUExecutionProvider']))
    (output,) = session.run([OUTPUT_NAME], {INPUT_NAME: lq.detach().cpu().float().numpy()})
    with torch.no_grad():
        expected = model.eval()(lq).float().cpu()
    return (torch.from_numpy(output) - expected).abs().max().item()
