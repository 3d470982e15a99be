"""Test HDR fusion networks with BasicSR's options: ``python lffnet_arch/test.py -opt OPTIONS.yml``.

Writes results/<name>/ (per-image ``.hdr`` and tonemapped ``.png`` plus the metrics in the log) under the repository
root when run as a script, under the working directory as the installed ``lffnet-test`` command; relative paths in
the options file are read against that same root. Any architecture registered in BasicSR that maps (B, T, 6, H, W)
to (B, 3, H, W) is tested with the same metrics.

BasicSR's ``test_pipeline`` with its loggers and builders, but the options are read by
:func:`lffnet_arch.commands.options.parse_options` (no ``exec`` / ``eval`` of ``--force_yml``, paths resolved), and
``path.pretrain_network_g`` is loaded by ``HDRModel.load_network`` with ``torch.load(weights_only=True)``.
"""

import logging
import os.path as osp
import sys
from collections.abc import Sequence
from typing import Optional

if __name__ == '__main__' and __package__ in (None, ''):
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import lffnet_cli  # noqa: E402  (torch-free)

lffnet_cli.prefer_passive_waiting()  # before torch loads: its OpenMP threads sleep, not spin, on a shared machine

import lffnet_arch  # noqa: E402,F401  (registers the plugin; its torchvision shim precedes basicsr)
from lffnet_arch import compat  # noqa: E402
from lffnet_arch.threads import apply_thread_policy  # noqa: E402

__all__ = ['main', 'run']


def run(root_path: str, argv=None) -> None:
    """Test every ``datasets`` entry with ``root_path`` as the root of results/ and of relative paths.

    Args:
        root_path (str): The run's root.
        argv (sequence of str, optional): Command-line arguments; default ``sys.argv[1:]``.
    """
    import torch
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.models import build_model
    from basicsr.utils import get_env_info, get_root_logger, get_time_str, make_exp_dirs
    from basicsr.utils.options import dict2str

    from lffnet_arch.commands.options import parse_options, reporting_user_errors

    compat.apply_runtime()
    apply_thread_policy()
    with reporting_user_errors():  # options, data and checkpoints: one line for a mistake
        opt, _ = parse_options(root_path, is_train=False, argv=argv)
        torch.backends.cudnn.benchmark = True
        make_exp_dirs(opt)
        log_file = osp.join(opt['path']['log'], f'test_{opt["name"]}_{get_time_str()}.log')
        logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=log_file)
        logger.info(get_env_info())
        logger.info(dict2str(opt))
        loaders = []
        for _, dataset_opt in sorted(opt['datasets'].items()):
            test_set = build_dataset(dataset_opt)
            loader = build_dataloader(test_set, dataset_opt, opt['num_gpu'], opt['dist'], None, opt['manual_seed'])
            loaders.append(loader)
            logger.info(f'Number of test images in {dataset_opt["name"]}: {len(test_set)}')
        model = build_model(opt)
    for loader in loaders:
        logger.info(f'Testing {loader.dataset.opt["name"]}...')
        model.validation(loader, current_iter=opt['name'], tb_logger=None, save_img=opt['val']['save_img'])


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point ``lffnet-test`` (``lffnet test``): runs under the current working directory."""
    run(osp.abspath('.'), argv)


if __name__ == '__main__':
    run(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
