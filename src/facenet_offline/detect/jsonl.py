"""Detection results as JSON lines, and face crops written beside them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..cache import atomic_path
from .align import AlignConfig, align_face
from .mtcnn import Detection


def detection_record(item, det: Detection, crops: list[str]) -> dict:
    """One JSON-ready line: the image, its status and size, and every face with box, score, landmarks.

    Coordinates are in the original image's pixels, also when detection ran on a downscaled copy.
    """
    if item.decoded is not None and item.decoded.scale != (1.0, 1.0):
        det = det.unscaled(item.decoded.scale, item.decoded.size)
    faces = [{"box": [round(float(v), 2) for v in det.boxes[k]], "score": round(float(det.scores[k]), 6),
              "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in det.landmarks[k]]}
             for k in range(len(det))]
    for face, crop in zip(faces, crops):
        face["crop"] = crop
    height, width = item.decoded.size if item.decoded is not None else (0, 0)
    record = {"path": str(item.path), "status": item.status, "width": int(width), "height": int(height),
              "faces": faces}
    if item.decoded is not None and item.decoded.scale != (1.0, 1.0):
        record["detected_at"] = {"width": item.decoded.pixels.shape[1], "height": item.decoded.pixels.shape[0]}
    return record


def save_crops(item, det: Detection, align: AlignConfig, folder: str | Path, index: int) -> list[str]:
    """Write each face's aligned crop as ``<index>_<stem>_<k>.png`` in ``folder``; return the paths."""
    if item.image is None:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(len(det)):
        crop = align_face(item.image, det.boxes[k], det.landmarks[k], align)
        path = folder / f"{index:06d}_{Path(item.path).stem}_{k}.png"
        with atomic_path(path, ".png") as tmp:
            Image.fromarray(np.ascontiguousarray(crop)).save(tmp, format="PNG")
        paths.append(str(path))
    return paths


def read_meta(path: str | Path) -> dict:
    """How a ``detect`` output was made: its first line, ``{"meta": {...}}`` ({} if it has none)."""
    with open(path, encoding="utf-8") as fh:
        first = json.loads(fh.readline() or "{}")
    return first.get("meta", {}) if isinstance(first, dict) else {}


def iter_records(path: str | Path) -> Iterator[dict]:
    """The per-image lines of a ``detect`` output, streamed (the meta line skipped)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            if "meta" not in obj:
                yield obj
