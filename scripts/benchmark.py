"""Model cost benchmark: parameters, conv MACs, latency, peak memory, achieved GFLOP/s, training throughput and,
with checkpoints and a test set, the quality table of scripts/evaluate_quality.py --test_set.

The command is ``lffnet_arch.benchmark.speed.main``; ``--help`` lists its flags.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lffnet_arch.benchmark.speed import main  # noqa: E402

if __name__ == '__main__':
    main()
