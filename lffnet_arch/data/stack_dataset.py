"""Real exposure stacks listed in the options (frames, exposure times in seconds, a reference radiance map)."""

import os
from pathlib import Path

import numpy as np
import torch
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from lffnet_arch.fileio.image import read_hdr, read_ldr
from lffnet_arch.hdr_input import network_input
from lffnet_arch.response.curves import parse_response
from lffnet_arch.response.resolve import LINEARISATION_OPTIONS, sample_response
from lffnet_arch.schema import FREE, Either, Float, ListOf, Null, Str, check_dataset_options

__all__ = ['ExposureStackDataset']


@DATASET_REGISTRY.register()
class ExposureStackDataset(data.Dataset):
    """Real brackets with a radiance map of relative scale, such as Debevec and Malik's Memorial Church stack.

    Each stack is read as given; nothing is aligned or cropped. Exposure times are divided by the shortest (the
    networks see t = 1 for the shortest frame). A radiance map recovered from a film or camera stack has an
    arbitrary scale, so the GT is divided by its 99th percentile (``gt_percentile``); score such sets with
    ``calculate_psnr_mu_scaled``, which fits the prediction's scale before comparing.

    Args:
        opt (dict): Options, as in BasicSR's ``datasets`` section:

            - stacks (list[dict]): Each ``{name: str, frames: [paths, short to long], exposures: [seconds],
              gt: path}``. Relative paths are read against ``dataroot`` when given, else the working directory.
            - dataroot (str | None): Folder the stacks' relative paths start from. Default None.
            - gamma (float): Gamma of the network's HDR-domain input. Default 2.2.
            - response (str | None): The inverse camera response the frames are linearised with: ``auto``
              (calibrated from each sample's own frames), ``gamma:<g>``, ``srgb``, ``linear`` or a response
              ``.json``. Default None: L ** gamma.
            - gt_percentile (float | None): Percentile of the GT that is scaled to 1; None keeps the file's
              values. Default 99.

    Items are dicts like :class:`~lffnet_arch.data.hdr_dataset.MultiExposureHDRDataset`'s.
    """

    OPTIONS = {
        'stacks': ListOf(FREE, min_len=1),  # each stack is checked by _check, naming its index
        'dataroot': Either(Str(), Null()),
        **LINEARISATION_OPTIONS,
        'gt_percentile': Either(Float(low=0, low_open=True, high=100), Null()),
    }

    def __init__(self, opt: dict):
        super().__init__()
        check_dataset_options(type(self).__name__, opt, self.OPTIONS)
        self.opt = opt
        self.gamma = float(opt.get('gamma', 2.2))
        self.response = parse_response(opt['response']) if opt.get('response') is not None else None
        self.gt_percentile = opt.get('gt_percentile', 99.0)
        root = opt.get('dataroot')
        self.root = Path(os.path.expanduser(root)) if root else None
        stacks = opt.get('stacks')
        if not isinstance(stacks, list) or not stacks:
            raise ValueError('ExposureStackDataset: option "stacks" must list at least one stack.')
        self.stacks = [self._check(i, stack) for i, stack in enumerate(stacks)]

    def _path(self, value: str) -> Path:
        path = Path(os.path.expanduser(str(value)))
        return path if path.is_absolute() or self.root is None else self.root / path

    def _check(self, i: int, stack: dict) -> dict:
        where = f'ExposureStackDataset stack {i}'
        missing = {'name', 'frames', 'exposures', 'gt'} - set(stack or {})
        if missing:
            raise ValueError(f'{where}: missing {sorted(missing)}; expected name, frames, exposures and gt.')
        frames = [self._path(p) for p in stack['frames']]
        times = np.asarray(stack['exposures'], dtype=np.float64)
        if len(frames) < 2 or times.shape != (len(frames),):
            raise ValueError(
                f'{where} ({stack["name"]}): {len(frames)} frames and {times.size} exposures; expected'
                ' at least 2 frames and one exposure time per frame.'
            )
        if not (np.isfinite(times).all() and (times > 0).all() and (np.diff(times) > 0).all()):
            raise ValueError(
                f'{where} ({stack["name"]}): exposures {times.tolist()} must be positive, finite and '
                'increasing (frames short to long).'
            )
        for path in [*frames, self._path(stack['gt'])]:
            if not path.is_file():
                raise FileNotFoundError(f'{where} ({stack["name"]}): file not found: {path}')
        return {'name': str(stack['name']), 'frames': frames, 'times': times / times[0], 'gt': self._path(stack['gt'])}

    def __len__(self) -> int:
        return len(self.stacks)

    def __getitem__(self, index: int) -> dict:
        stack = self.stacks[index]
        ldrs = [read_ldr(path) for path in stack['frames']]
        gt = read_hdr(stack['gt'])
        if any(ldr.shape != gt.shape for ldr in ldrs):
            raise ValueError(
                f'ExposureStackDataset ({stack["name"]}): frames {[ldr.shape for ldr in ldrs]} and GT {gt.shape} '
                'differ in size.'
            )
        if self.gt_percentile is not None:
            gt = gt / max(float(np.percentile(gt, float(self.gt_percentile))), 1e-12)
        response = sample_response(self.response, ldrs, stack['times'])
        return {
            'lq': network_input(ldrs, stack['times'], self.gamma, response)[0].contiguous(),
            'gt': torch.from_numpy(np.ascontiguousarray(gt.transpose(2, 0, 1), dtype=np.float32)),
            'exposures': torch.from_numpy(stack['times'].astype(np.float32)),
            'key': stack['name'],
            'lq_path': str(stack['frames'][0].parent),
            'gt_path': str(stack['gt']),
        }
