"""Checking options before any work starts: a small schema language for the options files' sections.

Every options family (training and test files, each dataset's section, the simulator's capture settings, the
evaluation scripts' files) declares what it accepts beside the code that reads it, with the specs below; a
mistake is reported with the option's full path, written as ``--force_yml`` writes it (``datasets:train:gt_size``):

- an unknown key is an error, with "did you mean ..." when it is a near miss of a known one (``num_sample``,
  ``precison``), except in sections that are free-form by design (:data:`FREE`: the experiment logger's ``wandb``,
  ``dist_params``);
- a value of the wrong type, out of its range or not among its choices is an error naming what was expected;
- a spec may hold a ``check`` for what one value cannot say alone (a combination of options).

Integers are never taken for floats' sake from a float (``num_exposure: 2.5`` is refused, not truncated) and
booleans are not integers.
"""

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

__all__ = [
    'DATALOADER_OPTIONS',
    'FREE',
    'Bool',
    'Either',
    'Float',
    'Int',
    'ListOf',
    'Null',
    'OptionsError',
    'Section',
    'Spec',
    'Str',
    'check_dataset_options',
    'check_keys',
    'did_you_mean',
    'join_path',
]


class OptionsError(ValueError):
    """An option that cannot work; the message names the option's full path and what was expected."""


def join_path(path: str, key: Any) -> str:
    return f'{path}:{key}' if path else str(key)


def did_you_mean(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.75)
    return f' (did you mean {close[0]}?)' if close else ''


def check_keys(mapping: Mapping, known: Sequence[str], path: str) -> None:
    """Refuse keys of ``mapping`` that are not in ``known``, suggesting the nearest known one."""
    for key in mapping:
        if key not in known:
            hint = did_you_mean(key, known) or f' (known here: {", ".join(sorted(map(str, known)))})'
            raise OptionsError(f'{join_path(path, key)}: unknown option{hint}.')


class Spec:
    """What one option accepts. Subclasses implement :meth:`validate`; ``check(value, path)`` adds a rule."""

    def __init__(self, check: Optional[Callable[[Any, str], None]] = None) -> None:
        self.check = check

    def describe(self) -> str:
        raise NotImplementedError

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def validate(self, value: Any, path: str) -> None:
        if not self.accepts(value):
            raise OptionsError(f'{path}: expected {self.describe()}, got {value!r}.')
        self._validate_inner(value, path)
        if self.check is not None:
            self.check(value, path)

    def _validate_inner(self, value: Any, path: str) -> None:
        pass


class _Number(Spec):
    kind = 'a number'

    def __init__(self, low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high, self.low_open = low, high, low_open

    def describe(self) -> str:
        bounds = []
        if self.low is not None:
            bounds.append(f'{">" if self.low_open else ">="} {self.low:g}')
        if self.high is not None:
            bounds.append(f'<= {self.high:g}')
        return ' '.join([self.kind, ' and '.join(bounds)]).strip()

    def accepts(self, value: Any) -> bool:
        if not self._kind_ok(value) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


class Int(_Number):
    """An integer; a float with no fractional part (``4e5``, as YAML and overrides write large counts) passes too,
    one with a fraction (``2.5``) does not."""

    kind = 'an integer'

    def _kind_ok(self, value: Any) -> bool:
        if isinstance(value, float):
            return math.isfinite(value) and value.is_integer()
        return isinstance(value, int) and not isinstance(value, bool)


class Float(_Number):
    kind = 'a number'

    def _kind_ok(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)


class Bool(Spec):
    def describe(self) -> str:
        return 'true or false'

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


class Null(Spec):
    def describe(self) -> str:
        return '~ (null)'

    def accepts(self, value: Any) -> bool:
        return value is None


class Str(Spec):
    def __init__(self, choices: Optional[Sequence[str]] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.choices = tuple(choices) if choices is not None else None

    def describe(self) -> str:
        return f'one of {", ".join(self.choices)}' if self.choices else 'a string'

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and (self.choices is None or value in self.choices)


class ListOf(Spec):
    """A list (not a string) of items of one spec, with a length range."""

    def __init__(self, item: Spec, min_len: int = 0, max_len: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.item, self.min_len, self.max_len = item, min_len, max_len

    def describe(self) -> str:
        if self.max_len is not None:
            size = f' of {self.min_len} to {self.max_len} items'
        else:
            size = f' of at least {self.min_len} items' if self.min_len else ''
        return f'a list{size} (each {self.item.describe()})'

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) < self.min_len:
            return False
        return self.max_len is None or len(value) <= self.max_len

    def _validate_inner(self, value: Any, path: str) -> None:
        for index, item in enumerate(value):
            self.item.validate(item, f'{path}[{index}]')


class Either(Spec):
    """The first of several specs that accepts the value (e.g. an integer or ``auto``)."""

    def __init__(self, *options: Spec, **kwargs) -> None:
        super().__init__(**kwargs)
        self.options = options

    def describe(self) -> str:
        return ' or '.join(option.describe() for option in self.options)

    def accepts(self, value: Any) -> bool:
        return any(option.accepts(value) for option in self.options)

    def _validate_inner(self, value: Any, path: str) -> None:
        next(option for option in self.options if option.accepts(value)).validate(value, path)


class Section(Spec):
    """A mapping with known keys (``fields``: key -> Spec); ``required`` keys must be present; ``extra`` validates
    keys not in ``fields`` (a function ``(key, value, path)``, e.g. for named sub-sections), else they are refused."""

    def __init__(
        self,
        fields: Mapping[str, Spec],
        required: Sequence[str] = (),
        extra: Optional[Callable[[str, Any, str], None]] = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.fields, self.required, self.extra = dict(fields), tuple(required), extra

    def describe(self) -> str:
        return 'a mapping'

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def _validate_inner(self, value: Mapping, path: str) -> None:
        if self.extra is None:
            check_keys(value, list(self.fields), path)
        for key in self.required:
            if key not in value:
                raise OptionsError(f'{join_path(path, key)}: missing; expected {self.fields[key].describe()}.')
        for key, item in value.items():
            if key in self.fields:
                self.fields[key].validate(item, join_path(path, key))
            else:
                self.extra(key, item, join_path(path, key))


class _Free(Spec):
    def describe(self) -> str:
        return 'a mapping (free-form)'

    def accepts(self, value: Any) -> bool:
        return value is None or isinstance(value, Mapping)


FREE = _Free()  # a section whose keys are not checked (the experiment logger's, the process group's)

# Keys BasicSR's data-loader builder and the training loop read from every dataset section.
DATALOADER_OPTIONS = {
    'name': Str(),
    'type': Str(),
    'phase': Str(),
    'scale': Int(low=1),
    'batch_size_per_gpu': Int(low=1),
    'num_worker_per_gpu': Int(low=0),
    'use_shuffle': Bool(),
    'dataset_enlarge_ratio': Int(low=1),
    'prefetch_mode': Either(Null(), Str(('cpu', 'cuda'))),
    'num_prefetch_queue': Int(low=1),
    'pin_memory': Bool(),
    'persistent_workers': Bool(),
    'scoring': Str(('direct', 'scaled')),  # read by scripts/evaluate_quality.py
    'oracle': Bool(),  # evaluate_quality.py: rows fed the simulated camera's true response too
}


def check_dataset_options(name: str, opt: Mapping, fields: Mapping[str, Spec]) -> None:
    """A dataset's options against its own ``fields`` and BasicSR's data-loader keys, as ``<name>:<key>``."""
    Section({**DATALOADER_OPTIONS, **fields}).validate(opt, name)
