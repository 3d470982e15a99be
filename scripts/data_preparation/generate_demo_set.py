"""Generate the synthetic demo set (Kalantari layout) that the quick start trains on; nothing is downloaded.

The command is ``lffnet_arch.commands.generate_demo_set.main``; ``--help`` lists its flags.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lffnet_arch.commands.generate_demo_set import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
