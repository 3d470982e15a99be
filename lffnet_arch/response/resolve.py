"""The linearisation step shared by training, validation and inference: from a response option to the inverse
response a bracket is linearised with (given, or calibrated from the bracket itself)."""

from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from lffnet_arch.response.calibrate import calibrate_response
from lffnet_arch.response.curves import Response, parse_response
from lffnet_arch.schema import Either, Float, Null, OptionsError, Str

__all__ = ['LINEARISATION_OPTIONS', 'check_response_option', 'resolve_response', 'sample_response']


def resolve_response(
    spec: Union[str, Response, None], frames: Sequence[np.ndarray], times: np.ndarray
) -> tuple[Response, dict]:
    """The inverse response a bracket is linearised with, and how it was found.

    ``'auto'`` calibrates it from the frames themselves (:func:`lffnet_arch.response.calibrate_response`; robust
    to motion, noise, JPEG and clipping); when the frames cannot determine it (too few usable pixels, as in tiny or
    flat brackets) gamma 2.2 is used and the returned info says why. Other specs: ``gamma:<g>``, ``srgb``,
    ``linear``, a response ``.json`` file, or a :class:`~lffnet_arch.response.Response`.

    Returns:
        tuple[Response, dict]: The response and ``{'source': 'calibrated' | 'given' | 'fallback', ...}`` (the
        calibration's own info when calibrated, the reason when it fell back).
    """
    response = parse_response('gamma:2.2' if spec is None else spec)
    if response != 'auto':
        return response, {'source': 'given', 'response': response.spec or 'table'}
    try:
        calibrated, info = calibrate_response(frames, times)
    except ValueError as error:
        return Response.gamma(2.2), {'source': 'fallback', 'response': 'gamma:2.2', 'reason': str(error)}
    return calibrated, {'source': 'calibrated', **info}


def check_response_option(value: str, path: str) -> None:
    """Schema check of a ``response`` option: it must parse (``auto``, ``gamma:<g>``, ``srgb``, ``linear`` or an
    existing ``.json``); the error names the option's path."""
    try:
        parse_response(value)
    except (ValueError, FileNotFoundError) as error:
        raise OptionsError(f'{path}: {error}') from None


# The options of every dataset that linearises frames (training, validation and test sets alike).
LINEARISATION_OPTIONS = {
    'gamma': Float(low=0, low_open=True),
    'response': Either(Str(check=check_response_option), Null()),
}


def sample_response(option: Union[str, Response, None], frames: Sequence[np.ndarray], exposures) -> Optional[Response]:
    """The inverse response a dataset sample is linearised with: None (L ** gamma) without a ``response`` option,
    the option's response, or one calibrated from the sample's own frames for ``auto``."""
    if option is None:
        return None
    return resolve_response(option, frames, np.asarray(exposures, dtype=np.float64))[0]
