"""Files: LDR frames and Radiance ``.hdr`` images (:mod:`.image`), OpenEXR (:mod:`.exr`), atomic writes and staged
output folders (:mod:`.atomic`), checkpoints (:mod:`.checkpoint`). Knows no network; every layer may import it."""
