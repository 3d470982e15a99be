"""Cut the small CC0 radiance crops bundled for the quick start's demo set
(``lffnet_arch/data/simulator/demo_radiance/``).

From each named Poly Haven panorama (CC0 1.0; 1k versions from polyhaven.com), the 256 x 256 window of the band
within 45 degrees of the horizon with the widest dynamic range (log2 of the 99.5th over the 1st luminance
percentile, windows every 32 rows and 64 columns) is written as a half-float OpenEXR file. Values are scaled so
each crop's maximum is 1000 (the simulator meters every crop itself, so the scale carries no information).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from lffnet_arch.commands.arguments import add_output, add_overwrite
from lffnet_arch.data.simulator.radiance import load_radiance_maps
from lffnet_arch.fileio.atomic import atomic_path
from lffnet_arch.fileio.exr import write_exr

PHOTOS = (
    'adams_place_bridge_1k',
    'aerodynamics_workshop_1k',
    'brown_photostudio_02_1k',
    'empty_warehouse_01_1k',
    'forest_slope_1k',
    'peppermint_powerplant_1k',
)
SIZE = 256
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def widest_window(image: np.ndarray, size: int = SIZE) -> tuple:
    """(top, left) of the size x size window with the widest luminance range."""
    lum = image @ LUMA
    best = (-np.inf, 0, 0)
    for top in range(0, image.shape[0] - size + 1, 32):
        for left in range(0, image.shape[1] - size + 1, 64):
            window = lum[top : top + size, left : left + size]
            dr = np.log2(np.percentile(window, 99.5) / max(float(np.percentile(window, 1)), 1e-9))
            best = max(best, (dr, top, left))
    return best[1], best[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--input', type=Path, nargs='+', required=True, help='folders holding the panoramas')
    add_output(parser, 'output folder')
    parser.add_argument('--photos', nargs='+', default=list(PHOTOS), help='panoramas to crop (file stems)')
    add_overwrite(parser, 'existing crops')
    args = parser.parse_args(argv)
    try:
        maps = load_radiance_maps(args.input, include=args.photos, min_size=SIZE)
    except (FileNotFoundError, ValueError) as err:
        print(f'Error: {err}', file=sys.stderr)
        return 1
    args.output.mkdir(parents=True, exist_ok=True)
    for radiance in maps:
        path = args.output / f'{radiance.name}.exr'
        if path.exists() and not args.overwrite:
            print(f'Error: {path} exists; pass --overwrite to replace it.', file=sys.stderr)
            return 1
        top, left = widest_window(radiance.image)
        crop = radiance.image[top : top + SIZE, left : left + SIZE]
        with atomic_path(path) as tmp:
            write_exr(tmp, crop * (1000.0 / float(crop.max())), half=True, target=path)
        print(f'{path}: rows {top}-{top + SIZE}, columns {left}-{left + SIZE} of the band of {radiance.path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
