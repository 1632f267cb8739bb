"""Model input tensors: uint8 RGB faces to the standardised float32 NCHW batches the nets expect."""

from __future__ import annotations

import cv2
import numpy as np

from ..cache import atomic_path
from .input_norm import InputNorm  # noqa: F401 - re-exported beside the functions that take it


def resize_face(face: np.ndarray, size: int) -> np.ndarray:
    """Square ``size`` x ``size`` crop of any size; area averaging when shrinking, bilinear when growing."""
    if face.shape[:2] == (size, size):
        return face
    shrinking = face.shape[0] > size or face.shape[1] > size
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def row_pieces(n: int, multiple: int, max_rows: int | None = None) -> list[int]:
    """``n`` rows as runs of a multiple of ``multiple`` rows, then powers of two below it: 21 rows with
    ``multiple`` 8 are runs of 16, 4 and 1. Like ``pad_rows`` it bounds the shapes a runtime sees, but no
    padded row is computed, for at most three small runs more. With ``max_rows`` (a multiple of
    ``multiple``) no run is longer: a runtime's memory grows with its longest run."""
    if max_rows is not None and (max_rows < multiple or max_rows % multiple):
        raise ValueError(f"max_rows={max_rows} must be a multiple of {multiple}")
    whole = n // multiple * multiple
    step = max_rows or whole
    pieces = [min(step, whole - k) for k in range(0, whole, step)] if whole else []
    rest = n % multiple
    pieces += [1 << bit for bit in range(rest.bit_length() - 1, -1, -1) if rest >> bit & 1]
    return pieces


def pad_rows(batch: np.ndarray, multiple: int, limit: int | None = None, small: int | None = None) -> np.ndarray:
    """``batch`` with zero rows appended up to a multiple of ``multiple`` rows (but not beyond ``limit``).

    Runtimes keep state per input shape (kernels, memory plans, arena blocks); fed a row count that
    differs from call to call, a long run keeps meeting new shapes and its memory creeps up. Rounding
    up bounds the shapes a runtime ever sees. Below ``multiple`` rows the count rounds up to a
    multiple of ``small`` if given, else to a power of two (1, 2, 4, ...): a net whose cost grows
    with every row (MTCNN's ONet) wants the finer steps.
    """
    n = len(batch)
    if 0 < n < multiple:
        rows = -(-n // small) * small if small else 1 << (n - 1).bit_length()
    else:
        rows = -(-n // multiple) * multiple
    rows = min(rows, limit) if limit else rows
    if rows <= n:
        return batch
    return np.concatenate([batch, np.zeros((rows - n, *batch.shape[1:]), batch.dtype)])


def to_nchw(images: np.ndarray, mean: float, std: float, out: np.ndarray | None = None) -> np.ndarray:
    """N x H x W x C (uint8 or float) -> N x C x H x W float32 ``(x - mean) / std``, in one pass per channel.

    ``out`` (N x C x H x W float32) receives the result in place, e.g. a slice of a larger batch,
    so that threads can each fill their rows of one net input without a copy after.
    """
    if images.ndim != 4:
        raise ValueError(f"expected N x H x W x C images, got shape {images.shape}")
    n, h, w, c = images.shape
    if out is None:
        out = np.empty((n, c, h, w), np.float32)
    elif out.shape != (n, c, h, w) or out.dtype != np.float32:
        raise ValueError(f"out must be {(n, c, h, w)} float32, got {out.shape} {out.dtype}")
    scale = np.float32(1.0 / std)
    for ch in range(c):
        np.multiply(np.subtract(images[..., ch], np.float32(mean), dtype=np.float32), scale, out=out[:, ch])
    return out


def standardise(faces: np.ndarray, norm: InputNorm) -> np.ndarray:
    """N x H x W x 3 uint8 RGB faces -> the N x 3 x H x W float32 input ``norm`` describes."""
    batch = np.asarray(faces)
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected N x H x W x 3 RGB faces, got shape {batch.shape}")
    if norm.bgr:
        batch = batch[..., ::-1]
    if not norm.prewhiten:
        return to_nchw(batch, norm.mean, norm.std)
    out = to_nchw(batch, 0.0, 1.0)
    flat = out.reshape(len(out), -1)
    mean = flat.mean(axis=1, dtype=np.float64)
    std = np.maximum(flat.std(axis=1, dtype=np.float64), 1.0 / np.sqrt(flat.shape[1]))
    flat -= mean[:, None].astype(np.float32)
    flat /= std[:, None].astype(np.float32)
    return out


def face_batch(faces, size: int, norm: InputNorm) -> np.ndarray:
    """Face crops of any size (H x W x 3 uint8 RGB) -> the model's N x 3 x size x size float32 input."""
    return standardise(np.stack([resize_face(f, size) for f in faces]), norm)


# --- raw .bin tensors: the file contract of offline accelerator runners ---------------------------
# A .bin file is the tensor's bytes and nothing else: float32, little-endian, C order (row-major),
# so an N x 3 x 160 x 160 batch is N * 3 * 160 * 160 * 4 bytes, element [n, c, y, x] at float index
# ((n * 3 + c) * 160 + y) * 160 + x. Shapes travel beside the files (info.json), not in them.
BIN_DTYPE = np.dtype("<f4")


def write_bin(path, tensor: np.ndarray) -> None:
    """Write ``tensor`` as raw little-endian float32 in C order, atomically."""
    with atomic_path(path, ".bin") as tmp:
        np.ascontiguousarray(tensor, dtype=BIN_DTYPE).tofile(tmp)


def read_bin(path, row_shape: tuple[int, ...]) -> np.ndarray:
    """Read a raw float32 ``.bin`` as N x ``row_shape``; refuses a size that is not a whole number of rows."""
    data = np.fromfile(path, dtype=BIN_DTYPE)
    per_row = int(np.prod(row_shape))
    if data.size == 0 or data.size % per_row:
        raise ValueError(f"{path}: {data.size * 4} bytes is not a whole number of float32 rows of shape "
                         f"{tuple(row_shape)} ({per_row * 4} bytes each); is it the right file?")
    return data.reshape(-1, *row_shape).astype(np.float32, copy=False)
