"""Registered data of the plugin; importing the package registers them in BasicSR."""

from lffnet_arch.data.hdr_dataset import MultiExposureHDRDataset
from lffnet_arch.data.simulator.simulated_dataset import SimulatedBracketDataset
from lffnet_arch.data.stack_dataset import ExposureStackDataset

__all__ = ['ExposureStackDataset', 'MultiExposureHDRDataset', 'SimulatedBracketDataset']
