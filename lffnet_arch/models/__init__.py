"""Registered models; importing the package registers ``HDRModel`` in BasicSR's ``MODEL_REGISTRY``."""

from lffnet_arch.models.hdr_model import HDRModel

__all__ = ['HDRModel']
