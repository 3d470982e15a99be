"""Registered data of the plugin; importing the package registers them in BasicSR."""

from lffnet_arch.data.hdr_dataset import MultiExposureHDRDataset

__all__ = ['MultiExposureHDRDataset']
