"""scripts.measure.speed and .profiling, scripts.measure.merges: MAC counting, the tables, classical merges."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lffnet_arch.archs import AHDRNet, DOConv2d, LFFNet, fold_doconv
from lffnet_arch.data.simulator.demo import demo_bracket
from lffnet_arch.data.simulator.simulated_set import write_bracket
from lffnet_arch.deploy.model import load_network_options
from lffnet_arch.hdr_input import MU, network_input, reference_frame_hdr
from scripts.measure import quality
from scripts.measure.merges import merge_debevec, merge_mertens
from scripts.measure.profiling import (
    REFERENCE_GMACS,
    count_conv_macs,
    count_parameters,
    peak_rss_bytes,
    time_interleaved,
)

SCRIPT = Path(__file__).resolve().parents[2] / 'scripts' / 'benchmark.py'


@pytest.fixture(scope='module')
def bench():
    from scripts.measure import speed

    return speed


def parse_table(markdown: str, first_header: str) -> tuple:
    """Header cells and row cells of the markdown table whose first header cell is ``first_header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f'| {first_header} |'))
    headers = [c.strip() for c in lines[start].strip('|').split('|')]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith('|'):
            break
        rows.append([c.strip() for c in line.strip('|').split('|')])
    return headers, rows


def number(cell: str) -> float:
    return float(cell.replace(',', ''))


# ---------------------------------------------------------------- MACs and parameters


def drdb_macs_per_pixel(feat: int = 64, growth: int = 32, layers: int = 6) -> int:
    """Dense 3x3 layers (64 + 32 j -> 32) and the 1x1 fusion (256 -> 64) of one DRDB (docs/design.md §2)."""
    return sum((feat + j * growth) * growth * 9 for j in range(layers)) + (feat + layers * growth) * feat


def ahdrnet_macs_per_pixel(feat: int = 64, frames: int = 3) -> int:
    """Conv MACs per output pixel of AHDRNet, summed layer by layer from docs/design.md §2."""
    align = frames * 6 * feat * 9 + (frames - 1) * (2 * feat * 2 * feat * 9 + 2 * feat * feat * 9)
    fusion = frames * feat * feat * 9 + 3 * drdb_macs_per_pixel(feat) + 3 * feat * feat + feat * feat * 9
    return align + fusion + feat * feat * 9 + feat * 3 * 9


def test_mac_counter_matches_layer_sum_and_section5():
    height, width = 1000, 1500
    ahdrnet = count_conv_macs(AHDRNet(), height, width)
    assert ahdrnet.total == ahdrnet_macs_per_pixel() * height * width
    assert ahdrnet.frequency == 0
    assert round(ahdrnet.total / 1e9) == 2170  # docs/design.md §5

    lffnet = count_conv_macs(LFFNet(), height, width)
    bins = height * (width // 2 + 1)
    assert lffnet.frequency == 3 * 2 * (128 * 128) * bins  # two 1x1 convs 2C -> 2C per RFFT block
    # The three DRDBs replaced by RFFT blocks, whose spatial branches are two 3x3 convs 64 -> 64.
    per_pixel = ahdrnet_macs_per_pixel() - 3 * drdb_macs_per_pixel() + 3 * 2 * 64 * 64 * 9
    assert lffnet.spatial == per_pixel * height * width
    assert round(lffnet.total / 1e9) == 1382 and round(lffnet.spatial / 1e9) == 1308  # §5
    assert count_conv_macs(fold_doconv(LFFNet()), height, width).total == lffnet.total


def test_mac_note_counts_paper_configurations_missing_from_rows(bench):
    assert REFERENCE_GMACS == {'AHDRNet': 2170, 'LFFNet': 1382, 'LFFNet without frequency-branch convs': 1308}
    spec = bench.parse_model_spec('AHDRNet:num_feat=8')  # not the paper's configuration: ignored by the note
    macs = {(spec.label, bench.MAC_SIZE): count_conv_macs(AHDRNet(num_feat=8), *bench.MAC_SIZE)}
    (note,) = bench._mac_notes([spec], macs)
    assert 'AHDRNet 2,170.' in note and 'reproducing §5 (2,170 G, 1,382 G, 1,308 G)' in note


def test_mac_counter_odd_width_batch_and_untouched_net():
    net = LFFNet(num_feat=8, num_block=2)
    weight = net.conv_first.weight.clone()
    count = count_conv_macs(net, 17, 33, batch=2)
    assert count.frequency == 2 * 2 * 2 * (16 * 16) * 17 * (33 // 2 + 1)
    assert sum(count.by_layer.values()) == count.total
    assert count.by_layer['conv_first'] == 2 * 3 * 8 * 6 * 9 * 17 * 33
    assert net.conv_first.weight.device.type == 'cpu' and torch.equal(net.conv_first.weight, weight)


def test_time_interleaved_takes_turns():
    calls = []
    times = time_interleaved({'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')}, runs=2, warmup=1)
    assert calls == ['a', 'b'] * 3
    assert {k: len(v) for k, v in times.items()} == {'a': 2, 'b': 2} and all(t >= 0 for t in times['a'])


@pytest.mark.skipif(not Path('/proc/self/status').exists(), reason='needs Linux /proc')
def test_peak_rss_of_a_subprocess_is_its_own():
    """A case process must not report its parent's peak: ``ru_maxrss`` survives ``execve``, ``VmHWM`` does not."""
    big = np.ones(1024**3 // 8)  # 1 GiB touched in this (parent) process
    parent_peak = peak_rss_bytes()
    del big
    probe = (
        'import resource, sys; sys.path.insert(0, sys.argv[1]); '
        'from scripts.measure.profiling import peak_rss_bytes; '
        'print(peak_rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)'
    )
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, '-c', probe, root], capture_output=True, text=True, check=True)
    child_peak, child_maxrss = (int(v) for v in done.stdout.split()[-2:])
    assert parent_peak > 1024**3
    assert child_maxrss >= parent_peak * 0.99  # the kernel's inherited figure: why peak_rss_bytes avoids it
    assert 0 < child_peak < parent_peak - 512 * 1024**2


def test_parameter_counts():
    assert count_parameters(AHDRNet()) == 1_441_283
    assert count_parameters(LFFNet()) == 995_459
    assert count_parameters(fold_doconv(LFFNet())) == 964_355


# ---------------------------------------------------------------- model specs


def test_parse_model_spec(bench, tmp_path):
    spec = bench.parse_model_spec('LFFNet-folded:doconv=rfft,num_feat=16')
    assert (spec.arch, spec.fold, spec.options) == ('LFFNet', True, {'doconv': 'rfft', 'num_feat': 16})
    assert spec.base_label == 'LFFNet:doconv=rfft,num_feat=16'
    net = bench.build_model(spec)
    assert count_parameters(net) == count_parameters(LFFNet(num_feat=16, doconv='none'))
    with pytest.raises(ValueError, match='NoSuchNet'):
        bench.parse_model_spec('NoSuchNet')
    with pytest.raises(ValueError, match='key=value'):
        bench.parse_model_spec('LFFNet:doconv')
    opt = tmp_path / 'net.yml'
    opt.write_text('network_g:\n  type: AHDRNet\n  num_feat: 16\n')
    options = load_network_options(opt)
    assert options == {'type': 'AHDRNet', 'num_feat': 16}
    spec = bench.parse_model_spec('small:num_block=2', {'small': options})
    assert (spec.arch, spec.options) == ('AHDRNet', {'num_feat': 16, 'num_block': 2})


# ---------------------------------------------------------------- the main table


def test_main_table_rows_and_columns(bench, tmp_path):
    output = tmp_path / 'bench.md'
    report = bench.main(
        [
            '--sizes',
            '32x48',
            '--runs',
            '1',
            '--warmup',
            '0',
            '--no_train',
            '--no_memory',
            '--mm_size',
            '256',
            '--output',
            str(output),
        ]
    )
    assert output.read_text() == report
    headers, rows = parse_table(report, 'Model')
    assert headers[:2] == ['Model', 'Params'] and 'MACs @1000x1500 (G)' in headers and 'GFLOP/s' in headers
    assert 'Latency median of 1 (s)' in headers and 'Peak RSS (GB)' in headers
    assert [r[0] for r in rows] == ['AHDRNet', 'LFFNet', 'LFFNet-folded']
    nets = {'AHDRNet': AHDRNet(), 'LFFNet': LFFNet(), 'LFFNet-folded': fold_doconv(LFFNet())}
    col = {h: i for i, h in enumerate(headers)}
    for row in rows:
        assert int(number(row[col['Params']])) == count_parameters(nets[row[0]])
        expected = count_conv_macs(nets[row[0]], 1000, 1500).total / 1e9
        assert number(row[col['MACs @1000x1500 (G)']]) == pytest.approx(expected, abs=0.05)
        assert row[col['Size (HxW)']] == '32x48'
        assert number(row[col['Latency median of 1 (s)']]) > 0 and number(row[col['GFLOP/s']]) > 0
        assert row[col['Peak RSS (GB)']] == '-'
    assert 'reproducing §5' in report
    assert 'memory format channels_last' in report and 'torch.inference_mode()' in report
    assert '### Goals' not in report and 'Training throughput' not in report
    with pytest.raises(FileExistsError):
        bench.main(['--sizes', '32x48', '--runs', '1', '--no_train', '--no_memory', '--output', str(output)])


def test_main_memory_in_subprocesses_and_tiled_case(bench):
    small = 'AHDRNet:num_feat=8'
    report = bench.main(
        [
            '--archs',
            small,
            '--sizes',
            '32x40',
            '--runs',
            '1',
            '--warmup',
            '0',
            '--no_train',
            '--tiled_case',
            '70x80',
            '--tile',
            '48',
            '--tile_overlap',
            '8',
            '--tiled_archs',
            small,
            '--memory_format',
            'contiguous',
            '--mm_size',
            '256',
        ]
    )
    headers, rows = parse_table(report, 'Model')
    assert [r[0] for r in rows] == [small]
    assert 0.01 < number(rows[0][headers.index('Peak RSS (GB)')]) < 100  # a fresh process: torch alone is > 10 MB
    assert 'memory format contiguous' in report and 'peak memory of each case in a fresh process' in report

    tiled_headers, tiled_rows = parse_table(report.split('### Tiled inference')[1], 'Model')
    assert [r[0] for r in tiled_rows] == [small]
    assert number(tiled_rows[0][tiled_headers.index('Tiles')]) == 2 * 2  # 70 and 80 with tile 48: at 0/22, 0/32
    peak = number(tiled_rows[0][tiled_headers.index('Peak RSS (GB)')])
    assert peak > 0.01 and 'NOT met' not in report and '-> met' not in report  # no hard-coded goals


def test_training_table_skips_folded_rows(bench):
    report = bench.main(
        [
            '--archs',
            'AHDRNet:num_feat=8',
            'LFFNet-folded:num_feat=8',
            '--sizes',
            '32x32',
            '--runs',
            '1',
            '--warmup',
            '0',
            '--no_memory',
            '--train_batch',
            '2',
            '--train_size',
            '32',
            '--train_iters',
            '1',
            '--train_warmup',
            '0',
            '--mm_size',
            '256',
        ]
    )
    headers, rows = parse_table(report.split('### Training throughput')[1], 'Model')
    assert [r[0] for r in rows] == ['AHDRNet:num_feat=8']
    assert headers[1:3] == ['Batch', 'Patch'] and rows[0][1:3] == ['2', '32x32']
    assert number(rows[0][headers.index('Iterations / s')]) > 0
    assert 'Not trained: LFFNet-folded:num_feat=8' in report


# ---------------------------------------------------------------- classical merges and quality


def scene_arrays(size=64, seed=3):
    bracket = demo_bracket(size, seed=seed)
    ldrs = [ldr.astype(np.float32) / 65535 for ldr in bracket.ldrs]
    return ldrs, 2.0 ** np.asarray(bracket.evs), bracket.gt


def psnr_mu_by_hand(x, y):
    tonemap = lambda v: np.log(1 + MU * np.clip(v.astype(np.float64), 0, 1)) / np.log(1 + MU)  # noqa: E731
    return 10 * math.log10(1 / np.mean((tonemap(x) - tonemap(y)) ** 2))


def test_debevec_recovers_static_radiance():
    rng = np.random.default_rng(0)
    # Grey: OpenCV weights a pixel by the mean of its channels' weights, so colour saturating in one channel only
    # would mix in that channel's clipped value.
    radiance = np.repeat(rng.uniform(0.002, 0.2, (24, 32, 1)), 3, axis=2)
    times = np.array([1.0, 4.0, 16.0])
    ldrs = [np.round(np.clip(radiance * t, 0, 1) ** (1 / 2.2) * 65535) / 65535 for t in times]
    hdr, bits = merge_debevec(ldrs, times)
    assert bits in (8, 16)
    np.testing.assert_allclose(hdr, radiance, rtol=0.05 if bits == 16 else 0.3)
    mertens = merge_mertens(ldrs)
    assert mertens.shape == radiance.shape and np.isfinite(mertens).all()
    reference = reference_frame_hdr(network_input(ldrs, times / times[0])[0], 0).permute(1, 2, 0).numpy()
    assert reference == pytest.approx(np.asarray(ldrs[0]) ** 2.2, rel=1e-5)


def test_quality_table_with_checkpoints(bench, tmp_path):
    test_set = tmp_path / 'Test'
    for index in range(2):
        write_bracket(test_set / f'scene_{index}', demo_bracket(48, seed=index))
    net = LFFNet(num_feat=8)
    with torch.no_grad():  # a non-zero D, so that folding has something to fold (a fresh D is zero)
        for layer in net.modules():
            if isinstance(layer, DOConv2d) and layer.D is not None:
                layer.D.normal_(std=0.1)
    checkpoint = tmp_path / 'lffnet.pth'
    torch.save({'params': net.state_dict()}, checkpoint)
    label = 'LFFNet:num_feat=8'
    report = bench.main(
        [
            '--archs',
            label,
            'LFFNet-folded:num_feat=8',
            '--sizes',
            '32x32',
            '--runs',
            '1',
            '--warmup',
            '0',
            '--no_train',
            '--no_memory',
            '--mm_size',
            '256',
            '--test_set',
            str(test_set),
            '--checkpoint',
            f'{label}={checkpoint}',
        ]
    )
    # The table is benchmark.quality's, forwarded: its classical rows, then the networks with checkpoints.
    headers, rows = parse_table(report.split('### Quality')[1], 'Method')
    assert headers == ['Method', *(quality.HEADERS[m] for m in quality.METRICS), '< ref', 's / scene']
    names = [r[0].replace(' (scaled)', '') for r in rows]
    assert names == [*quality.classical_methods(1), label, 'LFFNet-folded:num_feat=8']
    assert all(math.isfinite(number(c)) for r in rows for c in r[1 : len(quality.METRICS) + 1])
    assert '(2 scenes, direct)' in report and 'PU21-PSNR (RGB, peak 256)' in report
    by_name = dict(zip(names, rows))
    for column in (1, 2):  # folding does not change the function
        assert number(by_name[label][column]) == pytest.approx(
            number(by_name['LFFNet-folded:num_feat=8'][column]), abs=0.011
        )
    with pytest.raises(ValueError, match='holds DO-Conv factors'):
        bench.load_weights(bench.parse_model_spec('LFFNet:num_feat=8,doconv=none'), checkpoint)

    with pytest.raises(ValueError, match='LABEL=PATH'):
        bench.main(
            [
                '--archs',
                label,
                '--no_train',
                '--no_memory',
                '--test_set',
                str(test_set),
                '--checkpoint',
                f'AHDRNet={checkpoint}',
            ]
        )
