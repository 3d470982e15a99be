"""Reading BasicSR options for ``lffnet_arch/train.py`` and ``lffnet_arch/test.py``: safely, with paths resolved.

BasicSR's ``parse_options`` builds ``--force_yml`` overrides by ``exec`` of the key path and ``eval`` of list values,
so ``--force_yml 'name=[__import__("os").system(...)]'`` runs code, and it reads relative dataset paths against the
working directory, so a run resumed from another folder reads other data. :func:`parse_options` takes the same
command line and gives the same options dictionary, but the options file is read with YAML's safe loader, overrides
with :func:`apply_overrides` (no code is ever evaluated) and relative paths are resolved against the run's root (the
folder ``experiments/`` and ``results/`` go under), as :func:`resolve_paths` describes.
"""

import argparse
import contextlib
import os
import random
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional, Union

import torch
import yaml

__all__ = [
    'apply_overrides',
    'parse_options',
    'parse_override',
    'plain_options',
    'read_options_file',
    'reporting_user_errors',
    'resolve_paths',
    'write_options',
]

# One option name in a --force_yml key path: what options files use (letters, digits, '_', '-', '.').
_KEY = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]*$')
_NUMBER = re.compile(r'^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$')
# Options that hold file or folder paths: every dataset's dataroot* and meta_info_file, and in ``path`` the
# pretrained networks and the resume state.
_DATASET_PATH_KEYS = re.compile(r'^(dataroot(_\w+)?|meta_info_file)$')
_PATH_PATH_KEYS = re.compile(r'^(pretrain_network_\w+|resume_state)$')


@contextlib.contextmanager
def reporting_user_errors() -> Iterator[None]:
    """Around the set-up of a command (reading options, data, checkpoints, the training state): a mistake in what
    the user gave (a bad option, a missing or unreadable file, a resume that would not be exact) is printed as one
    line and the process exits with status 2. Errors once the work runs keep their traceback."""
    try:
        yield
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        message = error.args[0] if error.args else repr(error)
        print(f'error: {message}', file=sys.stderr)
        raise SystemExit(2) from None


def _override_value(text: str, entry: str) -> Any:
    """The value of one override, read like a value in the options file (YAML's safe loader)."""
    if text.lower() == 'none':  # BasicSR's spelling of null, kept
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        reason = str(error).splitlines()[0]
        raise ValueError(f'--force_yml {entry!r}: the value is not a plain YAML value ({reason}).') from error
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)  # PyYAML reads 2e-4 as a string; an override means the number
    return value


def parse_override(entry: str) -> tuple[list[str], Any]:
    """Split one ``--force_yml`` entry ``key1:key2=value`` into its key path and its value.

    Args:
        entry (str): E.g. ``train:ema_decay=0.999``, ``datasets:train:gt_size=128``, ``val:metrics=~``,
            ``network_g:num_feat=!!float 32``, ``logger:print_freq=10``, ``train:scheduler:milestones=[1, 2]``.

    Returns:
        tuple[list[str], Any]: The key path and the value, read with YAML's safe loader (``none`` is also null,
        and scientific notation such as ``2e-4`` a float).

    Raises:
        ValueError: No ``=``, an empty or malformed key, or a value YAML's safe loader refuses (tags that construct
            Python objects, for example).
    """
    if '=' not in entry:
        raise ValueError(f'--force_yml {entry!r}: expected key1:key2=value, e.g. train:ema_decay=0.999.')
    key_path, text = entry.split('=', 1)
    keys = [key.strip() for key in key_path.split(':')]
    bad = [key for key in keys if not _KEY.match(key)]
    if bad:
        raise ValueError(
            f'--force_yml {entry!r}: option names are letters, digits, "_", "-" and "."; got {bad[0]!r}. '
            'Separate nested keys with ":", e.g. datasets:train:gt_size=128.'
        )
    return keys, _override_value(text.strip(), entry)


def _compatible(old: Any, new: Any) -> bool:
    """A scalar may replace a scalar, a list a list, a mapping a mapping; None goes anywhere."""
    if old is None or new is None:
        return True
    if isinstance(old, Mapping) or isinstance(new, Mapping):
        return isinstance(old, Mapping) and isinstance(new, Mapping)
    if isinstance(old, list) or isinstance(new, list):
        return isinstance(old, list) and isinstance(new, list)
    return True


def apply_overrides(opt: dict, entries: Optional[Sequence[str]]) -> dict:
    """Apply ``--force_yml`` overrides to ``opt`` in place; returns ``opt``.

    Every key but the last must exist and be a mapping; the last may be new (as with BasicSR). An existing value
    keeps its kind: a scalar is replaced by a scalar, a list by a list, a mapping by a mapping (or any by null).

    Raises:
        ValueError: A malformed entry (see :func:`parse_override`), a missing or non-mapping parent key, or a value
            of another kind than the one it replaces.
    """
    for entry in entries or ():
        keys, value = parse_override(entry)
        parent = opt
        for depth, key in enumerate(keys[:-1]):
            if not isinstance(parent.get(key), Mapping):
                where = ':'.join(keys[: depth + 1])
                raise ValueError(f'--force_yml {entry!r}: the options have no section {where!r} to set a key in.')
            parent = parent[key]
        old = parent.get(keys[-1])
        if not _compatible(old, value):
            raise ValueError(
                f'--force_yml {entry!r}: {":".join(keys)} is a {type(old).__name__} in the options file; '
                f'refusing a {type(value).__name__}.'
            )
        parent[keys[-1]] = value
    return opt


def _resolve(value: Any, root: str) -> Any:
    if isinstance(value, list):  # several folders (a radiance corpus)
        return [_resolve(item, root) for item in value]
    if not isinstance(value, str):
        return value
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(root, value))


def resolve_paths(opt: dict, root: str) -> dict:
    """Make the options' relative paths absolute, against ``root``; returns ``opt``.

    The rule (BasicSR's own options assume it): relative paths in an options file are relative to the run's root,
    the folder that ``experiments/`` and ``results/`` go under: the repository for ``python lffnet_arch/train.py``
    and ``test.py``, the working directory for the installed ``lffnet-train`` / ``lffnet-test``. So a run reads the
    same data from any working directory. Resolved: every dataset's ``dataroot`` / ``dataroot_*``, ``meta_info_file``
    and a ``response`` file (``.json``), and ``path.pretrain_network_*`` and ``path.resume_state``; ``~`` is expanded.
    """
    datasets = opt.get('datasets')
    for dataset in datasets.values() if isinstance(datasets, Mapping) else ():
        if not isinstance(dataset, Mapping):
            continue  # the options check names what is wrong
        for key in list(dataset):
            if _DATASET_PATH_KEYS.match(key):
                dataset[key] = _resolve(dataset[key], root)
        if isinstance(dataset.get('response'), str) and dataset['response'].lower().endswith('.json'):
            dataset['response'] = _resolve(dataset['response'], root)  # a response file, like the data
    path_opt = opt.get('path')
    for key in list(path_opt) if isinstance(path_opt, Mapping) else ():
        if _PATH_PATH_KEYS.match(key):
            path_opt[key] = _resolve(path_opt[key], root)
    return opt


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Train or test with a BasicSR options file.')
    parser.add_argument('-opt', type=str, required=True, help='path to the options YAML file')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true', help="resume the experiment's latest training state")
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', type=int, default=0)
    parser.add_argument(
        '--force_yml',
        nargs='+',
        default=None,
        help='override options, e.g. train:ema_decay=0.999 datasets:train:gt_size=128 (values are YAML)',
    )
    return parser


def read_options_file(path: Union[str, os.PathLike]) -> dict:
    """An options file as a mapping, read with YAML's safe loader (a ``!!python`` tag is refused, nothing runs).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not YAML the safe loader reads, or not a mapping with a ``name``; the message names ``path``.
    """
    from lffnet_arch.compat import safe_ordered_yaml

    if not os.path.isfile(path):
        raise FileNotFoundError(f'Options file {path} not found.')
    try:
        with open(path, encoding='utf-8') as file:
            opt = yaml.load(file, Loader=safe_ordered_yaml()[0])
    except yaml.YAMLError as error:
        reason = ' '.join(str(error).split())
        raise ValueError(
            f'Options file {path} is not plain YAML (tags such as !!python are refused): {reason}'
        ) from None
    if not isinstance(opt, Mapping) or 'name' not in opt:
        raise ValueError(f'Options file {path}: expected a mapping with at least name, datasets and path sections.')
    opt.setdefault('datasets', {})
    opt.setdefault('path', {})
    return opt


def _set_up_distributed(opt: dict, launcher: str) -> None:
    from basicsr.utils.dist_util import get_dist_info

    from lffnet_arch.compat import init_dist

    opt['dist'] = launcher != 'none'
    if opt['dist']:
        params = (opt.get('dist_params') or {}) if launcher == 'slurm' else {}
        init_dist(launcher, **params)
    opt['rank'], opt['world_size'] = get_dist_info()


def _set_run_paths(opt: dict, root_path: str, is_train: bool) -> None:
    if is_train:
        experiments_root = os.path.join(root_path, 'experiments', opt['name'])
        opt['path'].update(
            experiments_root=experiments_root,
            models=os.path.join(experiments_root, 'models'),
            training_states=os.path.join(experiments_root, 'training_states'),
            log=experiments_root,
            visualization=os.path.join(experiments_root, 'visualization'),
        )
        if 'debug' in opt['name']:  # BasicSR's debug mode: log, save and validate often
            if 'val' in opt:
                opt['val']['val_freq'] = 8
            opt['logger']['print_freq'] = 1
            opt['logger']['save_checkpoint_freq'] = 8
    else:
        results_root = os.path.join(root_path, 'results', opt['name'])
        opt['path'].update(
            results_root=results_root, log=results_root, visualization=os.path.join(results_root, 'visualization')
        )


def parse_options(
    root_path: str, is_train: bool = True, argv: Optional[Sequence[str]] = None
) -> tuple[dict, argparse.Namespace]:
    """BasicSR's command line and options, read safely: what ``basicsr.utils.options.parse_options`` returns.

    Flags: ``-opt``, ``--launcher``, ``--auto_resume``, ``--debug``, ``--local_rank``, ``--force_yml``. The file is
    read with YAML's safe loader, ``--force_yml`` applied with :func:`apply_overrides`, relative paths resolved
    against ``root_path`` (:func:`resolve_paths`); then, as BasicSR does, the process group is initialised for a
    launcher, the random seed set (``manual_seed`` + rank; drawn when missing), ``num_gpu: auto`` resolved, each
    dataset's ``phase`` set, and the experiment (or results) folders named under ``root_path``. Data-loading options
    that cannot work on this machine are adjusted (``lffnet_arch.compat.fix_dataloader_options``).

    Args:
        root_path (str): The run's root.
        is_train (bool): Training (``experiments/``) or testing (``results/``). Default: True.
        argv (sequence of str, optional): The arguments; default ``sys.argv[1:]``.

    Returns:
        tuple[dict, argparse.Namespace]: The options and the parsed arguments.

    Raises:
        FileNotFoundError: The options file is missing.
        ValueError: The options file is not a mapping with a name, or an override is malformed or refused.
        OptionsError: An option is unknown (a near miss is named), of the wrong type or out of range, or options
            that cannot work together (:func:`lffnet_arch.commands.options_schema.check_options`).
    """
    from basicsr.utils import set_random_seed

    from lffnet_arch.commands.options_schema import check_options
    from lffnet_arch.compat import fix_dataloader_options

    args = _argument_parser().parse_args(argv)
    opt = read_options_file(args.opt)
    apply_overrides(opt, args.force_yml)
    resolve_paths(opt, root_path)
    check_options(opt, is_train, args.opt)  # every key, type and range, before any work
    _set_up_distributed(opt, args.launcher)
    args.manual_seed_drawn = opt.get('manual_seed') is None  # a resume then continues with the saved run's seed
    if args.manual_seed_drawn:
        opt['manual_seed'] = random.randint(1, 10000)
    set_random_seed(opt['manual_seed'] + opt['rank'])
    opt['auto_resume'] = args.auto_resume
    opt['is_train'] = is_train
    if args.debug and not opt['name'].startswith('debug'):
        opt['name'] = f'debug_{opt["name"]}'
    if opt.get('num_gpu', 'auto') == 'auto':
        opt['num_gpu'] = torch.cuda.device_count()
    for phase, dataset in opt['datasets'].items():
        dataset['phase'] = phase.split('_')[0]  # val_1, test_2, ... are phases val, test
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
    _set_run_paths(opt, root_path, is_train)
    return fix_dataloader_options(opt), args


def write_options(opt: dict, path: str, command: Optional[Sequence[str]] = None) -> None:
    """Save the options a run used (paths resolved, overrides applied) as YAML, atomically.

    Args:
        opt (dict): The options, e.g. from :func:`parse_options`.
        path (str): The file, e.g. ``experiments/<name>/<options file name>``.
        command (sequence of str, optional): The command line, recorded in a comment.
    """
    from lffnet_arch.compat import safe_ordered_yaml
    from lffnet_arch.fileio.atomic import atomic_path

    header = f'# Options as run on {time.asctime()}: relative paths resolved, --force_yml applied.\n'
    if command:
        header += f'# Command: {" ".join(command)}\n'
    text = yaml.dump(plain_options(opt), Dumper=safe_ordered_yaml()[1], sort_keys=False, allow_unicode=True)
    with atomic_path(path) as tmp:
        tmp.write_text(header + '\n' + text, encoding='utf-8')


def plain_options(value: Any) -> Any:
    """Mappings as dicts, tuples as lists: what the safe dumper writes."""
    if isinstance(value, Mapping):
        return {str(k): plain_options(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_options(v) for v in value]
    return value
