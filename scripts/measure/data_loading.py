"""Samples per second of MultiExposureHDRDataset training patches read from a folder and from its LMDB.

Usage:
    python scripts/benchmark_data.py [--input datasets/Kalantari/Training_sub128] [--lmdb PATH.lmdb]
        [--num_scenes 64] [--size 128] [--samples 256] [--batch_size 8] [--workers 0 1 2]

Without --input, a temporary Kalantari-layout set of --num_scenes demo scenes (lffnet_arch.data.simulator.demo) of
--size x --size pixels (three 16-bit TIFF frames, exposure.txt, HDRImg.hdr) is generated. Without --lmdb, the LMDB
is built from the input folder into a temporary folder with ``lffnet_arch.data.prepare.create_lmdb``. Each
configuration reads --samples training samples (random --size crop, flips and rotations) through a torch
DataLoader and prints a markdown table; the first batch (worker start-up) is not timed.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from lffnet_arch.data import MultiExposureHDRDataset
from lffnet_arch.data.simulator.demo import demo_bracket
from lffnet_arch.data.simulator.simulated_set import write_bracket


def make_synthetic(root: Path, num_scenes: int, size: int) -> Path:
    """Write ``num_scenes`` demo brackets (``lffnet_arch.data.simulator.demo``, seeds 0, 1, ...) in the Kalantari
    layout."""
    for index in tqdm(range(num_scenes), desc='synthetic', unit='scene'):
        write_bracket(root / f'{index:04d}', demo_bracket(size, seed=index))
    return root


def build_lmdb(src: Path, out: Path) -> Path:
    from lffnet_arch.commands import create_lmdb

    create_lmdb.main(['--input', str(src), '--output', str(out)])
    return out


def samples_per_second(dataset: MultiExposureHDRDataset, samples: int, batch_size: int, workers: int) -> float:
    """Timed read of ``samples`` random samples after one untimed batch (worker start-up, first reads)."""
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=samples + batch_size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
    iterator = iter(loader)
    next(iterator)
    count, start = 0, time.perf_counter()
    for batch in iterator:
        count += batch['lq'].shape[0]
    return count / (time.perf_counter() - start)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--input', help='folder of scenes or patches; default: a temporary synthetic set')
    parser.add_argument('--lmdb', help='LMDB made from --input; default: built into a temporary folder')
    parser.add_argument('--num_scenes', type=int, default=64, help='synthetic scenes (default 64)')
    parser.add_argument('--size', type=int, default=128, help='patch side, and synthetic scene side (default 128)')
    parser.add_argument('--samples', type=int, default=256, help='samples timed per configuration (default 256)')
    parser.add_argument('--batch_size', type=int, default=8, help='DataLoader batch size (default 8)')
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2], help='worker counts (default 0 1 2)')
    args = parser.parse_args(argv)
    if args.lmdb and not args.input:
        parser.error('--lmdb needs the --input folder it was made from.')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix='lffnet_bench_') as tmp:
        src = Path(args.input) if args.input else make_synthetic(Path(tmp) / 'scenes', args.num_scenes, args.size)
        lmdb_path = Path(args.lmdb) if args.lmdb else build_lmdb(src, Path(tmp) / 'scenes.lmdb')
        common = {'phase': 'train', 'gt_size': args.size, 'use_hflip': True, 'use_rot': True}
        datasets = {
            'folder': MultiExposureHDRDataset({'dataroot': str(src), 'io_backend': {'type': 'disk'}, **common}),
            'LMDB': MultiExposureHDRDataset({'dataroot': str(lmdb_path), 'io_backend': {'type': 'lmdb'}, **common}),
        }
        print(
            f'\n{len(datasets["folder"])} samples, {args.size}x{args.size} crops, batch {args.batch_size}, '
            f'{os.cpu_count()} CPU cores\n'
        )
        print('| source | DataLoader workers | samples/s |')
        print('|---|---|---|')
        for name, dataset in datasets.items():
            for workers in args.workers:
                rate = samples_per_second(dataset, args.samples, args.batch_size, workers)
                print(f'| {name} | {workers} | {rate:.0f} |', flush=True)
    return 0
