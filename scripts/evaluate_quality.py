"""Quality evaluation: trained networks beside classical merges on the validation sets of an options file.

The code is ``scripts.measure.quality`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.quality import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
