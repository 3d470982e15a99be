"""Print the merge head's properties (exposure equivariance, identity with the noise-weighted merge) for shipped
models or checkpoints.

The code is ``scripts.measure.properties`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.properties import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
