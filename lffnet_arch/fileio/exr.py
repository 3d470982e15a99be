"""OpenEXR reading and writing through the OpenEXR project's own Python bindings (the ``OpenEXR`` PyPI package).

OpenCV's EXR codec is absent from the opencv-python 5.0 wheel and optional in 4.x builds, so EXR files go through
this module on every platform. :func:`read_exr` returns linear Rec.709 RGB whatever the file stores:

- **RGB(A)**: the R, G, B channels (alpha dropped).
- **Luminance/chroma** (Y, RY, BY; chroma usually subsampled 2 x 2): chroma is upsampled bilinearly to the
  luminance grid and converted with the file's luminance weights, R = (RY + 1) Y, B = (BY + 1) Y,
  G = (Y - w_R R - w_B B) / w_G, as OpenEXR's RGBA interface does.
- **Luminance only** (Y): gray, R = G = B = Y.
- **Multi-view** files: the default view, i.e. the channels without a view prefix (``left.R`` belongs to another
  view).
- **Chromaticities** other than Rec.709 (ACES AP0, a camera's primaries): converted through CIE XYZ to Rec.709
  with a Bradford adaptation from the file's white point to D65. Colours outside the Rec.709 gamut come out with
  negative components; they are clipped to zero (the returned ``ExrInfo.negative_fraction`` says how many values).
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Optional, Union

import cv2
import numpy as np

from lffnet_arch.fileio.limits import check_pixels

__all__ = ['REC709_CHROMATICITIES', 'ExrInfo', 'read_exr', 'read_exr_info', 'rgb_to_rgb_matrix', 'write_exr']

PathLike = Union[str, os.PathLike]

# (red x, y, green x, y, blue x, y, white x, y) of ITU-R BT.709 primaries with a D65 white: OpenEXR's default.
REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
_BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]],
    dtype=np.float64,
)


class ExrInfo(NamedTuple):
    """What :func:`read_exr` found in a file.

    Attributes:
        layout: 'rgb', 'luminance_chroma' or 'luminance'.
        chromaticities: The file's 8 chromaticity coordinates (Rec.709 when the header has none).
        negative_fraction: Share of output values that were negative (out of the Rec.709 gamut, or negative in the
            file) and were clipped to zero.
    """

    layout: str
    chromaticities: tuple
    negative_fraction: float


def _xy_to_xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1.0 - x - y) / y], dtype=np.float64)


def _rgb_to_xyz(chromaticities: tuple) -> np.ndarray:
    """3 x 3 matrix from linear RGB with these primaries and white (white at Y = 1) to CIE XYZ."""
    primaries = np.stack([_xy_to_xyz(*chromaticities[i : i + 2]) for i in (0, 2, 4)], axis=1)
    scale = np.linalg.solve(primaries, _xy_to_xyz(*chromaticities[6:8]))
    return primaries * scale


def rgb_to_rgb_matrix(source: tuple, target: tuple = REC709_CHROMATICITIES) -> np.ndarray:
    """Matrix M with rgb_target = M @ rgb_source, through XYZ with a Bradford white-point adaptation.

    Args:
        source: 8 chromaticity coordinates (rx, ry, gx, gy, bx, by, wx, wy) of the source RGB space.
        target: The same for the target space. Default: Rec.709 / D65.
    """
    white_src = _BRADFORD @ _xy_to_xyz(*source[6:8])
    white_dst = _BRADFORD @ _xy_to_xyz(*target[6:8])
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(white_dst / white_src) @ _BRADFORD
    return np.linalg.inv(_rgb_to_xyz(target)) @ adapt @ _rgb_to_xyz(source)


def _open(path: Path, header_only: bool = False):
    import OpenEXR  # imported here: only EXR users pay for it

    if not path.is_file():
        raise FileNotFoundError(f'EXR file not found: {path}')
    try:
        return OpenEXR.File(str(path), separate_channels=True, header_only=header_only)
    except Exception as err:  # the bindings raise RuntimeError with the library's message
        raise ValueError(f'Cannot read EXR file {path}: {err}') from err


def _chromaticities(header: dict) -> tuple:
    value = header.get('chromaticities')
    return REC709_CHROMATICITIES if value is None else tuple(float(v) for v in value)


def _luminance_weights(chromaticities: tuple) -> np.ndarray:
    """w_R, w_G, w_B: the Y row of the RGB -> XYZ matrix."""
    return _rgb_to_xyz(chromaticities)[1]


def _full_resolution(channel, shape: tuple) -> np.ndarray:
    pixels = np.asarray(channel.pixels, dtype=np.float32)
    if pixels.shape != shape:
        pixels = cv2.resize(pixels, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return pixels


def read_exr_info(path: PathLike) -> tuple:
    """(height, width) and channel names of an EXR file's default view, from its header alone."""
    path = Path(path)
    with _named_errors(path), _open(path, header_only=True) as exr:
        header = exr.header()
        (x0, y0), (x1, y1) = header['dataWindow']
        return (int(y1 - y0 + 1), int(x1 - x0 + 1)), sorted(c for c in exr.channels() if '.' not in c)


@contextlib.contextmanager
def _named_errors(path: Path) -> Iterator[None]:
    """Let the bindings' and NumPy's errors about a damaged file (a truncated or corrupt chunk, a deep image) name
    the file; errors that already do pass unchanged."""
    try:
        yield
    except FileNotFoundError:
        raise
    except Exception as err:  # RuntimeError from the bindings, ValueError / TypeError from NumPy on deep data
        if isinstance(err, ValueError) and str(path) in str(err):
            raise
        raise ValueError(f'Cannot read EXR file {path}: {err}') from err


def _check_chromaticities(chroma: tuple, path: Path) -> None:
    """Refuse chromaticities that define no RGB space (a zero y, coincident primaries), naming the file."""
    # Primaries may lie outside the spectral locus (ACES AP0's blue has y < 0), but no y may be 0 nor the white's < 0.
    ok = len(chroma) == 8 and all(np.isfinite(chroma)) and all(chroma[i] != 0 for i in (1, 3, 5)) and chroma[7] > 0
    if ok:
        try:
            ok = np.isfinite(rgb_to_rgb_matrix(chroma)).all()
        except np.linalg.LinAlgError:
            ok = False
    if not ok:
        shown = tuple(round(c, 4) for c in chroma)
        raise ValueError(f'EXR file {path}: its chromaticities {shown} define no RGB colour space.')


def _read_rgb(path: Path) -> tuple:
    """(RGB in the file's primaries, layout, chromaticities) of the default view."""
    with _open(path) as exr:
        header = exr.header()
        channels = {name: ch for name, ch in exr.channels().items() if '.' not in name}
        chroma = _chromaticities(header)
        _check_chromaticities(chroma, path)
        if {'R', 'G', 'B'} <= channels.keys():
            shape = channels['G'].pixels.shape
            rgb = np.stack([_full_resolution(channels[c], shape) for c in 'RGB'], axis=2)
            layout = 'rgb'
        elif 'Y' in channels:
            y = np.asarray(channels['Y'].pixels, dtype=np.float32)
            if {'RY', 'BY'} <= channels.keys():
                w_r, w_g, w_b = _luminance_weights(chroma)
                red = (_full_resolution(channels['RY'], y.shape) + 1.0) * y
                blue = (_full_resolution(channels['BY'], y.shape) + 1.0) * y
                green = (y - w_r * red - w_b * blue) / w_g
                rgb, layout = np.stack([red, green, blue], axis=2), 'luminance_chroma'
            else:
                rgb, layout = np.repeat(y[..., None], 3, axis=2), 'luminance'
        else:
            raise ValueError(
                f'EXR file {path} has no R, G, B or Y channels in its default view (found {sorted(channels)}).'
            )
    return rgb, layout, chroma


def read_exr(path: PathLike, return_info: bool = False) -> Union[np.ndarray, tuple]:
    """Read an OpenEXR image as linear Rec.709 float32 RGB (H, W, 3), as the module docstring describes.

    Args:
        path: The ``.exr`` file.
        return_info: Also return an :class:`ExrInfo`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not a readable EXR file, or its default view has neither R, G, B nor Y channels; or it holds
            non-finite values. The message names ``path``.
    """
    path = Path(path)
    (height, width), _ = read_exr_info(path)
    check_pixels(height, width, f'EXR file {path}')  # from the header, before any pixel is read
    with _named_errors(path):
        rgb, layout, chroma = _read_rgb(path)
    rgb = rgb.astype(np.float32)
    # Files store chromaticities as float32, so Rec.709 declared explicitly reads back only nearly equal.
    if not np.allclose(chroma, REC709_CHROMATICITIES, atol=1e-5) and layout != 'luminance':
        rgb = rgb @ rgb_to_rgb_matrix(chroma).T.astype(np.float32)
    if not np.isfinite(rgb).all():
        raise ValueError(f'EXR file {path} holds {int((~np.isfinite(rgb)).sum())} non-finite values (NaN or Inf).')
    negative = rgb < 0
    negative_fraction = float(negative.mean())
    rgb = np.ascontiguousarray(np.maximum(rgb, 0.0))
    if return_info:
        return rgb, ExrInfo(layout, chroma, negative_fraction)
    return rgb


def write_exr(path: PathLike, rgb: np.ndarray, half: bool = False, target: Optional[PathLike] = None) -> None:
    """Write linear RGB (H, W, 3) as an OpenEXR file with ZIP compression (float32, or float16 with ``half``).

    The caller decides about atomicity (see ``lffnet_arch.fileio.atomic.atomic_path``); this writes ``path``, and
    names ``target`` (the final file, default ``path``) in its errors.

    Raises:
        ValueError: Not (H, W, 3), or values the file would store as Inf or NaN (non-finite, or beyond float32's
            or, with ``half``, float16's largest value 65504).
    """
    import OpenEXR

    target = path if target is None else target
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'EXR output {target}: expected an RGB image (H, W, 3), got shape {rgb.shape}.')
    dtype = np.float16 if half else np.float32
    largest = float(np.finfo(dtype).max)
    rows = max(1, (1 << 20) // max(1, rgb.shape[1]))  # checked a strip of rows at a time: no full-size masks
    bad = 0
    for top in range(0, rgb.shape[0], rows):
        strip = rgb[top : top + rows]
        bad += int((~np.isfinite(strip) | (np.abs(strip) > largest)).sum())
    if bad:
        raise ValueError(
            f'Refusing to write {target}: {bad} values are non-finite or beyond the largest '
            f'{np.dtype(dtype).name} value {largest:g}, which the file would store as Inf.'
        )
    pixels = np.ascontiguousarray(rgb, dtype=dtype)  # the image itself when it is float32 and contiguous
    header = {'compression': OpenEXR.ZIP_COMPRESSION, 'type': OpenEXR.scanlineimage}
    with OpenEXR.File(header, {'RGB': pixels}) as exr:
        exr.write(str(path))
