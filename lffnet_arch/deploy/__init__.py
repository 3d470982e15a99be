"""Using a trained model: load a checkpoint (:mod:`.model`), find a shipped one (:mod:`.pretrained`), read a bracket
with its exposure times (:mod:`.bracket`), align it (:mod:`.align`), fuse it whole or in tiles (:mod:`.fuse`) and
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

from lffnet_arch.deploy.align import ALIGN_METHODS, align_frames
from lffnet_arch.deploy.bracket import read_bracket, read_exif_exposure
from lffnet_arch.deploy.fuse import PRECISIONS, fuse
from lffnet_arch.deploy.model import load_model, load_network

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
