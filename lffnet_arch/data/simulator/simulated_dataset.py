"""Brackets simulated online from real radiance maps, registered in BasicSR (see
:mod:`lffnet_arch.data.simulator.capture`)."""

import json
import os
import warnings
from collections.abc import Mapping
from typing import Union

import numpy as np
import torch
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from lffnet_arch.data.simulator.capture import canvas_size, forward_response, settings_for_style, simulate_bracket
from lffnet_arch.data.simulator.radiance import load_radiance_maps
from lffnet_arch.fileio.image import ldr_to_float
from lffnet_arch.hdr_input import network_input
from lffnet_arch.response.curves import Response, parse_response
from lffnet_arch.response.resolve import LINEARISATION_OPTIONS, sample_response
from lffnet_arch.schema import FREE, Either, Float, Int, ListOf, Null, Str, check_dataset_options

__all__ = ['SimulatedBracketDataset', 'parse_styles']


def parse_styles(styles: Union[None, str, list, Mapping], base: Mapping) -> tuple:
    """(names, weights, settings) from the ``styles`` option.

    ``styles`` is a style name, a list of names (equal weights), or a mapping ``{name: {weight: w, <knob>: value}}``
    whose knobs override the style's (see :class:`~lffnet_arch.data.simulator.capture.CaptureSettings`). ``base``
    holds knobs set for every style (``num_exposure``, ``ref_idx``).
    """
    if styles is None:
        styles = {'kalantari': {}, 'handheld': {}}
    if isinstance(styles, str):
        styles = [styles]
    if isinstance(styles, (list, tuple)):
        styles = {name: {} for name in styles}
    if not isinstance(styles, Mapping) or not styles:
        raise ValueError(f'SimulatedBracketDataset: option "styles" must name at least one style, got {styles!r}.')
    names, weights, settings = [], [], []
    for name, spec in styles.items():
        spec = dict(spec or {})
        weight = float(spec.pop('weight', 1.0))
        fixed = sorted(set(spec) & set(base))
        if fixed:
            raise ValueError(
                f'SimulatedBracketDataset: style {name!r} sets {fixed}, which the dataset sets for every style; set '
                'them at the dataset level (one network sees one number of frames and one reference).'
            )
        if not weight > 0:
            raise ValueError(f'SimulatedBracketDataset: style {name!r} has weight {weight}; expected > 0.')
        names.append(name)
        weights.append(weight)
        settings.append(settings_for_style(name, {**base, **spec}))
    weights = np.asarray(weights) / sum(weights)
    return names, weights, settings


@DATASET_REGISTRY.register()
class SimulatedBracketDataset(data.Dataset):
    """Exposure brackets simulated from real radiance maps: new variety every epoch, fixed for a seed.

    Sample ``index`` of epoch ``e`` is drawn from a generator seeded with ``(seed, e, index)``, so it is the same in
    any worker process and after a resume. Items may be requested as ``index`` (epoch 0: validation, or a plain
    sampler) or as an ``(epoch, index)`` pair, which the project's training loop passes to datasets that set
    ``takes_epoch``.

    Args:
        opt (dict): Options, as in BasicSR's ``datasets`` section:

            - dataroot (str | list[str]): Folders (searched recursively) or files of radiance maps (.hdr, .exr).
              Required.
            - include (list[str] | None): Use only these photographs (file stems). Default: all.
            - exclude (list[str] | None): Leave these photographs out (the validation split). Default: none.
            - max_latitude (float): Band of equirectangular panoramas used, in degrees from the horizon. Default 45.
            - styles: Capture styles and their weights, see :func:`parse_styles`. Default: kalantari and handheld,
              equally.
            - num_exposure (int): Frames per bracket T. Default 3.
            - ref_idx (int | None): Reference frame. Default (T - 1) // 2.
            - gamma (float): Gamma of the network's HDR-domain input L ** gamma / t. Default 2.2.
            - response (str | None): The inverse camera response the frames are linearised with: ``auto``
              (calibrated from each sample's own frames), ``gamma:<g>``, ``srgb``, ``linear`` or a response
              ``.json``. Default None: L ** gamma.
            - gt_size (int): Side of the simulated frames in pixels. Required.
            - num_samples (int): Samples per epoch (the dataset's length). Default 1000.
            - seed (int): Seed of every draw. Default 0.

    Each item is a dict like :class:`~lffnet_arch.data.hdr_dataset.MultiExposureHDRDataset`'s: ``lq`` (T, 6, H, W),
    ``gt`` (3, H, W) linear HDR in [0, 1], ``exposures`` (T,) with t = 1 for the shortest frame, ``key``
    (``sim<seed>_<style>_<epoch>_<index>``), ``lq_path`` and ``gt_path`` (the photograph's file), and ``response``
    (JSON of the camera curve the frames were rendered with,
    :func:`~lffnet_arch.data.simulator.capture.forward_response`).
    """

    takes_epoch = True
    OPTIONS = {
        'dataroot': Either(Str(), ListOf(Str(), min_len=1)),
        'include': Either(ListOf(Str()), Null()),
        'exclude': Either(ListOf(Str()), Null()),
        'max_latitude': Float(low=0, high=90),
        'styles': Either(Str(), ListOf(Str(), min_len=1), FREE),  # a mapping is checked by parse_styles
        'num_exposure': Int(low=1),
        'ref_idx': Either(Int(low=0), Null()),
        **LINEARISATION_OPTIONS,
        # 'camera': the bracket's own camera curve, as calibration would estimate it (with response_error).
        'response': Either(Str(('camera',)), LINEARISATION_OPTIONS['response']),
        'response_error': Float(low=0, high=1),
        # Global pre-alignment of the frames to the reference, as inference does before the network (``--align``).
        'align': Either(Str(), Null()),  # one of the inference command's methods, checked when the dataset is made
        'gt_size': Int(low=1),
        'num_samples': Int(low=1),
        'seed': Int(),
    }

    def __init__(self, opt: dict):
        super().__init__()
        check_dataset_options(type(self).__name__, opt, self.OPTIONS)
        self.opt = opt
        if opt.get('dataroot') is None:
            raise ValueError('SimulatedBracketDataset: option "dataroot" is required (folders of .hdr / .exr files).')
        if opt.get('gt_size') is None:
            raise ValueError('SimulatedBracketDataset: option "gt_size" (side of the frames in pixels) is required.')
        self.size = int(opt['gt_size'])
        self.num_samples = int(opt.get('num_samples', 1000))
        self.seed = int(opt.get('seed', 0))
        self.gamma = float(opt.get('gamma', 2.2))
        spec = opt.get('response')
        self.response = spec if spec in (None, 'camera') else parse_response(spec)
        self.response_error = float(opt.get('response_error', 0.0))
        self.align = opt.get('align')
        if self.align is not None:
            from lffnet_arch.choices import ALIGN_METHODS  # the deployment stack only when asked for

            if self.align not in ALIGN_METHODS:
                raise ValueError(
                    f'SimulatedBracketDataset: align must be one of {ALIGN_METHODS} or ~, got {self.align!r}.'
                )
        if self.response_error and spec != 'camera':
            raise ValueError('SimulatedBracketDataset: response_error applies to response: camera (the camera curve).')
        if self.num_samples < 1 or self.seed < 0:
            raise ValueError(
                f'SimulatedBracketDataset: num_samples must be >= 1 and seed >= 0, got {self.num_samples}, {self.seed}.'
            )
        base = {'num_exposure': int(opt.get('num_exposure', 3)), 'ref_idx': opt.get('ref_idx')}
        self.style_names, self.style_weights, self.settings = parse_styles(opt.get('styles'), base)
        roots = opt['dataroot'] if isinstance(opt['dataroot'], (list, tuple)) else [opt['dataroot']]
        # Each bracket is cut from a crop of the canvas size, larger than gt_size when the camera moves.
        min_size = max(canvas_size(settings, self.size) for settings in self.settings)
        try:
            self.maps = load_radiance_maps(
                [os.path.expanduser(str(r)) for r in roots],
                include=opt.get('include'),
                exclude=opt.get('exclude'),
                max_latitude=float(opt.get('max_latitude', 45.0)),
                min_size=min_size,
            )
        except ValueError as err:
            raise ValueError(f'SimulatedBracketDataset (gt_size {self.size}, crops of {min_size} px): {err}') from err

    def _response(self, ldrs: list, exposures, bracket=None, seed: tuple = ()) -> object:
        """The inverse response of this sample: the ``response`` option's, calibrated from the sample's own frames
        for ``auto``; the camera's true curve for ``camera``, with a calibration-like error of ``response_error``
        stops; None (L ** gamma) without the option."""
        if self.response == 'camera':
            return _true_response(bracket.info['response'], self.response_error, seed)
        return sample_response(self.response, ldrs, exposures)

    def _aligned(self, ldrs: list, exposures: np.ndarray, bracket) -> list:
        """The frames warped onto the reference by ``align`` (the inference command's pre-alignment), so the network
        trains on what it will see: frames whose camera shake is removed up to the method's error. A frame the method
        cannot align (flat crops) stays as simulated; the warnings saying so are not repeated per sample."""
        from lffnet_arch.deploy.align import align_frames

        ref = self.settings[0].reference
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)
            return align_frames(ldrs, exposures, ref, self.align)

    def __len__(self) -> int:
        return self.num_samples

    @property
    def photos(self) -> list[str]:
        """Names of the photographs drawn from."""
        return [m.name for m in self.maps]

    def settings_for(self, epoch: int, index: int) -> tuple:
        """(style name, settings) of sample ``index`` in ``epoch``; drawn from its own seed stream."""
        rng = np.random.default_rng([self.seed, epoch, index, 1])
        choice = int(rng.choice(len(self.style_names), p=self.style_weights))
        return self.style_names[choice], self.settings[choice]

    def bracket(self, epoch: int, index: int):
        """The :class:`~lffnet_arch.data.simulator.capture.Bracket` of sample ``index`` in ``epoch`` and its style
        name."""
        style, settings = self.settings_for(epoch, index)
        return simulate_bracket(self.maps, settings, self.size, (self.seed, epoch, index)), style

    def __getitem__(self, item: Union[int, tuple]) -> dict:
        epoch, index = item if isinstance(item, tuple) else (0, item)
        if not 0 <= index < self.num_samples:
            raise IndexError(f'SimulatedBracketDataset index {index} out of range [0, {self.num_samples}).')
        bracket, style = self.bracket(int(epoch), int(index))
        ldrs = [ldr_to_float(frame) for frame in bracket.ldrs]
        exposures = np.exp2(bracket.evs).astype(np.float32)
        response = self._response(ldrs, exposures, bracket, (self.seed, epoch, index))
        if self.align is not None:
            ldrs = self._aligned(ldrs, exposures, bracket)
        lq = network_input(ldrs, exposures, self.gamma, response)[0]
        photo = next(m for m in self.maps if m.name == bracket.info['photo'])
        return {
            'lq': lq.contiguous(),
            'gt': torch.from_numpy(np.ascontiguousarray(bracket.gt.transpose(2, 0, 1))),
            'exposures': torch.from_numpy(exposures),
            'key': f'sim{self.seed}_{style}_{epoch}_{index:06d}',
            'lq_path': str(photo.path),
            'gt_path': str(photo.path),
            'response': json.dumps(bracket.info['response']),  # the camera's curve: the evaluator's oracle
        }


def _true_response(record: dict, error: float, seed: tuple) -> Response:
    """The camera's inverse response of a simulated bracket, with a calibration-like error: per channel, log2 g is
    tilted by s (1 - z), s normal with ``error`` stops of spread (0 at the clipping point, where g is normalised, and
    growing toward black, which is how calibrated curves differ from the truth and between channels). Calibrating
    every sample costs about 0.3 s (``response: auto``); this costs a few milliseconds."""
    response = Response.from_forward(forward_response(record))
    if not error:
        return response
    rng = np.random.default_rng([*map(int, seed), 7919])
    codes = np.linspace(0.0, 1.0, response.table.shape[1])
    tilt = rng.normal(0.0, error, (3, 1)) * (1.0 - codes)
    return Response(response.table * np.exp2(tilt))
