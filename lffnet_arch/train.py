"""Train an HDR fusion network with BasicSR's options: ``python lffnet_arch/train.py -opt OPTIONS.yml``.

Run as a script, experiments/, tb_logger/ and results/ go under the repository root (BasicSR's behaviour); the
installed ``lffnet-train`` command writes them under the working directory. Relative paths in the options file are
read against that same root. Every BasicSR flag works (``--auto_resume``, ``--launcher pytorch`` with torchrun,
``--debug``, ``--force_yml``).

The loop is BasicSR's ``train_pipeline`` (its loggers, dataset, data loader and model builders are used as they
are), with what a reliable run needs:

- options read safely (:func:`lffnet_arch.commands.options.parse_options`): no ``exec`` / ``eval`` of ``--force_yml``,
  relative paths resolved against the root and the resolved options saved in the experiment folder;
- exactly ``train.total_iter`` iterations, one validation at the end (none repeated), a remaining time that never
  goes negative;
- exact resume: the training state holds the sampler's epoch and position and the random generator states, and
  datasets with ``takes_epoch`` get ``(epoch, index)`` from the sampler (:class:`~lffnet_arch.data.sampler.
  EpochSampler`), so a resumed run computes the losses the uninterrupted one would have; validation leaves the
  generators as it found them. Training states are read with ``torch.load(weights_only=True)``;
- a non-finite loss or gradient stops the run at once (``HDRModel.optimize_parameters``), logged, before any save;
- temporary files left in the experiment folder by a killed run (their process gone) are removed, and logged;
- basicsr's CUDA-only ``model_to_device`` is replaced for the run (:func:`lffnet_arch.compat.apply_runtime`), so
  distributed training works on the CPU.
"""

import datetime
import logging
import math
import os.path as osp
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Optional

if __name__ == '__main__' and __package__ in (None, ''):
    # Run as a file: make the repository importable even without ``pip install -e .``.
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import lffnet_cli  # noqa: E402  (torch-free)

lffnet_cli.prefer_passive_waiting()  # before torch loads: its OpenMP threads sleep, not spin, on a shared machine

import lffnet_arch  # noqa: E402,F401  (registers the plugin; its torchvision shim precedes basicsr)
from lffnet_arch import compat  # noqa: E402
from lffnet_arch.threads import apply_thread_policy, limit_opencv_threads  # noqa: E402

__all__ = ['load_resume_state', 'main', 'record_differences', 'run', 'run_record']


def load_resume_state(opt: dict) -> Optional[dict]:
    """The training state to resume from: ``path.resume_state``, or with ``--auto_resume`` the latest one of the
    experiment this run writes to (whatever the working directory); None to start afresh.

    Read onto the CPU with ``torch.load(weights_only=True)`` (a scheduler's ``Counter`` allowed explicitly); BasicSR's
    ``check_resume`` then points ``path.pretrain_network_*`` at the checkpoints saved with it.

    Raises:
        FileNotFoundError: ``path.resume_state`` names no file.
    """
    import torch
    from basicsr.utils import scandir
    from basicsr.utils.misc import check_resume

    path = None
    if opt['auto_resume']:
        folder = opt['path']['training_states']
        if osp.isdir(folder):
            iters = [int(name[:-6]) for name in scandir(folder, suffix='.state') if name[:-6].isdigit()]
            if iters:
                path = osp.join(folder, f'{max(iters)}.state')
                opt['path']['resume_state'] = path
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
    if path is None:
        return None
    if not osp.isfile(path):
        raise FileNotFoundError(f'path.resume_state: no training state at {path}.')
    try:
        with torch.serialization.safe_globals([Counter]):
            state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # truncated, not a training state, or a pickle weights_only refuses
        raise ValueError(f'Training state {path} cannot be read with torch.load(weights_only=True): {error}') from None
    if not isinstance(state, dict) or not isinstance(state.get('iter'), int) or 'optimizers' not in state:
        raise ValueError(f'Training state {path} is not a training state (expected iter, optimizers, schedulers).')
    check_resume(opt, state['iter'])
    return state


# Options that change nothing a resumed run computes: where data lies and how it is loaded, logging, validation.
_MACHINE_KEYS = ('phase', 'num_worker_per_gpu', 'prefetch_mode', 'pin_memory', 'persistent_workers', 'name')


def run_record(opt: dict) -> dict:
    """What a resumed run must share with the run that saved the state for the resume to be exact: the network, the
    training options (schedule, optimiser, losses, precision; ``total_iter`` may grow, the schedule's own length is
    compared), the seed, the number of processes and the training data's sampling (batch, crop, samples per epoch;
    data paths excluded)."""
    data = opt['datasets']['train']
    sampling = {k: v for k, v in data.items() if not k.startswith('dataroot') and k not in _MACHINE_KEYS}
    record = {
        'network_g': opt['network_g'],
        'train': {k: v for k, v in opt['train'].items() if k != 'total_iter'},
        'datasets:train': sampling,
        'manual_seed': opt['manual_seed'],
        'world_size': opt['world_size'],
    }
    from lffnet_arch.commands.options import plain_options

    return plain_options(record)


def _flatten(value, path: str = '') -> dict:
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f'{path}:{key}' if path else key))
        return flat
    return {path: value}


def record_differences(saved: dict, current: dict) -> list:
    """``'option: saved -> current'`` for every option the two run records disagree on."""
    old, new = _flatten(saved), _flatten(current)
    missing = object()
    keys = sorted(set(old) | set(new))
    shown = lambda v: 'unset' if v is missing else repr(v)  # noqa: E731
    return [
        f'{k}: {shown(old.get(k, missing))} -> {shown(new.get(k, missing))}'
        for k in keys
        if old.get(k, missing) != new.get(k, missing)
    ]


@contextmanager
def _generators_kept():
    """Run the block without changing the random generators (validation must not shift training's draws)."""
    from lffnet_arch.data.sampler import restore_rng_state, rng_state

    saved = rng_state()
    try:
        yield
    finally:
        restore_rng_state(saved)


def _message_logger(opt: dict, start_iter: int, tb_logger):
    """BasicSR's MessageLogger with the remaining time counted right: after iteration i of N, N - i remain (it
    counts N - i - 1, so the last line read ``eta: -1 day, 23:59:59``)."""
    from basicsr.utils import MessageLogger

    msg_logger = MessageLogger(opt, start_iter, tb_logger)
    msg_logger.max_iters = int(opt['train']['total_iter']) + 1
    return msg_logger


class _LoaderIterator:
    """The prefetcher interface (``reset`` / ``next``, None at the end) over a loader, like BasicSR's CPUPrefetcher
    but without starting an iteration (and workers) before the sampler is positioned."""

    def __init__(self, loader) -> None:
        self.loader, self.iterator = loader, None

    def reset(self) -> None:
        self.iterator = iter(self.loader)

    def next(self) -> Optional[dict]:
        return next(self.iterator, None)


class _Training:
    """One training run: loaders, model, position, and the loop (see the module docstring)."""

    def __init__(self, root_path: str, argv=None) -> None:
        import torch
        from basicsr.utils import get_env_info, get_root_logger, get_time_str, make_exp_dirs, mkdir_and_rename
        from basicsr.utils.options import dict2str

        from lffnet_arch.commands.options import parse_options, write_options

        opt, args = parse_options(root_path, is_train=True, argv=argv)
        opt['root_path'] = root_path
        self.opt = opt
        torch.backends.cudnn.benchmark = True
        self.resume_state = load_resume_state(opt)
        saved = (self.resume_state or {}).get('run')
        if args.manual_seed_drawn and saved is not None:  # no seed in the options: continue with the run's own
            from basicsr.utils import set_random_seed

            opt['manual_seed'] = saved['manual_seed']
            set_random_seed(opt['manual_seed'] + opt['rank'])
        if self.resume_state is None:
            make_exp_dirs(opt)
            if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name'] and opt['rank'] == 0:
                mkdir_and_rename(osp.join(root_path, 'tb_logger', opt['name']))
        if opt['rank'] == 0:
            write_options(opt, osp.join(opt['path']['experiments_root'], osp.basename(args.opt)), sys.argv)
        log_file = osp.join(opt['path']['log'], f'train_{opt["name"]}_{get_time_str()}.log')
        self.logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=log_file)
        self.logger.info(get_env_info())
        self.logger.info(dict2str(opt))
        if opt['rank'] == 0:
            self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        from lffnet_arch.fileio.atomic import remove_stale_temporaries

        for path, pid in remove_stale_temporaries(self.opt['path']['experiments_root'], recursive=True):
            self.logger.warning(f'Removed {path}, left by an interrupted run (process {pid}, no longer running).')

    def build(self) -> None:
        """Data loaders, sampler and model, positioned where the resume state says."""
        from basicsr.models import build_model
        from basicsr.train import init_tb_loggers

        self.tb_logger = init_tb_loggers(self.opt)
        self._build_loaders()
        self.model = build_model(self.opt)
        self.epoch, self.batches_done, self.current_iter = 0, 0, 0
        if self.resume_state is not None:
            self._resume(self.resume_state)
        self.msg_logger = _message_logger(self.opt, self.current_iter, self.tb_logger)

    def _build_loaders(self) -> None:
        import torch
        from basicsr.data import build_dataloader, build_dataset

        from lffnet_arch.data.sampler import EpochSampler

        opt, self.val_loaders = self.opt, []
        for phase, dataset_opt in opt['datasets'].items():
            if phase == 'train':
                dataset_opt.setdefault('seed', opt['manual_seed'])
                train_set = build_dataset(dataset_opt)
                ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
                self.sampler = EpochSampler(train_set, opt['world_size'], opt['rank'], ratio)
                self.train_loader = build_dataloader(
                    train_set, dataset_opt, opt['num_gpu'], opt['dist'], self.sampler, opt['manual_seed']
                )
                # The loader draws its workers' base seed from this generator, not from torch's global one.
                self.loader_generator = torch.Generator()
                self.train_loader.generator = self.loader_generator
            elif phase.split('_')[0] == 'val':
                val_set = build_dataset(dataset_opt)
                self.val_loaders.append(build_dataloader(val_set, dataset_opt, opt['num_gpu'], opt['dist'], None))
                self.logger.info(f'Number of val images/folders in {dataset_opt["name"]}: {len(val_set)}')
            else:
                raise ValueError(f'datasets.{phase}: a phase must be train or val(_<n>), got {phase!r}.')
        if not hasattr(self, 'sampler'):
            raise ValueError('The options have no datasets.train section.')
        self.batch_size = self.train_loader.batch_size
        self.batches_per_epoch = len(self.sampler) // self.batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f'datasets.train: {len(self.sampler)} samples per process do not fill one batch of {self.batch_size}; '
                'lower batch_size_per_gpu or raise dataset_enlarge_ratio.'
            )
        self.total_iters = int(opt['train']['total_iter'])
        self.logger.info(
            f'Training statistics:\n\tNumber of train images: {len(train_set)}\n\tDataset enlarge ratio: {ratio}'
            f'\n\tBatch size per process: {self.batch_size}\n\tWorld size: {opt["world_size"]}'
            f'\n\tIterations per epoch: {self.batches_per_epoch}\n\tTotal iterations: {self.total_iters} '
            f'(about {math.ceil(self.total_iters / self.batches_per_epoch)} epochs).'
        )

    def _resume(self, state: dict) -> None:
        from lffnet_arch.data.sampler import restore_rng_state

        saved = state.get('run')
        if saved is None:
            message = (
                f'Training state {self.opt["path"]["resume_state"]} records no run options (saved by an older '
                'version): whether this resume continues that run exactly is not checked.'
            )
            self.logger.warning(message)
            warnings.warn(message, stacklevel=2)
        else:
            differences = record_differences(saved, run_record(self.opt))
            if differences:
                raise ValueError(
                    f'Training state {self.opt["path"]["resume_state"]} was saved by a run with other options, so '
                    f'resuming would not continue it exactly: {"; ".join(differences)}. Restore those options, or '
                    'start a new run under another name.'
                )
        self.model.resume_training(state)
        self.current_iter = state['iter']
        self.logger.info(f'Resuming training from epoch: {state["epoch"]}, iter: {state["iter"]}.')
        sampler = state.get('sampler')
        if sampler is None or 'rng' not in state or sampler.get('world_size') != self.opt['world_size']:
            message = (
                f'Training state {self.opt["path"]["resume_state"]} holds no sampler position and random generator '
                'states for this world size (saved by an older version or another number of processes): training '
                f'resumes at the start of epoch {state["epoch"]}, and its losses differ from an uninterrupted run.'
            )
            self.logger.warning(message)
            warnings.warn(message, stacklevel=2)
            self.epoch = state['epoch']
            return
        self.epoch, self.batches_done = sampler['epoch'], sampler['batches_done']
        if self.opt['rank'] == 0:  # only rank 0 saves; the other ranks keep their own seeded generators
            restore_rng_state(state['rng'])

    def _extra_state(self) -> dict:
        from lffnet_arch.data.sampler import rng_state

        sampler = {'epoch': self.epoch, 'batches_done': self.batches_done, 'world_size': self.opt['world_size']}
        return {'sampler': sampler, 'rng': rng_state(), 'run': run_record(self.opt)}

    def _start_epoch(self) -> None:
        self.sampler.set_position(self.epoch, self.batches_done * self.batch_size)
        self.loader_generator.manual_seed(self.opt['manual_seed'] * 100003 + self.epoch)
        self.prefetcher.reset()

    def _make_prefetcher(self):
        from basicsr.data.prefetch_dataloader import CUDAPrefetcher

        mode = self.opt['datasets']['train'].get('prefetch_mode')
        if mode in (None, 'cpu'):  # 'cpu': the loader itself prefetches (BasicSR's PrefetchDataLoader)
            return _LoaderIterator(self.train_loader)
        if mode == 'cuda':
            if self.opt['datasets']['train'].get('pin_memory') is not True:
                raise ValueError('datasets.train.prefetch_mode cuda needs pin_memory: true.')
            return CUDAPrefetcher(self.train_loader, self.opt)
        raise ValueError(f'datasets.train.prefetch_mode must be ~, cpu or cuda, got {mode!r}.')

    def _validate(self) -> None:
        with _generators_kept():
            for val_loader in self.val_loaders:
                self.model.validation(val_loader, self.current_iter, self.tb_logger, self.opt['val']['save_img'])
        self.last_validation = self.current_iter

    def _step(self, train_data: dict, timers: tuple) -> None:
        data_timer, iter_timer = timers
        self.current_iter += 1
        self.batches_done += 1
        self.model.update_learning_rate(self.current_iter, warmup_iter=self.opt['train'].get('warmup_iter', -1))
        self.model.feed_data(train_data)
        self.model.optimize_parameters(self.current_iter)
        iter_timer.record()
        if self.current_iter == 1:
            self.msg_logger.reset_start_time()
        if self.current_iter % self.opt['logger']['print_freq'] == 0:
            log_vars = {'epoch': self.epoch, 'iter': self.current_iter, 'lrs': self.model.get_current_learning_rate()}
            log_vars.update(time=iter_timer.get_avg_time(), data_time=data_timer.get_avg_time())
            log_vars.update(self.model.get_current_log())
            self.msg_logger(log_vars)
        if self.current_iter % self.opt['logger']['save_checkpoint_freq'] == 0:
            self.logger.info('Saving models and training states.')
            self.model.save(self.epoch, self.current_iter, extra_state=self._extra_state())
        if self.opt.get('val') is not None and self.current_iter % self.opt['val']['val_freq'] == 0:
            self._validate()

    def loop(self) -> None:
        """Train until ``total_iter``, save the latest network, validate once at the end."""
        from basicsr.utils import AvgTimer

        self.prefetcher = self._make_prefetcher()
        self.last_validation = None
        self.logger.info(f'Start training from epoch: {self.epoch}, iter: {self.current_iter}')
        timers = (AvgTimer(), AvgTimer())
        start_time = time.time()
        self._start_epoch()
        try:
            while self.current_iter < self.total_iters:
                train_data = self.prefetcher.next()
                if train_data is None:  # the epoch is over
                    self.epoch, self.batches_done = self.epoch + 1, 0
                    self._start_epoch()
                    continue
                timers[0].record()
                self._step(train_data, timers)
                timers[0].start()
                timers[1].start()
        except FloatingPointError as error:
            self.logger.error(str(error))
            raise
        consumed = datetime.timedelta(seconds=int(time.time() - start_time))
        self.logger.info(f'End of training. Time consumed: {consumed}')
        self.logger.info('Save the latest model.')
        self.model.save(epoch=-1, current_iter=-1)
        if self.opt.get('val') is not None and self.last_validation != self.current_iter:
            self._validate()
        if self.tb_logger:
            self.tb_logger.close()
        if self.opt['dist']:
            # The other ranks wait for rank 0's validation and saves, then all leave the process group together.
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def run(root_path: str, argv=None) -> None:
    """Train with ``root_path`` as the root of experiments/, tb_logger/ and relative paths in the options.

    Args:
        root_path (str): The run's root.
        argv (sequence of str, optional): Command-line arguments; default ``sys.argv[1:]``.
    """
    from lffnet_arch.commands.options import reporting_user_errors

    compat.apply_runtime()
    apply_thread_policy()  # the cores this process may use (shared among torchrun's local processes)
    limit_opencv_threads()  # before the data loader forks its workers
    with reporting_user_errors():  # options, data, checkpoints and the training state: one line for a mistake
        training = _Training(root_path, argv)
        training.build()
    training.loop()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point ``lffnet-train`` (``lffnet train``): runs under the current working directory."""
    run(osp.abspath('.'), argv)


if __name__ == '__main__':
    run(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
