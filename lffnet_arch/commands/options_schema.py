"""What a training or test options file may hold, checked when it is read (:func:`check_options`), before any work.

BasicSR's own keys are checked against the set its training and test pipelines (and this package's loop) read.
The options of registered classes are checked against what the classes accept: a network's, a loss's, an
optimizer's and a scheduler's against their constructors' arguments (a value must have the kind of the argument's
default: ``ref_idx: 1.7`` is refused where the default is an integer), a metric's against its function's keyword
arguments, and a dataset's against the ``OPTIONS`` schema its class declares (datasets of other packages, without
one, are checked for BasicSR's data-loader keys only). Free-form by design: ``dist_params`` and ``logger:wandb``.

Combinations refused here: scheduler periods that end before ``total_iter``, restart weights that do not match the
periods, and a missing ``val:val_freq`` or ``logger:save_checkpoint_freq`` where training needs them.
"""

import inspect
import typing
from collections.abc import Mapping
from typing import Any

from lffnet_arch.schema import (
    DATALOADER_OPTIONS,
    FREE,
    Bool,
    Either,
    Float,
    Int,
    Null,
    OptionsError,
    Section,
    Spec,
    Str,
    check_keys,
    join_path,
)

__all__ = ['check_options']


class _Registered(Spec):
    """A ``{type: Name, ...}`` section whose keys are the registered callable's keyword arguments."""

    def __init__(self, registry: str, skip: int = 0) -> None:
        super().__init__()
        self.registry, self.skip = registry, skip

    def describe(self) -> str:
        return f'a mapping with a registered {self.registry} "type"'

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping) and isinstance(value.get('type'), str)

    def _validate_inner(self, value: Mapping, path: str) -> None:
        target = _lookup(self.registry, value['type'], join_path(path, 'type'))
        _check_arguments(target, value, path, self.skip, self.registry)


def _lookup(registry: str, name: str, path: str) -> Any:
    import torch
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY

    if registry == 'optimizer':  # BasicSR 1.4.2's get_optimizer builds Adam only
        if name != 'Adam':
            raise OptionsError(f'{path}: expected Adam (the optimizer BasicSR 1.4.2 builds), got {name!r}.')
        return torch.optim.Adam
    if registry == 'scheduler':
        from basicsr.models import lr_scheduler

        if name not in ('MultiStepLR', 'CosineAnnealingRestartLR', 'MultiStepRestartLR'):
            raise OptionsError(f'{path}: expected MultiStepLR or CosineAnnealingRestartLR, got {name!r}.')
        return getattr(lr_scheduler, 'MultiStepRestartLR' if name == 'MultiStepLR' else name)
    table = {'network': ARCH_REGISTRY, 'loss': LOSS_REGISTRY, 'metric': METRIC_REGISTRY}[registry]
    if name not in table and f'{name}_basicsr' in table:  # BasicSR registers some of its own under this suffix
        return table.get(name)
    if name not in table:
        from lffnet_arch.schema import did_you_mean

        raise OptionsError(f'{path}: {name!r} is not a registered {registry}{did_you_mean(name, list(table.keys()))}.')
    return table.get(name)


def _check_arguments(target: Any, options: Mapping, path: str, skip: int, registry: str = '') -> None:
    """Keys of ``options`` (but ``type``) against ``target``'s keyword arguments, each value of the argument's
    annotated type (else of its default's kind). A callable taking ``**kwargs`` takes anything, except a metric,
    whose extra keyword arguments only absorb what BasicSR passes to every metric."""
    function = target.__init__ if inspect.isclass(target) else target
    parameters = list(inspect.signature(function).parameters.values())[1 if inspect.isclass(target) else 0 :]
    if registry == 'metric':  # the images a metric is given, not options: img and img2 (one image for NIQE)
        parameters = [p for p in parameters if p.name not in ('img', 'img2')]
    else:
        parameters = parameters[skip:]
    if registry != 'metric' and any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    names = {p.name: p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    given = {k: v for k, v in options.items() if k not in ('type', 'better')}
    check_keys(given, list(names), path)
    for key, value in given.items():
        _argument_spec(names[key], numbers=registry in ('optimizer', 'scheduler')).validate(value, join_path(path, key))


_ANNOTATIONS = {int: Int, float: Float, bool: Bool, str: Str}


def _argument_spec(parameter: inspect.Parameter, numbers: bool) -> Spec:
    """What an argument takes: from its annotation (``int``, ``Optional[float]``, ...) or else its default's kind;
    ``numbers`` reads integer defaults as any number (torch's optimizers and schedulers document floats)."""
    annotation = parameter.annotation
    optional = False
    if typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else inspect.Parameter.empty
    if isinstance(annotation, str):
        annotation = {'int': int, 'float': float, 'bool': bool, 'str': str}.get(annotation, inspect.Parameter.empty)
    if annotation in _ANNOTATIONS:
        spec = _ANNOTATIONS[annotation]()
    else:
        default = parameter.default
        if isinstance(default, bool):
            spec = Bool()
        elif isinstance(default, (int, float)) and (numbers or isinstance(default, float)):
            spec = Float()
        elif isinstance(default, int):
            spec = Int()
        else:
            return _Anything()
    return Either(spec, Null()) if optional or parameter.default is None else spec


class _Anything(Spec):
    def describe(self) -> str:
        return 'any value'

    def accepts(self, value: Any) -> bool:
        return True


def _check_dataset(phase: str, value: Any, path: str) -> None:
    from basicsr.utils.registry import DATASET_REGISTRY

    if not (phase == 'train' or phase.startswith(('val', 'test'))):
        raise OptionsError(f'{path}: a dataset section is named train, val* or test*, not {phase!r}.')
    if not isinstance(value, Mapping) or not isinstance(value.get('type'), str):
        raise OptionsError(f'{path}: expected a mapping with a registered dataset "type", got {value!r}.')
    if value['type'] not in DATASET_REGISTRY and f'{value["type"]}_basicsr' not in DATASET_REGISTRY:
        raise OptionsError(f'{join_path(path, "type")}: {value["type"]!r} is not a registered dataset.')
    schema = getattr(DATASET_REGISTRY.get(value['type']), 'OPTIONS', None)
    if schema is None:  # another package's dataset: only the data loader's keys are known
        for key, spec in DATALOADER_OPTIONS.items():
            if key in value:
                spec.validate(value[key], join_path(path, key))
        return
    Section({**DATALOADER_OPTIONS, **schema}).validate(value, path)


def _named(spec: Spec) -> Any:
    """``extra`` of a Section whose keys are free names (losses, metrics), each holding ``spec``."""
    return lambda key, value, path: spec.validate(value, path)


def _network(value: Any, path: str) -> None:
    _Registered('network').validate(value, path)
    if value['type'] == 'HDRAdapter' and isinstance(value.get('inner'), Mapping):
        inner = value['inner']
        if not isinstance(inner.get('type'), str):
            raise OptionsError(f'{join_path(path, "inner")}: expected a mapping with a registered network "type".')
        target = _lookup('network', inner['type'], join_path(path, 'inner:type'))
        from lffnet_arch.archs.adapter_arch import IN_CHANNEL_NAMES, OUT_CHANNEL_NAMES, SCALE_NAMES

        renamed = {*IN_CHANNEL_NAMES, *OUT_CHANNEL_NAMES, *SCALE_NAMES}  # the adapter renames these
        _check_arguments(target, {k: v for k, v in inner.items() if k not in renamed}, join_path(path, 'inner'), 0)


class _Network(Spec):
    def describe(self) -> str:
        return 'a mapping with a registered network "type"'

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def _validate_inner(self, value: Any, path: str) -> None:
        _network(value, path)


def _scheduler_fits(train: Mapping, path: str) -> None:
    scheduler, total = train.get('scheduler') or {}, train.get('total_iter')
    for key in ('periods', 'restart_weights', 'milestones', 'restarts'):
        if key in scheduler and not isinstance(scheduler[key], (list, tuple)):
            raise OptionsError(f'{path}:scheduler:{key}: expected a list, got {scheduler[key]!r}.')
    if scheduler.get('type') == 'CosineAnnealingRestartLR':
        periods, weights = scheduler.get('periods') or [], scheduler.get('restart_weights') or [1]
        if len(weights) != len(periods):
            raise OptionsError(
                f'{path}:scheduler:restart_weights: {len(weights)} weights for {len(periods)} periods; '
                'expected one weight per period.'
            )
        if isinstance(total, int) and sum(periods) < total:
            raise OptionsError(
                f'{path}:scheduler:periods: they end at iteration {sum(periods)}, before total_iter {total}; the '
                'cosine schedule has no learning rate after its last period. Lengthen the periods or shorten '
                'total_iter.'
            )


def _registered_model(name: str, path: str) -> None:
    from basicsr.utils.registry import MODEL_REGISTRY

    if name not in MODEL_REGISTRY and f'{name}_basicsr' not in MODEL_REGISTRY:
        raise OptionsError(f'{path}: {name!r} is not a registered model; registered: {sorted(MODEL_REGISTRY.keys())}.')


TRAIN = Section(
    {
        'total_iter': Int(low=1),
        'warmup_iter': Int(low=-1),
        'ema_decay': Float(low=0, high=1),
        'optim_g': _Registered('optimizer', skip=1),
        'scheduler': _Registered('scheduler', skip=1),
        'losses': Section({}, extra=_named(_Registered('loss'))),
        'pixel_opt': _Registered('loss'),
        'precision': Str(('fp32', 'bf16')),
        'memory_format': Str(('contiguous', 'channels_last')),
    },
    check=_scheduler_fits,
)
VAL = Section(
    {
        'val_freq': Either(Int(low=1), Float(low=1)),
        'save_img': Bool(),
        'save_comparison': Bool(),
        'suffix': Either(Str(), Null()),
        'pbar': Bool(),
        'report_baseline': Bool(),
        'tonemap': Str(),
        'tile_size': Either(Int(low=1), Null()),
        'tile_overlap': Int(low=0),
        'metrics': Either(Section({}, extra=_named(_Registered('metric'))), Null()),
    }
)
LOGGER = Section(
    {
        'print_freq': Int(low=1),
        'save_checkpoint_freq': Either(Int(low=1), Float(low=1)),
        'use_tb_logger': Bool(),
        'wandb': FREE,
    }
)
PATH = Section(
    {
        'pretrain_network_g': Either(Str(), Null()),
        'strict_load_g': Bool(),
        'param_key_g': Either(Str(), Null()),
        'resume_state': Either(Str(), Null()),
        'root': Either(Str(), Null()),
        # The run's folders, set by every run (as above).
        **{k: _Anything() for k in ('experiments_root', 'models', 'training_states', 'log', 'visualization')},
        'results_root': _Anything(),
    }
)
TOP = Section(
    {
        'name': Str(),
        'model_type': Str(check=_registered_model),
        'scale': Int(low=1),
        'num_gpu': Either(Int(low=0), Str(('auto',))),
        'manual_seed': Either(Int(), Null()),
        'datasets': Section({}, extra=_check_dataset),
        'network_g': _Network(),
        'path': PATH,
        'train': TRAIN,
        'val': VAL,
        'logger': LOGGER,
        'dist_params': FREE,
        'find_unused_parameters': Bool(),
        # Set by every run and written into the options file it saves; accepted so that file runs again.
        **{key: _Anything() for key in ('dist', 'rank', 'world_size', 'is_train', 'auto_resume', 'root_path')},
    },
    required=('name', 'network_g'),
)


def check_options(opt: Mapping, is_train: bool, source: str) -> None:
    """Check an options file's contents (after ``--force_yml``); raise :class:`OptionsError` naming ``source``.

    Args:
        opt (Mapping): The options as read.
        is_train (bool): Training needs ``train``, a ``train`` dataset, ``val:val_freq`` with a validation set and
            ``logger:save_checkpoint_freq``.
        source (str): The options file, for the message.
    """
    try:
        TOP.validate(opt, '')
        if is_train:
            _check_training(opt)
    except OptionsError as error:
        raise OptionsError(f'Options file {source}: {error}') from None


def _check_training(opt: Mapping) -> None:
    for key in ('train', 'logger'):
        if key not in opt:
            raise OptionsError(f'{key}: missing; training needs it.')
    if 'train' not in (opt.get('datasets') or {}):
        raise OptionsError('datasets:train: missing; training needs a train dataset.')
    TRAIN.fields['total_iter'].validate(opt['train'].get('total_iter'), 'train:total_iter')
    for key in ('optim_g', 'scheduler'):
        if key not in opt['train']:
            raise OptionsError(f'train:{key}: missing; training needs it.')
    if 'save_checkpoint_freq' not in opt['logger']:
        raise OptionsError('logger:save_checkpoint_freq: missing; training saves checkpoints this often.')
    has_val = any(phase.startswith('val') for phase in opt['datasets'])
    if has_val and 'val_freq' not in (opt.get('val') or {}):
        raise OptionsError('val:val_freq: missing; training validates this often on the val datasets.')
