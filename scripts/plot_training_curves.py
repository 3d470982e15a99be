"""Plot training curves from BasicSR training logs into one PNG: losses and validation metrics against iterations
(and, with --wall_time, the metrics against wall-clock time).

The code is ``scripts.measure.training_curves`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.training_curves import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
