"""Camera responses: the inverse response g that turns LDR codes into linear values (:class:`Response`), forward
response families for simulation and held-out evaluation, and calibration of g from a bracket's own frames."""

from lffnet_arch.response.calibrate import AUTO_METHOD, METHODS, calibrate_response
from lffnet_arch.response.curves import Response, parse_response
from lffnet_arch.response.families import (
    FAMILIES,
    HELD_OUT_FAMILIES,
    SIMULATOR_FAMILIES,
    ForwardCurve,
    draw_curve,
    forward_curve,
)

__all__ = [
    'AUTO_METHOD',
    'FAMILIES',
    'HELD_OUT_FAMILIES',
    'METHODS',
    'SIMULATOR_FAMILIES',
    'ForwardCurve',
    'Response',
    'calibrate_response',
    'draw_curve',
    'forward_curve',
    'parse_response',
]
