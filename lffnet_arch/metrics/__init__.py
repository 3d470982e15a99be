"""Registered metrics of the plugin; importing the package registers them in BasicSR's ``METRIC_REGISTRY``."""

from lffnet_arch.metrics import hdr_metric, perceptual_metric, scaled_metric
from lffnet_arch.metrics.hdr_metric import *  # noqa: F403
from lffnet_arch.metrics.perceptual_metric import *  # noqa: F403
from lffnet_arch.metrics.scaled_metric import *  # noqa: F403

__all__ = list(hdr_metric.__all__) + list(perceptual_metric.__all__) + list(scaled_metric.__all__)
