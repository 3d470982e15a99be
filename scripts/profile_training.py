"""Where the time of a training iteration goes (data, forward, losses, backward, optimizer), per memory format.

The code is ``scripts.measure.training_step`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.training_step import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
