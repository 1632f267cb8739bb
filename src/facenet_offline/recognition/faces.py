"""Every face of every image, embedded: the input of enrolment, identification and clustering."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..detect.align import AlignConfig, align_face
from ..detect.mtcnn import MTCNNDetector, Selection
from ..embedder import Embedder
from ..pipeline import Progress, detect_batches

THUMB = 64  # contact-sheet thumbnail side


@dataclass
class Face:
    source: str
    index: int  # which face of its image (by score)
    box: list[float]
    score: float
    embedding: np.ndarray
    thumb: np.ndarray | None = None


def embed_faces(paths: Sequence[Path], detector: MTCNNDetector, embedder: Embedder,
                select: Selection = Selection.ALL, align: AlignConfig = AlignConfig(), batch_size: int = 16,
                thumbs: bool = False, progress: Progress = None) -> tuple[list[Face], dict[str, str]]:
    """(faces, status per image); images are streamed, so memory holds only the faces (and thumbnails)."""
    faces: list[Face] = []
    status: dict[str, str] = {}
    for results in detect_batches(paths, detector, batch_size, progress):
        crops, pending = [], []
        for item in results:
            found = item.detection.select(select)
            status[str(item.path)] = item.status if item.status != "ok" or len(found) else "no face"
            for k in range(len(found)):
                crop = align_face(item.image, found.boxes[k], found.landmarks[k], align)
                crops.append(crop)
                thumb = cv2.resize(crop, (THUMB, THUMB), interpolation=cv2.INTER_AREA) if thumbs else None
                pending.append(Face(str(item.path), k, [float(v) for v in found.boxes[k]], float(found.scores[k]),
                                    np.empty(0), thumb))
        if crops:
            for face, vector in zip(pending, embedder.embed(crops)):
                face.embedding = vector
            faces += pending
    return faces, status
