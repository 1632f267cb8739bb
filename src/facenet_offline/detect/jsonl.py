"""Detection results as JSON lines, and face crops written beside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .align import AlignConfig, align_face
from .mtcnn import Detection


def detection_record(item, det: Detection, crops: list[str]) -> dict:
    """One JSON-ready line: the image, its status and size, and every face with box, score, landmarks."""
    faces = [{"box": [round(float(v), 2) for v in det.boxes[k]], "score": round(float(det.scores[k]), 6),
              "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in det.landmarks[k]]}
             for k in range(len(det))]
    for face, crop in zip(faces, crops):
        face["crop"] = crop
    height, width = det.image_size
    return {"path": str(item.path), "status": item.status, "width": int(width), "height": int(height), "faces": faces}


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
        Image.fromarray(np.ascontiguousarray(crop)).save(path)
        paths.append(str(path))
    return paths
