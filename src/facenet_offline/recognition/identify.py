"""Who is in these photos: every face against the gallery, "unknown" beyond the open-set threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..detect.mtcnn import MTCNNDetector, Selection
from ..embedder import Embedder
from .faces import embed_faces
from .gallery import Gallery, Match

UNKNOWN = "unknown"


def default_threshold(embedder: Embedder) -> tuple[float, str]:
    """The open-set threshold (squared L2) and where it comes from: the model's LFW verification threshold."""
    spec = embedder.spec
    if spec.threshold is None:
        raise ValueError(f"no threshold is known for {spec.name}; pass --threshold")
    return spec.threshold, f"{spec.name}'s LFW verification threshold ({spec.threshold_source})"


@dataclass
class Identified:
    source: str
    face: int
    box: list[float]
    identity: str
    distance: float | None
    matches: list[Match] = field(default_factory=list)


def best_people(matches: list[Match], k: int) -> list[Match]:
    """The nearest face of each of the ``k`` nearest people."""
    seen, out = set(), []
    for m in matches:
        if m.name not in seen:
            seen.add(m.name)
            out.append(m)
        if len(out) == k:
            break
    return out


def identify(paths: Sequence[Path], gallery: Gallery, detector: MTCNNDetector, embedder: Embedder, top_k: int = 3,
             threshold: float | None = None, progress=None) -> tuple[list[Identified], dict[str, str]]:
    """Every face in ``paths``: its ``top_k`` people and its identity (or "unknown")."""
    gallery.check_model(embedder.description)
    if threshold is None:
        threshold, _ = default_threshold(embedder)
    faces, status = embed_faces(paths, detector, embedder, Selection.ALL, progress=progress)
    results = []
    if faces:
        import numpy as np

        found = gallery.search(np.stack([f.embedding for f in faces]), k=max(top_k * 20, 50))
        for face, matches in zip(faces, found):
            people = best_people(matches, top_k)
            best = people[0] if people else None
            known = best is not None and best.distance < threshold
            results.append(Identified(face.source, face.index, face.box, best.name if known else UNKNOWN,
                                      best.distance if best else None, people))
    return results, status
