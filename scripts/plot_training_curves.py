"""Plot training curves from BasicSR training logs into one PNG: losses and validation metrics against iterations
(and, with --wall_time, the metrics against wall-clock time).

The command is ``lffnet_arch.benchmark.training_curves.main``; ``--help`` lists its flags.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lffnet_arch.benchmark.training_curves import main  # noqa: E402

if __name__ == '__main__':
    main()
