"""Measuring networks: conv MAC counting, parameter counts, memory and speed probes (the speed benchmarks use them).

MAC convention (docs/design.md §5): multiply-accumulates of every convolution for one frame triple (batch 1),
bias additions, activations and the FFTs excluded; the 1x1 convolutions of the RFFT frequency branches run on the
H x (W // 2 + 1) bins of ``rfft2`` and are counted there. :func:`count_conv_macs` counts them with forward hooks on a
copy of the network moved to the ``meta`` device, so any size is counted exactly without computing anything.
"""

import argparse
import copy
import math
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
import yaml
from torch import nn
from tqdm import tqdm

from lffnet_arch.archs.doconv import DOConv2d, fold_doconv
from lffnet_arch.archs.rfft import RFFTBlock
from lffnet_arch.deploy.model import create_network, load_network_options
from lffnet_arch.fileio.atomic import atomic_path

__all__ = [
    'REFERENCE_GMACS',
    'MacCount',
    'count_conv_macs',
    'count_parameters',
    'current_rss_bytes',
    'matmul_gflops',
    'peak_rss_bytes',
    'time_calls',
    'time_interleaved',
]

# Conv GMACs at 1000 x 1500 of the paper's configurations, as docs/design.md §5 quotes them.
REFERENCE_GMACS = {'AHDRNet': 2170, 'LFFNet': 1382, 'LFFNet without frequency-branch convs': 1308}

_CONV_TYPES = (nn.Conv2d, DOConv2d)


@dataclass
class MacCount:
    """Conv multiply-accumulates of one forward pass.

    Attributes:
        total (int): All convolutions, frequency-branch 1x1 convs included.
        frequency (int): The part spent in the 1x1 convs of RFFT frequency branches (on the rfft2 bins).
        by_layer (dict[str, int]): MACs per conv module name (a module called twice is summed).
    """

    total: int = 0
    frequency: int = 0
    by_layer: dict = field(default_factory=dict)

    @property
    def spatial(self) -> int:
        """MACs of the convolutions on pixels (``total - frequency``)."""
        return self.total - self.frequency


def count_parameters(net: nn.Module) -> int:
    """``sum(p.numel() for p in net.parameters())`` (buffers such as DO-Conv's D_diag are not parameters)."""
    return sum(p.numel() for p in net.parameters())


def _frequency_convs(net: nn.Module) -> set:
    ids = set()
    for module in net.modules():
        if isinstance(module, RFFTBlock):
            ids.update(id(m) for m in module.frequency.modules())
    return ids


def count_conv_macs(net: nn.Module, height: int, width: int, batch: int = 1) -> MacCount:
    """Count conv MACs of ``net`` on a (batch, T, C_in, height, width) input, on meta tensors.

    A conv producing (B, C_out, h, w) with ``C_in / groups`` input channels per group and a kh x kw kernel costs
    ``B * C_out * h * w * C_in / groups * kh * kw`` MACs. ``nn.Conv2d`` and ``DOConv2d`` (which folds into one plain
    conv) are counted; the network itself is not touched (a deep copy runs on the ``meta`` device).

    Args:
        net (nn.Module): Network mapping (B, T, C_in, H, W) to (B, 3, H, W); T and C_in are read from its
            ``num_exposure`` and ``num_in_ch`` attributes (default 3 and 6).
        height (int): Image height H.
        width (int): Image width W.
        batch (int): Batch size B. Default: 1 (one frame triple, the §5 convention).

    Returns:
        MacCount: Total, frequency-branch and per-layer MACs.
    """
    if height < 1 or width < 1 or batch < 1:
        raise ValueError(f'count_conv_macs: height, width and batch must be positive, got {height}, {width}, {batch}.')
    meta_net = copy.deepcopy(net).to('meta')
    frequency_ids = _frequency_convs(meta_net)
    count = MacCount()
    handles = []

    def make_hook(name: str, module: nn.Module) -> Callable:
        per_output = module.in_channels // getattr(module, 'groups', 1) * math.prod(module.kernel_size)

        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            macs = output.numel() * per_output
            count.total += macs
            count.by_layer[name] = count.by_layer.get(name, 0) + macs
            if id(module) in frequency_ids:
                count.frequency += macs

        return hook

    for name, module in meta_net.named_modules():
        if isinstance(module, _CONV_TYPES):
            handles.append(module.register_forward_hook(make_hook(name, module)))
    lq = torch.empty(batch, getattr(net, 'num_exposure', 3), getattr(net, 'num_in_ch', 6), height, width, device='meta')
    try:
        with torch.no_grad():
            meta_net(lq)
    finally:
        for handle in handles:
            handle.remove()
    return count


# ---------------------------------------------------------------- memory and speed


def peak_rss_bytes() -> int:
    """Peak resident set size of this process's own address space so far, in bytes.

    On Linux this is ``VmHWM`` of ``/proc/self/status``, which starts afresh at ``execve``. ``getrusage``'s
    ``ru_maxrss`` does not: the kernel carries it across ``execve``, so a subprocess started by a large parent
    reports the parent's memory (its peak so far when started with ``vfork``, as Python's ``subprocess`` does on
    Linux). Elsewhere (macOS) ``ru_maxrss`` is used.
    """
    try:
        with open('/proc/self/status', encoding='ascii') as file:
            for line in file:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == 'darwin' else peak * 1024)  # macOS reports bytes, Linux kilobytes


def current_rss_bytes() -> Optional[int]:
    """Current resident set size of this process in bytes (Linux ``/proc/self/statm``), else None."""
    try:
        with open('/proc/self/statm', encoding='ascii') as file:
            pages = int(file.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf('SC_PAGE_SIZE')


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_calls(
    fn: Callable[[], object],
    runs: int,
    warmup: int = 0,
    device: Union[str, torch.device] = 'cpu',
    progress: Optional[Callable[[int], None]] = None,
) -> list:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones (CUDA synchronised).

    Args:
        fn (callable): The work, called without arguments.
        runs (int): Timed calls, >= 1.
        warmup (int): Untimed calls first. Default: 0.
        device (str | torch.device): Where ``fn`` computes; CUDA work is synchronised around every call.
        progress (callable, optional): Called with 1 after every call (warm-up included), e.g. ``tqdm.update``.

    Returns:
        list[float]: The ``runs`` durations in seconds.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f'time_calls: runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}.')
    device = torch.device(device)
    times = []
    for index in range(warmup + runs):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        if index >= warmup:
            times.append(time.perf_counter() - start)
        if progress is not None:
            progress(1)
    return times


def time_interleaved(
    fns: dict,
    runs: int,
    warmup: int = 0,
    device: Union[str, torch.device] = 'cpu',
    progress: Optional[Callable[[int], None]] = None,
) -> dict:
    """Like :func:`time_calls` for several functions taking turns: round r calls each of them once, in order.

    A change in machine load (a shared machine) then hits every function alike, so per-round ratios stay fair.

    Returns:
        dict: name -> list of ``runs`` durations in seconds (the ``warmup`` rounds are not timed).
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f'time_interleaved: runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}.')
    times = {name: [] for name in fns}
    for index in range(warmup + runs):
        for name, fn in fns.items():
            seconds = time_calls(fn, runs=1, device=device, progress=progress)[0]
            if index >= warmup:
                times[name].append(seconds)
    return times


def matmul_gflops(size: int = 2048, runs: int = 5, device: Union[str, torch.device] = 'cpu') -> float:
    """The machine's fp32 matrix-multiply rate: 2 size^3 / the best time of ``torch.mm`` of two size x size matrices.

    The best of ``runs`` (after one warm-up) rather than the median, so that other work on a shared machine lowers
    the estimate as little as possible: it stands for what the hardware can do.

    Args:
        size (int): Matrix side. Default: 2048.
        runs (int): Timed products. Default: 5.
        device (str | torch.device): Where to multiply. Default: 'cpu'.

    Returns:
        float: GFLOP/s (1e9 floating-point operations per second).
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=generator).to(device)
    b = torch.rand(size, size, generator=generator).to(device)
    with torch.inference_mode():
        seconds = min(time_calls(lambda: torch.mm(a, b), runs, warmup=1, device=device))
    return 2 * size**3 / seconds / 1e9


def size_arg(text: str) -> tuple:
    """argparse type for ``HxW`` (e.g. ``1000x1500``): (height, width), positive integers."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        height = width = 0
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f'expected HxW with positive integers, e.g. 1000x1500; got {text!r}')
    return height, width


def name_path_arg(text: str) -> tuple:
    """argparse type for ``NAME=PATH``: (name, Path)."""
    name, sep, value = text.partition('=')
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f'expected NAME=PATH, got {text!r}')
    return name, Path(value)


# ---------------------------------------------------------------- models, inputs and reports of the speed benchmarks

DEFAULT_ARCHS = ('AHDRNet', 'LFFNet', 'LFFNet-folded')
FOLD_SUFFIX = '-folded'
GAMMA = 2.2
# LFFNet's objective (docs/design.md §6) and optimiser (options/train/LFFNet/train_LFFNet_Kalantari.yml).
TRAIN_LOSSES = (
    ('MuLawL1Loss', 1.0),
    ('MultiScaleCharbonnierLoss', 1.0),
    ('MultiScaleEdgeLoss', 0.05),
    ('MultiScaleFrequencyLoss', 0.01),
)
TRAIN_LR = 2e-4


def _registry(name: str) -> Any:
    """BasicSR's ``ARCH_REGISTRY`` or ``LOSS_REGISTRY``, imported after lffnet_arch (which patches basicsr)."""
    from basicsr.utils import registry

    return getattr(registry, name)


def log(message: str) -> None:
    """A progress line on stderr that does not break a running tqdm bar."""
    tqdm.write(message, file=sys.stderr)


@dataclass
class ModelSpec:
    """One row: ``label`` as given on the command line, the registered ``arch``, its ``options``, ``fold``."""

    label: str
    arch: str
    options: dict = field(default_factory=dict)
    fold: bool = False

    @property
    def base_label(self) -> str:
        """The label without ``-folded`` (whose checkpoint a folded row may use)."""
        head, sep, tail = self.label.partition(':')
        head = head[: -len(FOLD_SUFFIX)] if self.fold and head.endswith(FOLD_SUFFIX) else head
        return head + sep + tail

    @property
    def network_options(self) -> dict:
        """``network_g`` options (with ``type``) of the unfolded network."""
        return {**self.options, 'type': self.arch}


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_model_spec(text: str, yaml_options: Optional[dict] = None) -> ModelSpec:
    """Parse ``NAME[-folded][:key=value,...]`` (see the module docstring).

    Args:
        text (str): The spec.
        yaml_options (dict, optional): ``network_g`` dicts (with ``type``) of the --opt names.

    Returns:
        ModelSpec: The row.

    Raises:
        ValueError: Unknown architecture or a malformed ``key=value`` option.
    """
    yaml_options = yaml_options or {}
    head, _, tail = text.partition(':')
    fold = head.endswith(FOLD_SUFFIX)
    base = head[: -len(FOLD_SUFFIX)] if fold else head
    if base in yaml_options:
        options = dict(yaml_options[base])
        arch = options.pop('type')
    else:
        arch, options = base, {}
    if arch not in _registry('ARCH_REGISTRY'):
        raise ValueError(
            f'Model {text!r}: {arch!r} is neither a registered architecture nor an --opt name; '
            f'expected e.g. {", ".join(DEFAULT_ARCHS)} or a name given with --opt NAME=PATH.'
        )
    for item in filter(None, tail.split(',')):
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ValueError(f'Model {text!r}: options must be key=value pairs separated by commas, got {item!r}.')
        options[key.strip()] = _parse_value(value.strip())
    return ModelSpec(label=text, arch=arch, options=options, fold=fold)


def build_model(spec: ModelSpec) -> torch.nn.Module:
    """The network of a row in eval mode (random weights, DO-Conv folded for ``-folded`` rows)."""
    net = create_network(spec.network_options)
    return (fold_doconv(net) if spec.fold else net).eval()


def model_specs(labels: Sequence[str], opt_paths: Sequence[tuple]) -> list:
    """The rows of ``--archs`` labels, then the ``--opt NAME=PATH`` names no label uses (folded or not)."""
    yaml_options = {name: load_network_options(path) for name, path in opt_paths}
    labels = list(dict.fromkeys(labels))
    for name in yaml_options:
        if not any(label.partition(':')[0] in (name, name + FOLD_SUFFIX) for label in labels):
            labels.append(name)
    return [parse_model_spec(label, yaml_options) for label in labels]


def training_losses(device: torch.device) -> list:
    """LFFNet's weighted losses (``TRAIN_LOSSES``) on ``device``, for the training-throughput tables."""
    return [_registry('LOSS_REGISTRY').get(name)(loss_weight=weight).to(device) for name, weight in TRAIN_LOSSES]


def random_input(net: torch.nn.Module, height: int, width: int, batch: int = 1, seed: int = 0) -> tuple:
    """(lq (B, T, C_in, H, W) = cat(L, L ** 2.2 / t) per frame, t = 1, 4, 16, ...; gt (B, 3, H, W)), seeded."""
    generator = torch.Generator().manual_seed(seed)
    frames, channels = getattr(net, 'num_exposure', 3), getattr(net, 'num_in_ch', 6)
    ldr = torch.rand(batch, frames, channels // 2, height, width, generator=generator)
    times = 4.0 ** torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1, 1)
    lq = torch.cat([ldr, ldr**GAMMA / times], dim=2)
    if lq.shape[2] != channels:  # an architecture with another input layout: random values of its own shape
        lq = torch.rand(batch, frames, channels, height, width, generator=generator)
    return lq, torch.rand(batch, 3, height, width, generator=generator)


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Optional[Sequence[bool]] = None
) -> str:
    """A GitHub markdown table; numeric columns (by default those holding only numbers and '-') right-aligned."""
    if numeric is None:
        numeric = [
            bool(rows) and all(isinstance(r[i], (int, float)) or r[i] == '-' for r in rows) for i in range(len(headers))
        ]
    align = ['---:' if n else '---' for n in numeric]
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '|'.join(align) + '|']
    lines += ['| ' + ' | '.join(_cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f'{value:,}'
    if not math.isfinite(value):
        return str(value)
    return f'{value:,.3f}' if abs(value) < 10 else f'{value:,.1f}'


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--archs`` (rows, :func:`parse_model_spec`) and ``--opt NAME=PATH`` (rows from options YAMLs)."""
    parser.add_argument(
        '--archs',
        nargs='+',
        default=list(DEFAULT_ARCHS),
        help='models: NAME[-folded][:key=value,...] (default: %(default)s)',
    )
    parser.add_argument(
        '--opt',
        action='append',
        type=name_path_arg,
        default=[],
        metavar='NAME=PATH',
        help='define model NAME from the network_g of an options YAML (repeatable)',
    )


def check_counts(
    parser: argparse.ArgumentParser, args: argparse.Namespace, positive: Sequence[str], non_negative: Sequence[str]
) -> None:
    """``parser.error`` unless the ``positive`` options are >= 1 and the ``non_negative`` ones >= 0."""
    for names, low in ((positive, 1), (non_negative, 0)):
        for name in names:
            if getattr(args, name) < low:
                parser.error(f'--{name} must be >= {low}, got {getattr(args, name)}')


def report_command(args: argparse.Namespace, run: Callable[[argparse.Namespace], str]) -> str:
    """Run a benchmark whose ``args`` have ``output`` and ``overwrite``: refuse an existing --output before any
    work (unless --overwrite), print the markdown ``run(args)`` returns and write it atomically to --output."""
    if args.output is not None and args.output.exists() and not args.overwrite:
        raise FileExistsError(f'{args.output} already exists; pass --overwrite to replace it.')
    text = run(args)
    print(text, end='')
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.output, overwrite=args.overwrite) as tmp:
            Path(tmp).write_text(text, encoding='utf-8')
    return text
