"""GPU benchmark in a few minutes: inference latency at 1000 x 1500 in fp32 and bf16, and training iterations per
second, for AHDRNet, LFFNet and the folded LFFNet (and any network named with --archs or --opt), as markdown tables.

The code is ``scripts.measure.gpu`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.gpu import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
