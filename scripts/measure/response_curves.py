"""Plot inverse camera responses: the ``<name>_response.json`` that ``lffnet-inference`` writes beside each bracket's
images, or any response option (``gamma:2.2``, ``srgb``, ``linear``), as curves of g(code) per channel on a
logarithmic axis (where a calibration's errors in stops show), into one PNG."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from lffnet_arch.commands.arguments import add_output, add_overwrite, check_output_file
from lffnet_arch.fileio.image import imwrite_atomic
from lffnet_arch.response import parse_response
from scripts.measure.plot import Series, line_chart

__all__ = ['main', 'response_chart']

CHANNELS = 'RGB'


def response_chart(responses: Sequence[tuple], codes: int = 256) -> np.ndarray:
    """An RGB chart of the responses ``(label, Response)``: g per channel against the code value."""
    z = np.linspace(1 / codes, 1.0, codes)
    series = []
    for label, response in responses:
        values = response.at(z)
        same = np.allclose(values, values[:, :1])
        for c in range(1 if same else 3):
            name = label if same else f'{label} {CHANNELS[c]}'
            series.append(Series(name, list(z), list(values[:, c])))
    return line_chart(series, title='g(code): linear value, log scale', xlabel='code value', log_y=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('responses', nargs='+', help='response .json files or options (gamma:2.2, srgb, linear)')
    add_output(parser, 'PNG to write')
    add_overwrite(parser, 'the --output file')
    args = parser.parse_args(argv)
    try:
        check_output_file(args.output)
        if args.output.exists() and not args.overwrite:
            raise FileExistsError(f'--output {args.output} exists; pass --overwrite to replace it.')
        loaded = []
        for spec in args.responses:
            response = parse_response(spec)
            if response == 'auto':
                raise ValueError('auto is not a curve: give a response .json written by lffnet-inference')
            loaded.append((Path(spec).stem if spec.endswith('.json') else spec, response))
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f'Error: {error}', file=sys.stderr)
        return 1
    chart = response_chart(loaded)
    imwrite_atomic(args.output, np.ascontiguousarray(chart[..., ::-1]), overwrite=args.overwrite)
    print(f'Wrote {args.output}.')
    return 0
