"""scripts/reproduce_table2.py end to end at a tiny budget: options per variant, training, the table and curves."""

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import yaml

REPO = Path(__file__).resolve().parents[2]


def test_table2_script_trains_and_reports(tmp_path):
    from lffnet_arch.data.simulator.demo import generate_demo_set

    data = generate_demo_set(tmp_path / 'demo', num_train=2, num_val=1, size=32, seed=1)
    base = yaml.safe_load((REPO / 'options/train/LFFNet/train_LFFNet_demo.yml').read_text())
    base['datasets']['train']['dataroot'] = str(data / 'Training')
    base['datasets']['val']['dataroot'] = str(data / 'Test')
    base['network_g']['ref_skip'] = True  # as in the RealHDR options; the variants are the papers' networks
    (tmp_path / 'base.yml').write_text(yaml.safe_dump(base, sort_keys=False))
    prefixes = ('Table2_LFFNet_f8_i2_', 'Table2_AHDRNet_f8_i2_', 'Table2_LFFNet_woDOConv_f8_i2_')

    def clean() -> None:  # runs are named by their options: <prefix><digest>
        for prefix in prefixes:
            for folder in (REPO / 'experiments').glob(f'{prefix}*'):
                shutil.rmtree(folder, ignore_errors=True)

    clean()  # left by an interrupted earlier run of this test
    out = tmp_path / 'table2'
    args = [sys.executable, str(REPO / 'scripts/reproduce_table2.py'), '--base', str(tmp_path / 'base.yml')]
    args += ['--output', str(out), '--iters', '2', '--num_feat', '8', '--val_points', '1', '--batch', '2']
    args += ['--crop', '32', '--dataset', 'demo_test']
    try:
        run = subprocess.run([*args, '--variants', 'LFFNet'], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        (options_file,) = (out / 'options').glob('Table2_LFFNet_f8_i2_*.yml')
        options = yaml.safe_load(options_file.read_text())
        run = REPO / 'experiments' / options['name']
        assert options['network_g']['num_feat'] == 8 and options['network_g']['doconv'] == 'fusion'
        assert 'ref_skip' not in options['network_g']
        assert set(options['train']['losses']) == {'l1', 'msc', 'msed', 'msfr'}
        assert options['train']['total_iter'] == 2 and options['train']['scheduler']['periods'] == [2]
        table = (out / 'table2.md').read_text()
        row = next(line for line in table.splitlines() if line.startswith('| LFFNet |'))
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert float(cells[1]) > 0 and '(at' not in cells[1]  # the run reached its last validation
        assert cells[2] == '19,603'  # LFFNet(num_feat=8), DO-Conv's D included
        picture = cv2.imread(str(out / 'table2_curves.png'))
        assert picture is not None and picture.shape[1] > picture.shape[0]
        # Run again: the finished variant is not trained (nor validated) again, and its table row stays.
        logs = sorted(run.glob('train_*.log'))
        again = subprocess.run([*args, '--variants', 'LFFNet'], capture_output=True, text=True, timeout=600)
        assert again.returncode == 0 and 'LFFNet: already trained' in again.stdout
        assert sorted(run.glob('train_*.log')) == logs
        assert row in (out / 'table2.md').read_text()
        report = subprocess.run([*args, '--report_only'], capture_output=True, text=True, timeout=300)
        assert report.returncode == 0 and '| AHDRNet | not run yet |' in report.stdout
    finally:
        clean()


def test_runs_are_named_by_their_full_options():
    """A run killed and asked for again with another batch, crop, budget or seed is another run, never a resume
    of the old state; the same options always name the same run."""
    from scripts.measure import table2

    base = yaml.safe_load((REPO / 'options/train/LFFNet/train_LFFNet_RealHDR.yml').read_text())
    argv = ['--base', 'x.yml', '--output', 'out', '--iters', '10']
    name = table2.variant_options(base, 'LFFNet', table2.parse_args(argv))['name']
    assert name.startswith('Table2_LFFNet_f32_i10_') and len(name) == len('Table2_LFFNet_f32_i10_') + 8
    elsewhere = ['--base', 'x.yml', '--output', 'elsewhere', '--iters', '10']
    assert table2.variant_options(base, 'LFFNet', table2.parse_args(elsewhere))['name'] == name
    for extra in (['--batch', '4'], ['--crop', '64'], ['--num_feat', '16']):
        assert table2.variant_options(base, 'LFFNet', table2.parse_args([*argv, *extra]))['name'] != name
    seeded = {**base, 'manual_seed': 1}
    assert table2.variant_options(seeded, 'LFFNet', table2.parse_args(argv))['name'] != name


def test_variants_share_all_but_the_network():
    from scripts.measure import table2

    base = yaml.safe_load((REPO / 'options/train/LFFNet/train_LFFNet_RealHDR.yml').read_text())
    args = table2.parse_args(['--base', 'x.yml', '--output', 'out'])
    opts = {variant: table2.variant_options(base, variant, args) for variant in table2.VARIANTS}
    for opt in opts.values():
        assert opt['network_g']['num_feat'] == 32 and 'ref_skip' not in opt['network_g']
        assert opt['train']['losses'] == table2.PAPER_LOSSES and opt['train']['total_iter'] == 3000
        assert opt['datasets'] == opts['LFFNet']['datasets'] and opt['train']['precision'] == 'bf16'
    assert opts['AHDRNet']['train']['memory_format'] == 'channels_last'  # its fastest, same maths
    assert 'memory_format' not in opts['LFFNet']['train'] and 'memory_format' not in base['train']
    base['train']['memory_format'] = 'contiguous'  # a base that sets one keeps it for every variant
    assert table2.variant_options(base, 'AHDRNet', args)['train']['memory_format'] == 'contiguous'
