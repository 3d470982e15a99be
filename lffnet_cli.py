"""Console entry points that parse and check their arguments before torch is imported.

Importing ``lffnet_arch`` imports torch, torchvision and BasicSR (seconds on a quiet machine, far more on a busy one),
so a wrong flag would take that long to report. These entry points set :data:`DEFER_REGISTRATION` while the command's
torch-free argument module loads and checks the flags, then register the package and run the command.
"""

import os
import sys
from collections.abc import Sequence
from typing import Optional

__all__ = ['DEFER_REGISTRATION', 'inference', 'lffnet', 'prefer_huge_pages', 'prefer_passive_waiting', 'test', 'train']

# Read by lffnet_arch/__init__.py: while True, importing the package does not register it (nor import torch).
DEFER_REGISTRATION = False


def prefer_passive_waiting() -> None:
    """Ask the OpenMP runtime under torch's CPU kernels to sleep, not spin, while its threads wait
    (``OMP_WAIT_POLICY=PASSIVE``): on a machine other work shares, spinning threads take the cores that work needs.
    Read once when the runtime starts, so it is set before torch is imported; a value in the environment is kept."""
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


def prefer_huge_pages() -> None:
    """Ask torch's CPU allocator to back large tensors with transparent huge pages (``THP_MEM_ALLOC_ENABLE=1``):
    inference allocates and frees hundreds of megabytes per strip, and with 4 kB pages the kernel's page faults took
    a third of a 12 MP run (docs/benchmark.md). Read by torch once, at its first allocation, so it is set before torch
    is imported; a value in the environment is kept; without huge pages in the kernel it changes nothing."""
    os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')


def _parse_inference(argv: Optional[Sequence[str]]) -> tuple:
    global DEFER_REGISTRATION
    DEFER_REGISTRATION = True
    try:
        from lffnet_arch.commands.inference_args import parse_arguments

        return parse_arguments(argv)
    finally:
        DEFER_REGISTRATION = False


def inference(argv: Optional[Sequence[str]] = None) -> int:
    """``lffnet-inference``: check the flags, then import the package and fuse."""
    args, parser = _parse_inference(argv)
    prefer_passive_waiting()
    prefer_huge_pages()
    import lffnet_arch

    lffnet_arch.register()
    from lffnet_arch.commands.inference import run

    return run(args, parser)


def train(argv: Optional[Sequence[str]] = None) -> None:
    """``lffnet-train``: BasicSR's training with the package's thread policy (:mod:`lffnet_arch.threads`)."""
    prefer_passive_waiting()
    from lffnet_arch.train import main

    main(argv)


def test(argv: Optional[Sequence[str]] = None) -> None:
    """``lffnet-test``: BasicSR's testing with the package's thread policy."""
    prefer_passive_waiting()
    from lffnet_arch.test import main

    main(argv)


def lffnet(argv: Optional[Sequence[str]] = None) -> int:
    """``lffnet <command>``: ``lffnet infer`` checks its flags first, as ``lffnet-inference`` does; the other
    commands go to :mod:`lffnet_arch.commands.lffnet`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == 'infer':
        sys.argv[0] = 'lffnet infer'  # argparse's usage line names the subcommand
        return inference(argv[1:])
    prefer_passive_waiting()
    from lffnet_arch.commands.lffnet import main

    return main(argv)


if __name__ == '__main__':
    sys.exit(inference())
