"""Using a trained model: load a checkpoint (:mod:`.model`), find a shipped one (:mod:`.pretrained`), read a bracket
with its exposure times (:mod:`.bracket`), align it (:mod:`.align`), fuse it whole or in tiles (:mod:`.fusion`) and
export it to ONNX (:mod:`.onnx`). Knows the networks only through ``lffnet_arch.archs``' public API; the commands
over it live in :mod:`lffnet_arch.commands`.

Typical use::

    from lffnet_arch.deploy import fuse, load_model, read_bracket

    net = load_model('LFFNet.pth', opt='options/test/LFFNet/test_LFFNet_Kalantari.yml', device='cuda')
    frames, times = read_bracket('my_bracket/')          # exposure times in seconds
    hdr = fuse(frames, times, net, tile_size=512)        # (H, W, 3) float32 linear HDR

Exposure times come from, in this order of priority: explicit values, an ``exposure.txt`` next to the frames (EV
values, t = 2 ** EV, as in Kalantari's data set), the frames' EXIF ``ExposureTime``.
"""

import importlib

__all__ = [
    'ALIGN_METHODS',
    'PRECISIONS',
    'align_frames',
    'fuse',
    'load_model',
    'load_network',
    'read_bracket',
    'read_exif_exposure',
]

# name -> the module that defines it. Imported on first use, so the torch-free module ``pretrained``
# loads without torch: the command line checks its flags with it first.
_HOMES = {
    'ALIGN_METHODS': 'align',
    'align_frames': 'align',
    'read_bracket': 'bracket',
    'read_exif_exposure': 'bracket',
    'PRECISIONS': 'fusion',
    'fuse': 'fusion',
    'load_model': 'model',
    'load_network': 'model',
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f'{__name__}.{_HOMES[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
