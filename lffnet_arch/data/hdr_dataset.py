"""Multi-exposure HDR dataset (Kalantari layout on disk, or its LMDB) registered in BasicSR."""

import os
from pathlib import Path
from typing import NamedTuple, Optional, Union

import lmdb
import numpy as np
import torch
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from lffnet_arch.data import layout, lmdb_codec
from lffnet_arch.data.lmdb_codec import META_INFO
from lffnet_arch.hdr_input import network_input
from lffnet_arch.response.curves import parse_response
from lffnet_arch.response.resolve import LINEARISATION_OPTIONS, sample_response
from lffnet_arch.schema import Bool, Either, Float, Int, Null, Section, Str, check_dataset_options

__all__ = ['MultiExposureHDRDataset']


class _Sample(NamedTuple):
    key: str
    lq_path: str
    gt_path: str
    evs: np.ndarray
    shape: Optional[tuple]  # (h, w) from meta_info.txt; None on disk, where the files say it
    files: Optional[layout.SceneFiles]  # disk: the scene's files, found once at construction; None for LMDB


# Read-only LMDB environments of this process by folder. py-lmdb refuses to open one path twice in a process, so
# datasets on the same LMDB share one. An environment inherited through fork() must not be used (LMDB forbids it),
# so a DataLoader worker closes its copy and opens its own; one whose data.mdb was replaced (--overwrite) is reopened.
_LMDB_ENVS = {}


def _lmdb_env(root: Path) -> lmdb.Environment:
    path = str(root.resolve())
    inode = os.stat(os.path.join(path, 'data.mdb')).st_ino
    pid, old_inode, env = _LMDB_ENVS.get(path, (None, None, None))
    if env is not None and (pid != os.getpid() or old_inode != inode):
        env.close()
        env = None
    if env is None:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False)
        _LMDB_ENVS[path] = (os.getpid(), inode, env)
    return env


@DATASET_REGISTRY.register()
class MultiExposureHDRDataset(data.Dataset):
    """T LDR frames of a dynamic scene with their exposure times, and the linear HDR ground truth.

    Reads a Kalantari-layout folder (``<dataroot>/<scene>/`` with T frames sorted by file name, an exposure file
    of EV values and ``HDRImg.hdr``) or an LMDB made from one by ``scripts/data_preparation/create_lmdb_hdr.py``
    (schema in ``datasets/README.md``). Both give bit-identical samples. Frames and GT are validated as
    :func:`~lffnet_arch.data.layout.read_scene` describes.

    Args:
        opt (dict): Options, as in BasicSR's ``datasets`` section:

            - dataroot (str): Folder of scene folders (``io_backend.type: disk``) or the ``.lmdb`` folder
              (``io_backend.type: lmdb``). Required.
            - io_backend (dict): ``{type: disk}`` (default) or ``{type: lmdb}``.
            - num_exposure (int): Frames per scene T. Default 3.
            - ref_idx (int): Reference frame, validated to lie in [0, T) and kept as ``self.ref_idx``; the network
              takes it from its own options. Default (T - 1) // 2, i.e. 1 for T = 3.
            - gamma (float): Gamma of the HDR-domain input L ** gamma / t. Default 2.2.
            - response (str | None): The inverse camera response the frames are linearised with: ``auto``
              (calibrated from each sample's own frames), ``gamma:<g>``, ``srgb``, ``linear`` or a response
              ``.json``. Default None: L ** gamma.
            - exposure_file (str): Name of the exposure file in each scene folder (disk only). Default
              'exposure.txt'.
            - gt_size (int | None): Side of the random square crop in phase 'train', the same window for every frame
              and the GT; None keeps whole images. Default None.
            - use_hflip (bool): Random horizontal flip in phase 'train'. Default False.
            - use_rot (bool): Random vertical flip and transpose (rotations) in phase 'train'. Default False.
            - phase (str): 'train' crops and augments; 'val' / 'test' return whole images. BasicSR sets it.
              Default 'test'.
            - gt_max (float): Largest GT value accepted; a scene above it is refused, naming the file and the
              value (NaN / Inf / negative GT always are). Default ``layout.GT_MAX`` (1e6), far above real
              radiance in any unit; relative-unit GTs are normalised by whoever loads them, not refused.
            - seed (int): Seed of the crops and flips. ``lffnet_arch/train.py`` sets it to ``manual_seed``.
              Default 0.

    Random crops and flips are drawn from a generator seeded with (seed, epoch, index) when the sampler passes
    ``(epoch, index)`` (``takes_epoch``; the training sampler of ``lffnet_arch/train.py`` does): a sample is the
    same in any worker process and after a resume, and differs between epochs. A plain int index (another
    sampler) draws from NumPy's global generator, as BasicSR's datasets do.

    Each item is a dict:
        - lq (Tensor): (T, 6, H, W) float32, per frame cat(L_i, L_i ** gamma / t_i) on channels, RGB, L in [0, 1].
        - gt (Tensor): (3, H, W) float32 linear HDR, RGB.
        - exposures (Tensor): (T,) float32 exposure times t_i = 2 ** EV_i.
        - key (str): Sample name (sanitised scene or patch folder name).
        - lq_path (str): The scene folder (disk) or the sample's LMDB key prefix (lmdb).
        - gt_path (str): The GT file (disk) or its LMDB key (lmdb).
    """

    takes_epoch = True  # __getitem__ accepts (epoch, index) and derives its random draws from (seed, epoch, index)
    OPTIONS = {  # checked with BasicSR's data-loader keys when the options are read and when the dataset is built
        'dataroot': Str(),
        'io_backend': Section({'type': Str(('disk', 'lmdb'))}),
        'num_exposure': Int(low=1),
        'ref_idx': Int(low=0),
        **LINEARISATION_OPTIONS,
        'exposure_file': Str(),
        'gt_size': Either(Int(low=1), Null()),
        'use_hflip': Bool(),
        'use_rot': Bool(),
        'gt_max': Float(low=0, low_open=True),
        'seed': Int(),
    }

    def __init__(self, opt: dict):
        super().__init__()
        check_dataset_options(type(self).__name__, opt, self.OPTIONS)
        self.opt = opt
        if opt.get('dataroot') is None:
            raise ValueError('MultiExposureHDRDataset: option "dataroot" is required (folder of scenes or .lmdb).')
        self.root = Path(opt['dataroot'])
        self.num_exposure = int(opt.get('num_exposure', 3))
        if self.num_exposure < 1:
            raise ValueError(f'MultiExposureHDRDataset: num_exposure must be >= 1, got {self.num_exposure}.')
        self.ref_idx = int(opt.get('ref_idx', (self.num_exposure - 1) // 2))
        if not 0 <= self.ref_idx < self.num_exposure:
            raise ValueError(
                f'MultiExposureHDRDataset: ref_idx must be in [0, {self.num_exposure}) for num_exposure '
                f'{self.num_exposure}, got {self.ref_idx}.'
            )
        self.gamma = float(opt.get('gamma', 2.2))
        self.response = parse_response(opt['response']) if opt.get('response') is not None else None
        self.exposure_file = opt.get('exposure_file', 'exposure.txt')
        self.gt_size = opt.get('gt_size')
        self.use_hflip = bool(opt.get('use_hflip', False))
        self.use_rot = bool(opt.get('use_rot', False))
        self.phase = opt.get('phase', 'test')
        self.gt_max = float(opt.get('gt_max', layout.GT_MAX))
        if not self.gt_max > 0:
            raise ValueError(f'MultiExposureHDRDataset: gt_max must be a positive number, got {opt.get("gt_max")!r}.')
        self.seed = int(opt.get('seed', 0))
        self.backend = (opt.get('io_backend') or {}).get('type', 'disk')
        if self.backend == 'disk':
            self.samples = self._scan_folder()
        elif self.backend == 'lmdb':
            self.samples = self._scan_lmdb()
        else:
            raise ValueError(
                f'MultiExposureHDRDataset: io_backend type must be "disk" or "lmdb", got {self.backend!r}.'
            )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: Union[int, tuple]) -> dict:
        epoch, index = index if isinstance(index, tuple) else (None, index)
        sample = self.samples[index]
        ldrs, gt = self._read_disk(sample) if self.backend == 'disk' else self._read_lmdb(sample)
        if self.phase == 'train':
            ldrs, gt = self._crop_and_augment(ldrs, gt, sample.key, self._rng(epoch, index))
        return self._pack(ldrs, gt, sample)

    def _rng(self, epoch: Optional[int], index: int) -> np.random.Generator:
        if epoch is None:
            return np.random.default_rng(np.random.randint(0, 2**31))
        return np.random.default_rng([self.seed, int(epoch), int(index)])

    # ------------------------------------------------------------------ scanning

    def _scan_folder(self) -> list:
        """Cheap validation of every scene (frame count, exposure file, GT present) before training starts; the
        files found here are the ones ``__getitem__`` decodes."""
        scenes = layout.list_scenes(self.root)
        samples = []
        for key, scene in zip(layout.sample_names(scenes), scenes):
            files = layout.find_scene_files(scene, self.num_exposure, self.exposure_file)
            samples.append(_Sample(key, str(scene), str(files.gt), files.evs, None, files))
        return samples

    def _scan_lmdb(self) -> list:
        if not (self.root / 'data.mdb').is_file():
            raise FileNotFoundError(
                f'LMDB {self.root} has no data.mdb; expected an LMDB folder made by '
                'scripts/data_preparation/create_lmdb_hdr.py.'
            )
        return [
            _Sample(name, name, lmdb_codec.gt_key(name), evs, shape, None)
            for name, shape, evs in lmdb_codec.parse_meta_info(self.root / META_INFO, self.num_exposure)
        ]

    # ------------------------------------------------------------------ reading

    def _read_disk(self, sample: _Sample) -> tuple:
        scene = layout.read_scene_files(sample.files, gt_max=self.gt_max)
        return scene.ldrs, scene.gt

    def _lmdb_get(self, sample: _Sample, key: str) -> bytes:
        with _lmdb_env(self.root).begin(write=False) as txn:
            buf = txn.get(key.encode('ascii'))
        if buf is None:
            raise KeyError(
                f'LMDB {self.root} has no key {key!r} for sample {sample.key!r} listed in its '
                f'{META_INFO}; recreate the LMDB.'
            )
        return buf

    def _read_lmdb(self, sample: _Sample) -> tuple:
        source = f'{self.root}:{sample.key}'
        ldrs = [
            lmdb_codec.decode_ldr(self._lmdb_get(sample, lmdb_codec.ldr_key(sample.key, i)), f'{source}/ldr_{i}')
            for i in range(self.num_exposure)
        ]
        gt = lmdb_codec.decode_gt(self._lmdb_get(sample, sample.gt_path), f'{source}/gt')
        expected = tuple(sample.shape) + (3,)
        found = [img.shape for img in ldrs + [gt]]
        if any(shape != expected for shape in found):
            raise ValueError(
                f'LMDB {self.root}, sample {sample.key!r}: {META_INFO} gives shape {expected}, the stored '
                f'frames and GT have {found}.'
            )
        layout.validate_gt(gt, source, f'{source}/gt', self.gt_max)
        layout.warn_gt_above_one(gt, source, f'{source}/gt')
        return ldrs, gt

    # ------------------------------------------------------------------ training transforms

    def _crop_and_augment(self, ldrs: list, gt: np.ndarray, key: str, rng: np.random.Generator) -> tuple:
        """One random window and one flip/rotation, the same for every frame and the GT, drawn from ``rng``."""
        images = ldrs + [gt]
        if self.gt_size is not None:
            images = self._random_crop(images, int(self.gt_size), key, rng)
        hflip = self.use_hflip and rng.random() < 0.5
        vflip = self.use_rot and rng.random() < 0.5
        transpose = self.use_rot and rng.random() < 0.5
        if hflip:
            images = [img[:, ::-1] for img in images]
        if vflip:
            images = [img[::-1] for img in images]
        if transpose:  # with the flips, all 8 rotations and reflections (as BasicSR's augment)
            images = [img.transpose(1, 0, 2) for img in images]
        return images[:-1], images[-1]

    def _random_crop(self, images: list, size: int, key: str, rng: np.random.Generator) -> list:
        height, width = images[-1].shape[:2]
        if size > height or size > width:
            raise ValueError(
                f'gt_size {size} is larger than sample {key!r} ({height} x {width}) in {self.root}; '
                'lower gt_size or use larger patches.'
            )
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        return [img[top : top + size, left : left + size] for img in images]

    def _pack(self, ldrs: list, gt: np.ndarray, sample: _Sample) -> dict:
        exposures = layout.ev_to_exposure(sample.evs)
        lq = network_input(ldrs, exposures, self.gamma, sample_response(self.response, ldrs, exposures))[0]
        return {
            'lq': lq.contiguous(),
            'gt': torch.from_numpy(np.ascontiguousarray(gt.transpose(2, 0, 1), dtype=np.float32)),
            'exposures': torch.from_numpy(exposures),
            'key': sample.key,
            'lq_path': sample.lq_path,
            'gt_path': sample.gt_path,
        }
