"""Image files: LDR frames (8- or 16-bit TIFF, PNG, JPEG), linear HDR images (Radiance ``.hdr``, OpenEXR) and 8-bit
previews (PNG or JPEG with an ICC profile); :func:`read_frame` also reads HEIC/HEIF (:mod:`.heic`) and camera RAW
(:mod:`.raw`) frames.

BasicSR's image helpers are written for 8-bit data (``imfrombytes(float32=True)`` divides by 255, ``tensor2img``
rounds to 8 bit), which is wrong for 16-bit LDR frames and float HDR images; these are the HDR-correct
counterparts. Arrays are RGB (H, W, 3); BGR exists only at the cv2 read/write boundary. Every reader refuses empty,
truncated and corrupt files naming the file; every writer is atomic (:mod:`lffnet_arch.fileio.atomic`).
"""

import contextlib
import io
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from lffnet_arch.fileio.atomic import atomic_path
from lffnet_arch.fileio.exr import read_exr, write_exr
from lffnet_arch.fileio.heic import is_heic, read_heic, register_heic
from lffnet_arch.fileio.limits import check_pixels
from lffnet_arch.fileio.raw import is_raw, read_raw

__all__ = [
    'LDR_DECODE_FLAGS',
    'check_ldr_dtype',
    'decode_ldr_raw',
    'imwrite_atomic',
    'ldr_to_float',
    'read_frame',
    'read_hdr',
    'read_ldr',
    'read_icc_profile',
    'read_ldr_raw',
    'write_hdr',
    'write_preview',
]

# How every LDR frame is decoded. IMREAD_COLOR applies a JPEG's EXIF Orientation (IMREAD_UNCHANGED ignores it, so a
# portrait phone photo would come out sideways), gives 3 channels for gray images and drops alpha; IMREAD_ANYDEPTH
# keeps 16-bit data 16-bit.
LDR_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
PathLike = Union[str, os.PathLike]
# Preview formats by suffix (:func:`write_preview`), as Pillow names them.
_PREVIEW_FORMATS = {'.png': 'PNG', '.jpg': 'JPEG', '.jpeg': 'JPEG'}


def _read_bytes(path: PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Image file not found: {path}')
    # np.fromfile + imdecode also handles non-ASCII paths, which cv2.imread does not on every platform.
    return np.fromfile(str(path), dtype=np.uint8)


# libjpeg reports damaged data as warnings on stderr and still returns an image (with garbage where the data was
# damaged); these messages (libjpeg's JWRN_EXTRANEOUS_DATA, JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE, JWRN_JPEG_EOF,
# JWRN_NOT_SEQUENTIAL, JWRN_BOGUS_PROGRESSION) make it an error.
_DECODER_CORRUPTION = (
    'Corrupt JPEG data',
    'Premature end of JPEG file',
    'Invalid SOS parameters',
    'Inconsistent progression sequence',
)
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _decoder_messages() -> Iterator[list]:
    """Collect what native decoders write to file descriptor 2 while the block runs.

    libjpeg (inside OpenCV) prints its corruption warnings with ``fprintf(stderr)``, out of Python's reach, so the
    descriptor itself is pointed at a temporary file. Yields a list that holds the captured lines afterwards. A lock
    serialises the redirection between threads; another thread's output in that window is captured too, so callers
    write back what they do not use.
    """
    messages = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode('utf-8', errors='replace')
            messages.extend(line for line in text.splitlines() if line.strip())


def _decode(buf: Union[bytes, np.ndarray], flags: int, source: str) -> np.ndarray:
    """cv2.imdecode that raises ValueError naming ``source`` for empty, undecodable, oversized or corrupt data."""
    data = np.frombuffer(buf, dtype=np.uint8)
    if data.size == 0:
        raise ValueError(f'Cannot decode {source}: the file is empty (0 bytes).')
    size = header_size(data)
    if size is not None:
        check_pixels(size[0], size[1], f'Cannot decode {source}')
    with _decoder_messages() as messages:
        try:
            img = cv2.imdecode(data, flags)
        except cv2.error as error:  # e.g. a header claiming more pixels than OpenCV accepts (CV_IO_MAX_IMAGE_PIXELS)
            reason = str(error).strip().splitlines()[-1]
            raise ValueError(f'Cannot decode {source}: OpenCV refused it ({reason}).') from error
    corruption = [line for line in messages if line.startswith(_DECODER_CORRUPTION)]
    if corruption:
        raise ValueError(f'Cannot decode {source}: the image data is corrupt ({"; ".join(corruption[:3])}).')
    if img is None:
        detail = f' ({"; ".join(messages[:2])})' if messages else ''
        raise ValueError(f'Cannot decode {source}: not an image format OpenCV can read, or truncated/corrupt{detail}.')
    if messages:  # nothing wrong with the image: pass the decoder's (or another thread's) output on
        os.write(2, ('\n'.join(messages) + '\n').encode('utf-8'))
    return img


def _to_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        img = img[..., :3]
    return img[..., ::-1]


_PIL_LOCK = threading.Lock()
# The frame formats (.png, .jpg, .tif); asking Pillow only for these keeps the check at a third of its cost.
_HEADER_FORMATS = ('PNG', 'JPEG', 'TIFF')
_RADIANCE_SIZE = re.compile(rb'\n[-+]Y (\d+) [-+]X (\d+)\n')


def header_size(data: np.ndarray) -> Optional[tuple]:
    """(height, width) that an encoded image's header states, read without decoding (PNG, JPEG, TIFF and Radiance
    .hdr); None when the header is not recognised (the decoder then decides)."""
    head = data[:4096].tobytes()
    if head.startswith(b'#?'):  # Radiance: the resolution line follows the header's blank line
        match = _RADIANCE_SIZE.search(head)
        return (int(match.group(1)), int(match.group(2))) if match else None
    from PIL import Image, UnidentifiedImageError

    with _PIL_LOCK:  # Pillow's own bomb limit is lifted for the header read: the budget here is the project's
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(io.BytesIO(data.tobytes()), formats=_HEADER_FORMATS) as image:  # the header only
                width, height = image.size
        except (UnidentifiedImageError, OSError, ValueError):
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    return height, width


def decode_ldr_raw(buf: Union[bytes, np.ndarray], source: str = '<bytes>') -> np.ndarray:
    """Decode an encoded LDR image (TIFF, PNG or JPEG bytes) to its integers as RGB, with :data:`LDR_DECODE_FLAGS`.

    Args:
        buf (bytes | np.ndarray): The encoded file contents.
        source (str): Name used in error messages (the file, or an LMDB key). Default: '<bytes>'.

    Returns:
        np.ndarray: uint8 or uint16 RGB (H, W, 3), EXIF orientation applied, gray expanded to 3 channels, alpha
        dropped.

    Raises:
        ValueError: Not decodable, or not 8- or 16-bit unsigned integers (e.g. a float TIFF).
    """
    img = _decode(buf, LDR_DECODE_FLAGS, f'LDR frame {source}')
    check_ldr_dtype(img.dtype, source)
    return np.ascontiguousarray(img[..., ::-1])


def read_ldr_raw(path: PathLike) -> np.ndarray:
    """Read an LDR frame's integers (see :func:`decode_ldr_raw`): uint8 or uint16 RGB (H, W, 3).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not decodable, or not 8- or 16-bit unsigned integers; the message names ``path``.
    """
    return decode_ldr_raw(_read_bytes(path), str(path))


def check_ldr_dtype(dtype: np.dtype, source: str) -> None:
    """Raise ValueError naming ``source`` unless ``dtype`` is uint8 or uint16 (the LDR frames' integers)."""
    if dtype not in (np.uint8, np.uint16):
        raise ValueError(f'LDR frame {source} has pixel type {dtype}; expected 8- or 16-bit unsigned integers.')


def ldr_to_float(raw: np.ndarray, source: str = 'array') -> np.ndarray:
    """LDR integers -> float32 in [0, 1]: 16-bit data divided by 65535, 8-bit data by 255; the shape is kept.

    The one integer-to-float conversion of LDR frames (files, LMDB samples and arrays given to inference), so every
    path gives bit-identical floats.

    Args:
        raw (np.ndarray): uint8 or uint16 array, e.g. RGB (H, W, 3) from :func:`read_ldr_raw`.
        source (str): Name used in error messages. Default: 'array'.

    Raises:
        ValueError: ``raw`` is not uint8 or uint16; the message names ``source``.
    """
    check_ldr_dtype(raw.dtype, source)
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(raw, dtype=np.float32) / scale


def read_ldr(path: PathLike) -> np.ndarray:
    """Read an 8- or 16-bit LDR frame (TIFF, PNG, JPEG) as float32 RGB (H, W, 3) in [0, 1].

    ``ldr_to_float(read_ldr_raw(path))``: EXIF orientation applied; 16-bit data is divided by 65535 and 8-bit data
    by 255, whatever the file format.
    """
    return ldr_to_float(read_ldr_raw(path), str(path))


def read_frame(path: PathLike, as_float: bool = True) -> np.ndarray:
    """Read a bracket frame as float32 RGB (H, W, 3) in [0, 1], upright, by its extension: camera RAW through
    :func:`~lffnet_arch.fileio.raw.read_raw` (linear sRGB), HEIC/HEIF through
    :func:`~lffnet_arch.fileio.heic.read_heic`, anything else through :func:`read_ldr` (TIFF, PNG, JPEG).

    With ``as_float=False`` TIFF, PNG and JPEG frames keep their integers (uint8 / uint16, :func:`read_ldr_raw`:
    a quarter or half of the float32 frame's memory; :func:`ldr_to_float` gives the same floats); RAW and HEIC
    frames are float32 either way.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Not decodable (named), or a RAW/HEIC file whose optional package is not installed
            (:class:`~lffnet_arch.fileio.extras.MissingExtraError`, naming the extra to install).
    """
    if is_raw(path):
        return read_raw(path)
    if is_heic(path):
        return read_heic(path)
    return read_ldr(path) if as_float else read_ldr_raw(path)


def read_hdr(path: PathLike) -> np.ndarray:
    """Read a linear HDR image as float32 RGB (H, W, 3): Radiance ``.hdr`` through OpenCV, ``.exr`` through
    :func:`lffnet_arch.fileio.exr.read_exr` (luminance/chroma, luminance-only, multi-view and non-Rec.709 files
    converted to linear Rec.709 RGB)."""
    path = Path(path)
    if path.suffix.lower() == '.exr':
        return read_exr(path)
    img = _decode(_read_bytes(path), cv2.IMREAD_UNCHANGED, f'HDR image {path}')
    if img.dtype != np.float32:
        raise ValueError(f'HDR image {path} decoded as {img.dtype}; expected floating-point data (.hdr or .exr).')
    return np.ascontiguousarray(_to_rgb(img))


def imwrite_atomic(path: PathLike, img: np.ndarray, params: tuple = (), overwrite: bool = True) -> None:
    """Write an image through cv2 to a temporary file and rename it, so no partial file is left behind.

    Args:
        path (str | PathLike): The file; its suffix picks the format.
        img (np.ndarray): BGR image as ``cv2.imencode`` takes it.
        params (tuple): ``cv2.imencode`` parameters.
        overwrite (bool): Replace an existing file; False fails with FileExistsError if ``path`` exists when the
            write finishes (see :func:`~lffnet_arch.fileio.atomic.atomic_path`). Default: True.
    """
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix, img, list(params))
    if not ok:
        raise ValueError(f'OpenCV cannot encode {path.suffix} images (writing {path}).')
    with atomic_path(path, overwrite=overwrite) as tmp:
        buf.tofile(str(tmp))


STRIP_PIXELS = 1 << 20  # pixels of the strips of rows that the HDR writers check and encode at a time


def _row_strips(height: int, width: int) -> list:
    rows = max(1, STRIP_PIXELS // max(1, width))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def count_nonfinite(image: np.ndarray) -> int:
    """NaN and Inf values of an image, counted a strip of rows at a time (no full-size mask)."""
    return sum(int((~np.isfinite(image[a:b])).sum()) for a, b in _row_strips(*image.shape[:2]))


def _write_radiance(path: Path, hdr: np.ndarray) -> None:
    """Write RGBE (OpenCV's run-length encoded scanlines) a strip of rows at a time: each strip is encoded by
    ``cv2.imencode`` and its scanlines follow one header for the whole image, the bytes ``cv2.imencode`` writes for
    the whole image at once (scanlines are encoded one by one), with a BGR float32 copy of one strip at a time."""
    height, width = hdr.shape[:2]
    with open(path, 'wb') as file:
        for index, (top, bottom) in enumerate(_row_strips(height, width)):
            ok, buf = cv2.imencode('.hdr', np.ascontiguousarray(hdr[top:bottom, :, ::-1], dtype=np.float32))
            if not ok:
                raise ValueError(f'OpenCV cannot encode .hdr images (writing {path}).')
            data = buf.tobytes()
            size_line = data.index(b'\n-Y ') + 1
            body = data.index(b'\n', size_line) + 1
            if index == 0:
                file.write(data[:size_line] + f'-Y {height} +X {width}\n'.encode('ascii'))
            file.write(data[body:])


def write_hdr(path: PathLike, hdr: np.ndarray, overwrite: bool = True) -> None:
    """Write a linear float RGB image (H, W, 3) as ``.hdr`` (RGBE, about 1% precision) or ``.exr`` (float32,
    lossless), atomically, reading the image a strip of rows at a time (no full-size copy of it).

    Raises:
        ValueError: Another suffix, or non-finite values (RGBE would store them as garbage).
        FileExistsError: ``overwrite`` is False and ``path`` exists.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ('.hdr', '.exr'):
        raise ValueError(f'HDR output must end in .hdr or .exr, got {path}.')
    hdr = np.asarray(hdr)
    bad = count_nonfinite(hdr)
    if bad:
        raise ValueError(f'Refusing to write {path}: the image has {bad} NaN/Inf values.')
    with atomic_path(path, overwrite=overwrite) as tmp:
        if suffix == '.exr':
            write_exr(tmp, hdr, target=path)
        else:
            _write_radiance(Path(tmp), hdr)


def read_icc_profile(path: PathLike) -> Optional[bytes]:
    """The ICC colour profile embedded in an image file (JPEG, PNG, TIFF, and HEIC/HEIF through pillow-heif), read
    from its header with Pillow; None when it has none, is a camera RAW file (LibRaw renders those in sRGB), or
    Pillow cannot read it."""
    if is_raw(path):
        return None
    from PIL import Image, UnidentifiedImageError

    if is_heic(path):
        register_heic(path)
    with _PIL_LOCK:  # the frame was read within the project's pixel budget: Pillow's bomb limit is lifted
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as image:
                profile = image.info.get('icc_profile')
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    return bytes(profile) if profile else None


def write_preview(
    path: PathLike,
    rgb: np.ndarray,
    icc_profile: Optional[bytes] = None,
    quality: int = 95,
    overwrite: bool = True,
) -> None:
    """Write an 8-bit RGB picture through Pillow, atomically: PNG or JPEG by the suffix (``.png``, ``.jpg``,
    ``.jpeg``). No EXIF is written, so viewers show it as stored (orientation 1).

    Args:
        path (str | PathLike): The file.
        rgb (np.ndarray): uint8 RGB (H, W, 3).
        icc_profile (bytes, optional): An ICC profile to embed. Default: None.
        quality (int): JPEG quality, 1 to 100 (ignored for PNG, which is lossless). Default: 95.
        overwrite (bool): Replace an existing file; False fails with FileExistsError. Default: True.

    Raises:
        ValueError: Another suffix, ``rgb`` not uint8 (H, W, 3), or ``quality`` outside 1-100.
    """
    path = Path(path)
    fmt = _PREVIEW_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f'Preview {path}: expected a file name ending in .png, .jpg or .jpeg.')
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'Preview {path}: expected uint8 RGB of shape (H, W, 3), got {rgb.dtype} {rgb.shape}.')
    if not 1 <= int(quality) <= 100:
        raise ValueError(f'Preview {path}: the JPEG quality must be from 1 to 100, got {quality}.')
    from PIL import Image

    params = {'icc_profile': bytes(icc_profile)} if icc_profile else {}
    if fmt == 'JPEG':
        params['quality'] = int(quality)
    else:  # fast deflate: 5 times faster than Pillow's default level at 12 MP, the file about 10% larger
        params['compress_level'] = 1
    image = Image.fromarray(np.ascontiguousarray(rgb))
    with atomic_path(path, overwrite=overwrite) as tmp:
        image.save(tmp, format=fmt, **params)
