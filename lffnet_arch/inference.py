"""Compatibility path of the deployment API, which lives in :mod:`lffnet_arch.deploy` (use that in new code).

``from lffnet_arch.inference import fuse, load_model, read_bracket`` and ``lffnet_arch.inference.main`` keep working.
"""

from lffnet_arch.commands.arguments import add_network_arguments
from lffnet_arch.commands.inference import find_brackets, main
from lffnet_arch.deploy import (
    ALIGN_METHODS,
    PRECISIONS,
    align_frames,
    fuse,
    load_model,
    read_bracket,
    read_exif_exposure,
)

__all__ = [
    'ALIGN_METHODS',
    'PRECISIONS',
    'add_network_arguments',
    'align_frames',
    'find_brackets',
    'fuse',
    'load_model',
    'main',
    'read_bracket',
    'read_exif_exposure',
]
