"""The LMDB schema of multi-exposure scenes (docs/design.md §8 and ``datasets/README.md``): keys, codecs, meta info.

Frame ``i`` of a sample is stored under ``<sample>/ldr_<i>`` (``i`` from 0) as PNG bytes of its original integers
(16-bit for 16-bit sources, 8-bit for 8-bit ones, so decoding gives bit-identical floats), the GT under
``<sample>/gt`` as float32 ``.npy`` bytes, and ``meta_info.txt`` holds one line ``<sample> (<h>,<w>,3)
<EV_1>,<EV_2>,...`` per sample. Arrays are RGB (H, W, 3); BGR exists only at the cv2 encode boundary.
"""

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from lffnet_arch.fileio.image import decode_ldr_raw, ldr_to_float

__all__ = [
    'META_INFO',
    'decode_gt',
    'decode_ldr',
    'encode_gt',
    'encode_ldr',
    'format_meta_line',
    'gt_key',
    'ldr_key',
    'parse_meta_info',
]

PathLike = Union[str, Path]
META_INFO = 'meta_info.txt'


def ldr_key(sample: str, index: int) -> str:
    """LMDB key of frame ``index`` (from 0) of ``sample``."""
    return f'{sample}/ldr_{index}'


def gt_key(sample: str) -> str:
    """LMDB key of the GT of ``sample``."""
    return f'{sample}/gt'


def encode_ldr(raw: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a frame's original integers, uint8/uint16 RGB (H, W, 3) (16-bit stays 16-bit): lossless."""
    bgr = np.ascontiguousarray(raw[..., ::-1])
    ok, buf = cv2.imencode('.png', bgr, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise ValueError(f'OpenCV cannot encode a {raw.dtype} frame of shape {raw.shape} as PNG.')
    return buf.tobytes()


def decode_ldr(buf: bytes, source: str = '<bytes>') -> np.ndarray:
    """PNG bytes from :func:`encode_ldr` -> float32 RGB (H, W, 3) in [0, 1], as
    :func:`lffnet_arch.fileio.image.read_ldr` reads files."""
    return ldr_to_float(decode_ldr_raw(buf, source), source)


def encode_gt(gt: np.ndarray) -> bytes:
    """``.npy`` bytes of a float32 GT (lossless, unlike RGBE)."""
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(gt, dtype=np.float32), allow_pickle=False)
    return out.getvalue()


def decode_gt(buf: bytes, source: str = '<bytes>') -> np.ndarray:
    """``.npy`` bytes from :func:`encode_gt` -> float32 RGB (H, W, 3)."""
    try:
        gt = np.load(io.BytesIO(buf), allow_pickle=False)
    except ValueError as err:
        raise ValueError(f'Cannot decode ground truth {source}: not a .npy array ({err}).') from err
    if gt.dtype != np.float32 or gt.ndim != 3 or gt.shape[2] != 3:
        raise ValueError(f'Ground truth {source} is {gt.dtype} {gt.shape}; expected float32 (H, W, 3).')
    return gt


def format_meta_line(sample: str, height: int, width: int, evs: Sequence[float]) -> str:
    """One ``meta_info.txt`` line; ``repr`` keeps every EV value exact."""
    return f'{sample} ({height},{width},3) {",".join(repr(float(ev)) for ev in evs)}'


_META_LINE = re.compile(r'^(?P<name>[A-Za-z0-9_-]+) \((?P<h>\d+),(?P<w>\d+),3\) (?P<evs>\S+)$')


def parse_meta_info(
    path: PathLike, num_exposure: Optional[int] = None
) -> list[tuple[str, tuple[int, int], np.ndarray]]:
    """Samples listed in an LMDB's ``meta_info.txt``.

    Returns:
        list[tuple]: (sample, (h, w), evs float64 (T,)) per line, in file order.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A line does not follow ``<sample> (<h>,<w>,3) <EV_1>,<EV_2>,...``, has the wrong number of EV
            values, non-increasing EVs, or repeats a sample.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f'LMDB meta info not found: {path}; create the LMDB with scripts/data_preparation/create_lmdb_hdr.py.'
        )
    samples, seen = [], set()
    for lineno, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        if not line.strip():
            continue
        match = _META_LINE.match(line.strip())
        evs = _parse_evs(match.group('evs')) if match else None
        if evs is None:
            raise ValueError(
                f'{path}, line {lineno}: expected "<sample> (<h>,<w>,3) <EV_1>,<EV_2>,..." with '
                f'finite, strictly increasing EVs; found {line!r}.'
            )
        if num_exposure is not None and len(evs) != num_exposure:
            raise ValueError(f'{path}, line {lineno}: {len(evs)} EV values; expected {num_exposure}.')
        name = match.group('name')
        if name in seen:
            raise ValueError(f'{path}, line {lineno}: sample {name!r} is listed twice.')
        seen.add(name)
        samples.append((name, (int(match.group('h')), int(match.group('w'))), evs))
    if not samples:
        raise ValueError(f'LMDB meta info {path} lists no sample.')
    return samples


def _parse_evs(text: str) -> Optional[np.ndarray]:
    try:
        evs = np.asarray([float(v) for v in text.split(',')], dtype=np.float64)
    except ValueError:
        return None
    if not np.isfinite(evs).all() or np.any(np.diff(evs) <= 0):
        return None
    return evs
