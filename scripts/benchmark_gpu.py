"""GPU benchmark in a few minutes: inference latency at 1000 x 1500 in fp32 and bf16, and training iterations per
second, for AHDRNet, LFFNet and the folded LFFNet (and any network named with --archs or --opt), as markdown tables.

The command is ``lffnet_arch.benchmark.gpu.main``; ``--help`` lists its flags.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lffnet_arch.benchmark.gpu import main  # noqa: E402

if __name__ == '__main__':
    main()
