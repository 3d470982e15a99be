"""Test HDR fusion networks with BasicSR's options: ``python lffnet_arch/test.py -opt OPTIONS.yml``.

Writes results/<name>/ (per-image ``.hdr`` and tonemapped ``.png`` plus the metrics in the log) under the repository
root when run as a script, under the working directory as the installed ``lffnet-test`` command. Any architecture
registered in BasicSR that maps (B, T, 6, H, W) to (B, 3, H, W) is tested with the same metrics.
"""

import os.path as osp
import sys

if __name__ == '__main__' and __package__ in (None, ''):
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import lffnet_arch  # noqa: E402,F401  (registers the plugin and applies lffnet_arch.compat before basicsr runs)


def run(root_path: str) -> None:
    """Run BasicSR's test pipeline with ``root_path`` as the root of experiments/ and results/."""
    from basicsr.test import test_pipeline

    test_pipeline(root_path)


def main() -> None:
    """Console entry point ``lffnet-test``: runs under the current working directory."""
    run(osp.abspath('.'))


if __name__ == '__main__':
    run(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
