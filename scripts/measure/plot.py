"""Line charts drawn with OpenCV, for training curves without a plotting library.

matplotlib is not among the project's requirements (nor BasicSR's), so charts are drawn on a numpy canvas: axes with
1-2-5 ticks (decades on a log axis), a grid, one anti-aliased polyline per series with dots at its points, dashed
horizontal reference lines and a legend. Images are RGB uint8.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

__all__ = ['Series', 'grid', 'line_chart', 'nice_ticks']

# Colour-blind-safe palette (Okabe and Ito), RGB.
PALETTE = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0))
FONT = cv2.FONT_HERSHEY_SIMPLEX
MARGIN = {'left': 64, 'right': 16, 'top': 30, 'bottom': 40}


class Series(NamedTuple):
    """One curve: a legend ``label`` and its points ``xs``, ``ys`` (non-finite points are skipped)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]


def nice_ticks(low: float, high: float, count: int = 5) -> list:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        raise ValueError(f'nice_ticks needs a finite range; got [{low}, {high}].')
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step - 1e-9)) + 1)]


def _label(value: float) -> str:
    if value == 0:
        return '0'
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f'{value:.0e}'
    return f'{value:,.6g}' if abs(value) >= 1 else f'{value:.3g}'


def _finite(series: Sequence[Series], log_y: bool) -> list:
    cleaned = []
    for item in series:
        points = [
            (float(x), float(y))
            for x, y in zip(item.xs, item.ys)
            if math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)
        ]
        cleaned.append(points)
    return cleaned


def _dashed(canvas: np.ndarray, y: int, x0: int, x1: int, color: tuple) -> None:
    for start in range(x0, x1, 10):
        cv2.line(canvas, (start, y), (min(start + 5, x1), y), color, 1, cv2.LINE_AA)


def line_chart(
    series: Sequence[Series],
    title: str = '',
    xlabel: str = '',
    log_y: bool = False,
    hlines: Sequence[tuple] = (),
    size: tuple = (360, 560),
) -> np.ndarray:
    """Draw curves on one pair of axes.

    Args:
        series (sequence of Series): The curves; colours follow the order.
        title (str): Above the axes (say what y is and its unit here).
        xlabel (str): Below the x axis.
        log_y (bool): Logarithmic y axis (non-positive values are skipped). Default: False.
        hlines (sequence of (str, float)): Labelled dashed horizontal lines (e.g. a baseline).
        size (tuple[int, int]): (height, width) of the image. Default: (360, 560).

    Returns:
        np.ndarray: uint8 RGB (height, width, 3).

    Raises:
        ValueError: A size too small for the margins.
    """
    height, width = size
    left, right, top, bottom = MARGIN['left'], width - MARGIN['right'], MARGIN['top'], height - MARGIN['bottom']
    if right - left < 50 or bottom - top < 50:
        raise ValueError(f'line_chart: size {size} leaves no room for the axes; expected at least (150, 150).')
    canvas = np.full((height, width, 3), 255, np.uint8)
    points = _finite(series, log_y)
    xs = [x for curve in points for x, _ in curve]
    ys = [y for curve in points for _, y in curve] + [y for _, y in hlines if math.isfinite(y) and (y > 0 or not log_y)]
    cv2.putText(canvas, title, (left, 20), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, xlabel, ((left + right) // 2 - 4 * len(xlabel), height - 8), FONT, 0.45, (0, 0, 0), 1)
    if not xs or not ys:
        cv2.putText(canvas, 'no data', (left + 10, (top + bottom) // 2), FONT, 0.6, (128, 128, 128), 1, cv2.LINE_AA)
        cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)
        return canvas
    transform = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    x_ticks = nice_ticks(min(xs), max(xs))
    if log_y:
        low, high = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        y_ticks = [float(10**e) for e in range(low, max(high, low + 1) + 1)]
    else:
        y_ticks = nice_ticks(min(ys), max(ys))
    x0, x1 = x_ticks[0], x_ticks[-1]
    y0, y1 = transform(y_ticks[0]), transform(y_ticks[-1])

    def to_pixel(x: float, y: float) -> tuple:
        px = left + (x - x0) / ((x1 - x0) or 1) * (right - left)
        py = bottom - (transform(y) - y0) / ((y1 - y0) or 1) * (bottom - top)
        return int(round(px)), int(round(py))

    _draw_grid(canvas, x_ticks, y_ticks, to_pixel, (left, right, top, bottom))
    legend = []
    for index, curve in enumerate(points):
        color = PALETTE[index % len(PALETTE)]
        pixels = np.array([to_pixel(x, y) for x, y in curve], np.int32)
        if len(pixels) > 1:
            cv2.polylines(canvas, [pixels.reshape(-1, 1, 2)], False, color, 2, cv2.LINE_AA)
        if 0 < len(pixels) <= 60:
            for px, py in pixels:
                cv2.circle(canvas, (int(px), int(py)), 3, color, -1, cv2.LINE_AA)
        legend.append((series[index].label, color, False))
    for index, (label, value) in enumerate(hlines):
        if not math.isfinite(value) or (log_y and value <= 0):
            continue
        color = (120, 120, 120) if index == 0 else PALETTE[(len(points) + index) % len(PALETTE)]
        _dashed(canvas, to_pixel(x0, value)[1], left, right, color)
        legend.append((label, color, True))
    _draw_legend(canvas, legend, right, top)
    return canvas


def _draw_grid(canvas: np.ndarray, x_ticks: list, y_ticks: list, to_pixel, box: tuple) -> None:
    """Grid lines and tick labels at ``x_ticks`` and ``y_ticks``, and the frame of the axes ``box``."""
    left, right, top, bottom = box
    for x in x_ticks:
        px = to_pixel(x, y_ticks[0])[0]
        cv2.line(canvas, (px, top), (px, bottom), (225, 225, 225), 1)
        text = _label(x)
        cv2.putText(canvas, text, (px - 3 * len(text), bottom + 15), FONT, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    for y in y_ticks:
        py = to_pixel(x_ticks[0], y)[1]
        cv2.line(canvas, (left, py), (right, py), (225, 225, 225), 1)
        text = _label(y)
        cv2.putText(canvas, text, (max(2, left - 7 * len(text) - 4), py + 4), FONT, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)


def _draw_legend(canvas: np.ndarray, legend: list, right: int, top: int) -> None:
    """One row per (label, colour, dashed) entry in the axes' top right corner."""
    for row, (label, color, dashed) in enumerate(legend):
        y = top + 14 + 16 * row
        if dashed:
            _dashed(canvas, y - 4, right - 150, right - 128, color)
        else:
            cv2.line(canvas, (right - 150, y - 4), (right - 128, y - 4), color, 2, cv2.LINE_AA)
        cv2.putText(canvas, label[:22], (right - 124, y), FONT, 0.38, (0, 0, 0), 1, cv2.LINE_AA)


def grid(charts: Sequence[np.ndarray], columns: int = 2) -> np.ndarray:
    """Arrange charts of one size in rows of ``columns`` (the last row padded with white)."""
    if not charts:
        raise ValueError('grid needs at least one chart.')
    shapes = {chart.shape for chart in charts}
    if len(shapes) != 1:
        raise ValueError(f'grid expects charts of one size; got {sorted(shapes)}.')
    blank = np.full_like(charts[0], 255)
    cells = list(charts) + [blank] * (-len(charts) % columns)
    rows = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    return np.concatenate(rows, axis=0)
