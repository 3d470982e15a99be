"""Cut the small CC0 radiance crops bundled for the quick start's demo set
(``lffnet_arch/data/simulator/demo_radiance/``).

The command is ``lffnet_arch.commands.make_demo_radiance.main``; ``--help`` lists its flags.
"""

import sys
from pathlib import Path

try:
    import lffnet_arch  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lffnet_arch.commands.make_demo_radiance import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
