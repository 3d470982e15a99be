"""Plot inverse camera responses (the ``<name>_response.json`` beside inference outputs, or gamma:G / srgb / linear).

The code is ``scripts.measure.response_curves`` (runs from a checkout; not installed); ``--help`` lists the flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout root, which holds scripts.measure

from scripts.measure.response_curves import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
