"""Train an HDR fusion network with BasicSR's options: ``python lffnet_arch/train.py -opt OPTIONS.yml``.

Run as a script, experiments/, tb_logger/ and results/ go under the repository root (BasicSR's behaviour); the
installed ``lffnet-train`` command writes them under the working directory. Every BasicSR flag works
(``--auto_resume``, ``--launcher pytorch`` with torchrun, ``--debug``, ``--force_yml``).
"""

import os.path as osp
import sys

if __name__ == '__main__' and __package__ in (None, ''):
    # Run as a file: make the repository importable even without ``pip install -e .``.
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import lffnet_arch  # noqa: E402,F401  (registers the plugin and applies lffnet_arch.compat before basicsr runs)


def run(root_path: str) -> None:
    """Run BasicSR's train pipeline with ``root_path`` as the root of experiments/ and results/."""
    from basicsr.train import train_pipeline

    train_pipeline(root_path)


def main() -> None:
    """Console entry point ``lffnet-train``: runs under the current working directory."""
    run(osp.abspath('.'))


if __name__ == '__main__':
    run(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
