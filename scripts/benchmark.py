"""Model cost benchmark: parameters, conv MACs, latency, peak memory, achieved GFLOP/s, training throughput and,
with checkpoints and a test set, the quality table of scripts/evaluate_quality.py --test_set.

The code is ``scripts.measure.speed`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.speed import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
