"""Where the optional real HDR data is: ``shared/data/real_hdr`` beside the checkout, or ``$LFFNET_REAL_HDR``.

Its licences allow research use only: tests read it in place, or copy it into ``tmp_path``, never into the project,
and skip when the folder is absent.
"""

import os
from pathlib import Path

REAL_HDR_ROOT = Path(
    os.environ.get('LFFNET_REAL_HDR') or Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'real_hdr'
)
