"""HDRModel: BasicSR's SRModel adapted to multi-exposure HDR fusion."""

from collections import OrderedDict
from os import path as osp
from typing import Optional

import numpy as np
import torch
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from tqdm import tqdm

from lffnet_arch.fileio.checkpoint import NETWORK_KEY, load_checkpoint, network_record, save_atomic, strip_prefix
from lffnet_arch.fileio.image import imwrite_atomic, write_hdr
from lffnet_arch.hdr_input import reference_frame_hdr
from lffnet_arch.metrics.hdr_metric import calculate_psnr_mu
from lffnet_arch.metrics.perceptual_metric import metric_unavailable
from lffnet_arch.tonemap import DEFAULT_TONEMAPPER, check_tonemapper, comparison_image, tonemap

__all__ = ['HDRModel']


def _to_hwc(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float tensor -> float32 RGB array (H, W, 3)."""
    return tensor.detach().float().cpu().reshape(-1, *tensor.shape[-2:]).permute(1, 2, 0).numpy()


@MODEL_REGISTRY.register()
class HDRModel(SRModel):
    """Training, validation and testing of multi-exposure HDR fusion networks.

    Any network registered in ``ARCH_REGISTRY`` that maps ``lq`` (B, T, 6, H, W) to (B, 3, H, W) linear HDR works.
    Overrides of :class:`basicsr.models.sr_model.SRModel`:

    - ``init_training_settings``: builds every loss listed under ``train.losses`` (a mapping name -> loss options;
      BasicSR's ``pixel_opt`` is accepted too and logged as ``l_pix``), plus EMA, optimizer and schedulers as SRModel.
    - ``feed_data``: also keeps the batch's sample names (``key``) for error messages.
    - ``optimize_parameters``: sums the losses, logs each as ``l_<name>`` and the sum as ``l_total``; a non-finite
      loss or gradient raises FloatingPointError (iteration, losses, sample names) before the optimizer steps.
    - ``test``: whole-image inference, or tiled when ``val.tile_size`` is set (the log says so: the RFFT blocks see
      the whole input, so tiled results differ). Runs the unwrapped network: in distributed training only rank 0
      validates, and a DDP forward would wait for the other ranks.
    - ``nondist_validation``: HDR metrics on float linear HDR (not 8-bit images), saving ``.hdr`` and a tonemapped
      ``.png`` per image (``val.tonemap``: mulaw, reinhard, drago, mantiuk or fusion (default)), and with
      ``val.save_comparison: true`` a ``_comparison.png`` per scene: the input frames, the prediction and the GT
      tone-mapped alike, and the mu-law error map. A metric whose optional package is missing (ColorVideoVDP without
      the ``metrics`` extra) is skipped with a warning that says how to install it. A non-finite output raises
      ValueError instead of being written.
    - ``load_network``: reads the checkpoint with ``torch.load(weights_only=True)`` (pretrained and resumed
      networks), whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says.
    - ``save`` / ``save_network`` / ``save_training_state``: written atomically; ``save`` takes extra training-state
      entries (the sampler position and random generator states of ``lffnet_arch/train.py``).

    With ``val.report_baseline: true`` the log also gives every metric for the trivial baseline that returns the
    reference frame's HDR-domain image (channels 3:6 of ``lq`` at the network's ``ref_idx``, or the middle frame for
    a network without one), the number a fusion network has to beat; computed at the first validation of each
    dataset and logged again at every later one.

    Extra options read: ``train.losses``, ``train.memory_format`` (``contiguous``, the default, or
    ``channels_last`` for the network's weights while training), ``train.precision`` (``fp32``, the default, or
    ``bf16``: the training forward pass under autocast; validation stays float32), ``val.tile_size``,
    ``val.tile_overlap``,
    ``val.save_img``, ``val.pbar``, ``val.report_baseline``, ``val.tonemap``, ``val.save_comparison``.
    """

    MEMORY_FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        """SRModel's, with ``train.memory_format`` applied first: before DDP wraps the network, whose gradient
        buckets follow the parameters' layout. Channels-last weights make every convolution of a training step run
        channels-last (``scripts/profile_training.py`` measures whether that helps)."""
        if self.is_train:
            memory_format = (self.opt.get('train') or {}).get('memory_format', 'contiguous')
            if memory_format not in self.MEMORY_FORMATS:
                raise ValueError(
                    f'train.memory_format must be one of {list(self.MEMORY_FORMATS)}, got {memory_format!r}.'
                )
            net = net.to(memory_format=self.MEMORY_FORMATS[memory_format])
        return super().model_to_device(net)

    def init_training_settings(self) -> None:
        self.net_g.train()
        train_opt = self.opt['train']
        precision = train_opt.get('precision', 'fp32')
        if precision not in ('fp32', 'bf16'):
            raise ValueError(f"train.precision must be 'fp32' or 'bf16', got {precision!r}.")
        self.train_bf16 = precision == 'bf16'
        self.ema_decay = train_opt.get('ema_decay', 0)
        if self.ema_decay > 0:
            self._init_ema()
        self.losses = self._build_losses(train_opt)
        self.setup_optimizers()
        self.setup_schedulers()

    def _init_ema(self) -> None:
        from basicsr.archs import build_network

        get_root_logger().info(f'Use Exponential Moving Average with decay: {self.ema_decay}')
        self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
        load_path = self.opt['path'].get('pretrain_network_g')
        if load_path is not None:
            self.load_network(self.net_g_ema, load_path, self.opt['path'].get('strict_load_g', True), 'params_ema')
        else:
            self.model_ema(0)
        self.net_g_ema.eval()

    def _build_losses(self, train_opt: dict) -> 'OrderedDict[str, torch.nn.Module]':
        loss_opts = OrderedDict(train_opt.get('losses') or {})
        if train_opt.get('pixel_opt'):
            loss_opts['pix'] = train_opt['pixel_opt']
        if not loss_opts:
            raise ValueError(
                'train.losses is empty: list at least one loss, e.g. '
                '"losses: {mu_l1: {type: MuLawL1Loss, loss_weight: 1.0}}".'
            )
        losses = OrderedDict()
        for name, loss_opt in loss_opts.items():
            if not isinstance(loss_opt, dict) or 'type' not in loss_opt:
                raise ValueError(f'train.losses.{name} must be a mapping with a "type", got {loss_opt!r}.')
            losses[name] = build_loss(dict(loss_opt)).to(self.device)
        return losses

    def feed_data(self, data: dict) -> None:
        super().feed_data(data)
        self.batch_keys = list(data.get('key', []))

    def training_forward(self) -> torch.Tensor:
        """The training forward pass of ``self.lq``, as float32. With ``train.precision: bf16`` it runs under
        autocast (weights, gradients and optimizer state stay float32; the RFFT blocks' FFTs run in float32)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.train_bf16):
            output = self.net_g(self.lq)
        return output.float()

    def training_losses(self, output: torch.Tensor) -> 'OrderedDict[str, torch.Tensor]':
        """``l_<name>`` of every loss against ``self.gt``, and their sum as ``l_total``."""
        loss_dict = OrderedDict((f'l_{name}', criterion(output, self.gt)) for name, criterion in self.losses.items())
        loss_dict['l_total'] = sum(loss_dict.values())
        return loss_dict

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad()
        self.output = self.training_forward()
        loss_dict = self.training_losses(self.output)
        loss_dict['l_total'].backward()
        self._check_finite(loss_dict, current_iter)
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _check_finite(self, loss_dict: dict, current_iter: int) -> None:
        """Raise FloatingPointError when a loss or the gradient norm is NaN/Inf (checked after backward, so in DDP,
        where gradients are averaged, every rank sees a non-finite gradient and stops together)."""
        grads = [p.grad for p in self.net_g.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        values = {name: float(value.detach()) for name, value in loss_dict.items()}
        if all(np.isfinite(v) for v in values.values()) and torch.isfinite(grad_norm):
            return
        losses = ', '.join(f'{name}: {value:.4e}' for name, value in values.items())
        raise FloatingPointError(
            f'Non-finite training at iteration {current_iter}: {losses}; gradient norm {float(grad_norm):.4e}; '
            f'batch samples {self.batch_keys}. Stopped before the optimizer step; check these samples (the dataset '
            'option gt_max bounds the GT) and the learning rate.'
        )

    def load_network(self, net, load_path: str, strict: bool = True, param_key: str = 'params') -> None:
        """Load ``param_key`` (``params`` when it is absent) of the checkpoint at ``load_path`` into ``net``.

        The checkpoint is read with ``torch.load(weights_only=True)`` (``utils.checkpoint.load_checkpoint``), so a
        pickled payload is refused; BasicSR's loader would unpickle anything when ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
        is set. A DataParallel ``module.`` prefix is removed; key differences are logged as BasicSR does.
        """
        net = self.get_bare_model(net)
        checkpoint = load_checkpoint(load_path)
        if param_key is not None:
            if param_key not in checkpoint and 'params' in checkpoint:
                get_root_logger().info(f'Loading: {param_key} does not exist in {load_path}, use params.')
                param_key = 'params'
            if param_key not in checkpoint:
                raise KeyError(f'Checkpoint {load_path} has no {param_key!r}; found {sorted(checkpoint)}.')
            checkpoint = checkpoint[param_key]
        get_root_logger().info(f'Loading {type(net).__name__} model from {load_path}, with param key: [{param_key}].')
        state_dict = strip_prefix(checkpoint)
        self._print_different_keys_loading(net, state_dict, strict)
        net.load_state_dict(state_dict, strict=strict)

    def test(self) -> None:
        net = self.get_bare_model(self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g)
        was_training = net.training
        net.eval()
        tile_size = self.opt.get('val', {}).get('tile_size')
        with torch.no_grad():
            if tile_size:
                from lffnet_arch.tiling import tiled_forward

                overlap = self.opt['val'].get('tile_overlap', 32)
                self.output = tiled_forward(net, self.lq, tile_size, overlap)
            else:
                self.output = net(self.lq)
        net.train(was_training)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img) -> None:
        dataset_name = dataloader.dataset.opt['name']
        val_opt = self.opt['val']
        metric_opts = self._runnable_metrics(val_opt.get('metrics') or {})
        check_tonemapper(val_opt.get('tonemap', DEFAULT_TONEMAPPER), 'val.tonemap')
        save_comparison = save_img and val_opt.get('save_comparison', False)
        if val_opt.get('tile_size'):
            get_root_logger().info(
                f'Validation on {dataset_name} runs in {val_opt["tile_size"]}px tiles '
                f'(overlap {val_opt.get("tile_overlap", 32)}): RFFT blocks see each tile only, so the figures differ '
                'from whole-image inference.'
            )
        if metric_opts:
            if not hasattr(self, 'metric_results'):
                self.metric_results = {}
            self._initialize_best_metric_results(dataset_name)
            self.metric_results = {name: 0.0 for name in metric_opts}
        # The baseline does not depend on the network: computed at the first validation of a dataset, then reused.
        if not hasattr(self, '_baselines'):
            self._baselines = {}
        baseline = None
        if val_opt.get('report_baseline') and dataset_name not in self._baselines:
            baseline = {name: 0.0 for name in metric_opts}
            ref_idx = getattr(self.get_bare_model(self.net_g), 'ref_idx', None)
        pbar = tqdm(total=len(dataloader), unit='image') if val_opt.get('pbar', False) else None

        for val_data in dataloader:
            name = val_data['key'][0]
            self.feed_data(val_data)
            self.test()
            pred = _to_hwc(self.output[0])
            finite = np.isfinite(pred)
            if not finite.all():
                raise ValueError(
                    f'Validation on {dataset_name} at {current_iter}: the output for {name} has '
                    f'{int((~finite).sum())} NaN/Inf values; nothing written.'
                )
            if save_img:
                self._save_result(pred, name, dataset_name, current_iter)
            if save_comparison and hasattr(self, 'gt'):
                self._save_comparison(pred, name, dataset_name, current_iter)
            if metric_opts and hasattr(self, 'gt'):
                gt = _to_hwc(self.gt[0])
                if baseline is not None:
                    reference = _to_hwc(reference_frame_hdr(self.lq[0], ref_idx))
                for metric, opt_ in metric_opts.items():
                    self.metric_results[metric] += calculate_metric({'img': pred, 'img2': gt}, opt_)
                    if baseline is not None:
                        baseline[metric] += calculate_metric({'img': reference, 'img2': gt}, opt_)
            for attr in ('lq', 'gt', 'output'):
                if hasattr(self, attr):
                    delattr(self, attr)
            if pbar is not None:
                pbar.update(1)
                pbar.set_description(f'Test {name}')
        if pbar is not None:
            pbar.close()

        if metric_opts:
            for metric in self.metric_results:
                self.metric_results[metric] /= len(dataloader)
                self._update_best_metric_result(dataset_name, metric, self.metric_results[metric], current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
            if baseline is not None:
                self._baselines[dataset_name] = {name: value / len(dataloader) for name, value in baseline.items()}
            if val_opt.get('report_baseline') and dataset_name in self._baselines:
                get_root_logger().info(
                    f'Reference-frame baseline on {dataset_name} (its HDR-domain image as the output): '
                    + ', '.join(f'{name}: {value:.4f}' for name, value in self._baselines[dataset_name].items())
                )

    def _runnable_metrics(self, metric_opts: dict) -> dict:
        """``val.metrics`` less those whose optional package is missing, each reported once in the log."""
        runnable = {}
        for name, opt_ in metric_opts.items():
            reason = metric_unavailable(opt_.get('type', ''))
            if reason is None:
                runnable[name] = opt_
            elif name not in getattr(self, '_skipped_metrics', set()):
                self._skipped_metrics = getattr(self, '_skipped_metrics', set()) | {name}
                get_root_logger().warning(f'Skipping val.metrics.{name}: {reason}')
        return runnable

    def _result_stem(self, name: str, dataset_name: str, current_iter) -> str:
        if self.opt['is_train']:
            return osp.join(self.opt['path']['visualization'], name, f'{name}_{current_iter}')
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return osp.join(self.opt['path']['visualization'], dataset_name, f'{name}_{suffix}')

    def _save_result(self, pred: np.ndarray, name: str, dataset_name: str, current_iter) -> None:
        stem = self._result_stem(name, dataset_name, current_iter)
        write_hdr(f'{stem}.hdr', pred)
        imwrite_atomic(f'{stem}.png', tonemap(pred, self.opt['val'].get('tonemap', DEFAULT_TONEMAPPER))[..., ::-1])

    def _save_comparison(self, pred: np.ndarray, name: str, dataset_name: str, current_iter) -> None:
        """``<stem>_comparison.png``: inputs, prediction, GT and error map (:func:`comparison_image`)."""
        gt = _to_hwc(self.gt[0])
        ldrs = [_to_hwc(self.lq[0, frame, 0:3]) for frame in range(self.lq.shape[1])]
        label = f'{self.opt["name"]}, PSNR-mu {calculate_psnr_mu(pred, gt):.2f} dB'
        picture = comparison_image(ldrs, pred, gt, self.opt['val'].get('tonemap', DEFAULT_TONEMAPPER), label)
        imwrite_atomic(f'{self._result_stem(name, dataset_name, current_iter)}_comparison.png', picture[..., ::-1])

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params') -> None:
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError(f'save_network: {len(nets)} networks but {len(keys)} param keys.')
        label = 'latest' if current_iter == -1 else current_iter
        save_dict = {}
        for net_, key in zip(nets, keys):
            state = self.get_bare_model(net_).state_dict()
            save_dict[key] = OrderedDict((k.removeprefix('module.'), v.cpu()) for k, v in state.items())
        save_dict[NETWORK_KEY] = network_record(self.opt['network_g'])  # the weights say which network they are
        save_atomic(save_dict, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    def save(self, epoch: int, current_iter: int, extra_state: Optional[dict] = None) -> None:
        """Save the network(s) (``net_g_<iter>.pth``, with ``params_ema`` under EMA) and the training state.

        Args:
            epoch (int): Current epoch (-1 with ``current_iter`` -1: only ``net_g_latest.pth``).
            current_iter (int): Current iteration, -1 for the latest.
            extra_state (dict, optional): More training-state entries, e.g. ``{'sampler': ..., 'rng': ...}``.
        """
        if hasattr(self, 'net_g_ema'):
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, param_key=['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        self.save_training_state(epoch, current_iter, extra_state)

    @master_only
    def save_training_state(self, epoch, current_iter, extra_state: Optional[dict] = None) -> None:
        if current_iter == -1:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            **(extra_state or {}),
        }
        save_atomic(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))
