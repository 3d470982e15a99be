"""Files: LDR frames and Radiance ``.hdr`` images (:mod:`.image`), camera RAW (:mod:`.raw`) and HEIC/HEIF
(:mod:`.heic`) frames through optional packages (:mod:`.extras`), OpenEXR (:mod:`.exr`), atomic writes and staged
output folders (:mod:`.atomic`), checkpoints (:mod:`.checkpoint`). Knows no network; every layer may import it."""
