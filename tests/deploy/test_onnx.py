"""ONNX export: the exportable real-DFT form of the RFFT block, and ONNX Runtime against PyTorch.

Tolerances: the real DFTs are float32 sums of H or W terms, so they differ from pocketfft's FFT by a few float32 ulps
of the spectrum's magnitude (relative 1e-6 here; 1e-5 is used). The exported network is compared on its sigmoid
output in [0, 1] with atol 1e-4: observed differences are about 1e-7, while any real mistake (a wrong sign, a lost
bin, a swapped frame) moves the output by 1e-2 or more.
"""

import importlib
from pathlib import Path

import pytest
import torch
from helpers import PixelwiseNet, randomise_doconv

from lffnet_arch.archs import DOConv2d, LFFNet, RFFTBlock, fold_doconv
from lffnet_arch.archs.rfft_onnx import ExportableRFFTBlock, make_exportable, real_irfft2, real_rfft2
from lffnet_arch.deploy.onnx import export_onnx, onnx_max_abs_diff

SIZES = [(8, 10), (7, 9), (6, 11), (9, 4), (1, 5)]  # even / odd heights and widths


def _require_onnx():
    for package in ('onnx', 'onnxscript', 'onnxruntime'):
        pytest.importorskip(
            package, reason=f'ONNX export tests need {package} (pip install onnx onnxscript onnxruntime)'
        )


@pytest.mark.parametrize('size', SIZES)
def test_real_rfft2_matches_torch(size):
    x = torch.randn(2, 3, *size)
    spectrum = torch.fft.rfft2(x, norm='backward')
    real, imag = real_rfft2(x)
    atol = 1e-5 * spectrum.abs().max().item()
    torch.testing.assert_close(real, spectrum.real, atol=atol, rtol=0)
    torch.testing.assert_close(imag, spectrum.imag, atol=atol, rtol=0)


@pytest.mark.parametrize('size', SIZES)
def test_real_irfft2_matches_torch(size):
    height, width = size
    # An arbitrary (non-Hermitian) half spectrum, as the frequency convs produce: irfft2 must ignore the imaginary
    # parts of the DC and Nyquist columns exactly as torch does.
    real, imag = torch.randn(2, 3, height, width // 2 + 1), torch.randn(2, 3, height, width // 2 + 1)
    expected = torch.fft.irfft2(torch.complex(real, imag), s=size, norm='backward')
    output = real_irfft2(real, imag, height, width)
    assert output.shape == expected.shape
    torch.testing.assert_close(output, expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('doconv', [False, True])
def test_exportable_block_matches_rfft_block(size, doconv):
    block = RFFTBlock(8, doconv=doconv).eval()
    randomise_doconv(block)
    exportable = make_exportable(block)
    assert isinstance(exportable, ExportableRFFTBlock)
    assert not any(isinstance(m, DOConv2d) for m in exportable.modules())
    x = torch.randn(2, 8, *size)
    with torch.no_grad():
        expected = block(x)
        frequency = block.frequency_branch(x)
        torch.testing.assert_close(exportable(x), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(exportable.frequency_branch(x), frequency, atol=1e-5, rtol=0)
    assert frequency.abs().max() > 1e-2  # the frequency branch contributes, so the comparison means something


def test_make_exportable_leaves_the_model_alone():
    net = LFFNet(num_feat=8).eval()
    randomise_doconv(net)
    exportable = make_exportable(net)
    assert isinstance(net.conv_merge, DOConv2d) and type(net.fusion_blocks[0]) is RFFTBlock
    assert all(isinstance(block, ExportableRFFTBlock) for block in exportable.fusion_blocks)
    assert not any(isinstance(m, DOConv2d) for m in exportable.modules())
    lq = torch.rand(1, 3, 6, 11, 14)
    with torch.no_grad():
        torch.testing.assert_close(exportable(lq), net(lq), atol=1e-5, rtol=0)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A small folded LFFNet exported by scripts/model_conversion/export_onnx.py: (onnx path, folded net)."""
    _require_onnx()
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('onnx')
    net = LFFNet(num_feat=8, ref_skip=True).eval()  # as shipped: with the reference skip
    randomise_doconv(net)
    with torch.no_grad():
        net.conv_last.W.normal_(std=0.1)  # zero-initialised under the skip
    folded = fold_doconv(net).eval()
    torch.save({'params': folded.state_dict()}, folder / 'folded.pth')
    script = importlib.import_module('lffnet_arch.commands.export_onnx')
    # --no_optimize halves the export time; the default (optimised) path gives the same graph semantics.
    argv = [
        '--input',
        str(folder / 'folded.pth'),
        '--output',
        str(folder / 'lffnet.onnx'),
        '--check_size',
        '16',
        '16',
        '--no_optimize',
    ]
    assert script.main(argv) == 0
    return folder / 'lffnet.onnx', folded, script


def test_onnx_graph_interface(exported):
    import onnx

    path, _, _ = exported
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ['lq'] and [o.name for o in model.graph.output] == ['hdr']
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:3] == [3, 6] and all(isinstance(d, str) for d in (dims[0], dims[3], dims[4]))
    assert 'DFT' not in {node.op_type for node in model.graph.node}


@pytest.mark.parametrize('shape', [(1, 3, 6, 24, 32), (2, 3, 6, 19, 27)])
def test_onnx_runtime_matches_pytorch(exported, shape):
    path, folded, _ = exported
    lq = torch.rand(*shape)
    with torch.no_grad():
        output = folded(lq)
    assert output.std() > 1e-3  # a non-constant output
    assert onnx_max_abs_diff(path, folded, lq) <= 1e-4


def test_export_refuses_overwrite(exported, capsys):
    path, folded, script = exported
    before = path.read_bytes()
    assert script.main(['--input', str(path.parent / 'folded.pth'), '--output', str(path)]) == 1
    assert 'already exists' in capsys.readouterr().err and path.read_bytes() == before
    with pytest.raises(FileExistsError, match='lffnet.onnx'):
        export_onnx(folded, path)


def test_export_verify_runs_before_the_file_appears(tmp_path):
    """export_onnx checks the temporary file before moving it into place (the script's ONNX Runtime check)."""
    _require_onnx()
    net, path = PixelwiseNet().eval(), tmp_path / 'tiny.onnx'
    seen = []

    def reject(unchecked: Path) -> None:
        seen.append((unchecked.is_file(), path.exists()))
        raise RuntimeError('rejected')

    with pytest.raises(RuntimeError, match='rejected'):
        export_onnx(net, path, optimize=False, verify=reject)
    assert seen == [(True, False)] and list(tmp_path.iterdir()) == []  # nothing written, no temporary file left
    diffs = []
    export_onnx(
        net,
        path,
        optimize=False,
        verify=lambda unchecked: diffs.append(onnx_max_abs_diff(unchecked, net, torch.rand(1, 3, 6, 5, 7))),
    )
    assert len(diffs) == 1 and diffs[0] <= 1e-5
    assert [p.name for p in tmp_path.iterdir()] == ['tiny.onnx']
