"""`detect`'s output: one JSON line per photo (after a meta line), and face crops written beside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from .cache import atomic_path


def detection_record(result, crops: list[str]) -> dict:
    """One JSON-ready line of a ``pipeline.ImageResult``: the image, its status and size, and every face
    with box, score and landmarks, in the original image's pixels (also when detection ran on a
    downscaled copy, whose size ``detected_at`` gives)."""
    faces = [{"box": [round(float(v), 2) for v in face.box], "score": round(float(face.score), 6),
              "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks]}
             for face in result.faces]
    for face, crop in zip(faces, crops):
        face["crop"] = crop
    height, width = result.size
    record = {"path": result.source, "status": str(result.status), "width": int(width), "height": int(height),
              "faces": faces}
    if result.detected_size != result.size and result.detected_size != (0, 0):
        record["detected_at"] = {"width": int(result.detected_size[1]), "height": int(result.detected_size[0])}
    return record


def save_crops(result, folder: str | Path, index: int) -> list[str]:
    """Write each face's aligned crop (``Face.crop``) as ``<index>_<stem>_<k>.png`` in ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, face in enumerate(result.faces):
        path = folder / f"{index:06d}_{Path(result.source).stem}_{k}.png"
        with atomic_path(path, ".png") as tmp:
            Image.fromarray(np.ascontiguousarray(face.crop)).save(tmp, format="PNG")
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
