"""Write simulated exposure brackets (Kalantari layout) from real radiance maps.

The command is ``lffnet_arch.commands.simulate_brackets.main``; ``--help`` lists its flags.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lffnet_arch.commands.simulate_brackets import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main(root=Path(__file__).resolve().parents[2]))  # relative data paths: the checkout's, as training's
