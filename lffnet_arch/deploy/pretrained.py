"""Weights that ship inside the package (``lffnet_arch/weights/``), by name.

``load_model()`` and ``lffnet-inference`` use :data:`DEFAULT_MODEL` when no checkpoint is given; ``--model NAME``
(``load_model(pretrained=NAME)``) picks another. The results page (``docs/results.md``) says which ship and how
they were trained and measured.
"""

from pathlib import Path

__all__ = ['DEFAULT_MODEL', 'PRETRAINED', 'WEIGHTS_DIR', 'pretrained_path']

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / 'weights'
# name -> file in WEIGHTS_DIR. 'LFFNet' is the folded network (DO-Conv merged into plain convolutions, the same
# outputs); 'LFFNet-train' keeps its DO-Conv layers for fine-tuning.
PRETRAINED = {
    'LFFNet': 'LFFNet_RealHDR.pth',
    'LFFNet-train': 'LFFNet_RealHDR_train.pth',
    'AHDRNet': 'AHDRNet_RealHDR.pth',
}
DEFAULT_MODEL = 'LFFNet'


def pretrained_path(name: str = DEFAULT_MODEL) -> Path:
    """The shipped checkpoint called ``name``.

    Raises:
        ValueError: Not a shipped model's name.
        FileNotFoundError: This installation does not hold that file (the message says what to pass instead).
    """
    if name not in PRETRAINED:
        raise ValueError(f'Unknown shipped model {name!r}; expected one of {sorted(PRETRAINED)}.')
    path = WEIGHTS_DIR / PRETRAINED[name]
    if not path.is_file():
        raise FileNotFoundError(
            f'This installation has no shipped weights for {name!r} ({path} is missing); '
            'give a checkpoint instead (--checkpoint PATH, or load_model(PATH)).'
        )
    return path
