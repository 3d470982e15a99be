"""Commands that prepare data on disk (run through ``scripts/data_preparation/``): training patches, LMDBs, the demo
set, simulated brackets. Not imported by ``lffnet_arch.data``."""
