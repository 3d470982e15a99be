"""Registered losses of the plugin; importing the package registers them in BasicSR's ``LOSS_REGISTRY``."""

from lffnet_arch.losses.hdr_loss import (
    MuLawL1Loss,
    MultiScaleCharbonnierLoss,
    MultiScaleEdgeLoss,
    MultiScaleFrequencyLoss,
)

__all__ = ['MuLawL1Loss', 'MultiScaleCharbonnierLoss', 'MultiScaleEdgeLoss', 'MultiScaleFrequencyLoss']
