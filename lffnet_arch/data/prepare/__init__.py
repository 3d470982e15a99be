"""Data preparation behind the commands of :mod:`lffnet_arch.commands`: training patches (:mod:`.extract_subimages`),
LMDBs (:mod:`.create_lmdb`) and their worker pools (:mod:`.jobs`). Not imported by ``lffnet_arch.data``."""
