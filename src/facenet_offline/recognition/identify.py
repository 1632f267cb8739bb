"""Who is in these photos: every face against the gallery, "unknown" beyond the operating point's threshold.

A gallery compares each query with many people, so identification defaults to the stricter
operating point of FAR 1e-3 (docs/operating-points.md), not the accuracy-optimal threshold of a
single verification.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..data.images import ImageInput
from ..face_loop import Face
from ..status import Status
from ..weights import OperatingPoint
from .gallery import UNKNOWN, Gallery, Match

IDENTIFY_FAR = 1e-3  # the default operating point of identify and the gallery


@dataclass
class IdentifiedFace:
    """One face: who it is (or ``unknown``), its distance to them, and its nearest people."""

    face: Face
    identity: str
    distance: float  # to the nearest person (NaN when the gallery is empty)
    matches: list[Match] = field(default_factory=list)


@dataclass
class IdentifiedImage:
    """One input: its status, every face identified, and the operating point the decisions used."""

    source: str
    status: Status
    faces: list[IdentifiedFace]
    operating_point: OperatingPoint


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


def decide(matches: list[Match], point: OperatingPoint) -> tuple[str, float]:
    """(identity, distance) from a face's matches, nearest first: the nearest person if within the threshold."""
    if not matches:
        return UNKNOWN, float("nan")
    best = matches[0]
    return (best.name if point.same(best.distance) else UNKNOWN), best.distance


def search_people(embeddings: np.ndarray, gallery: Gallery, top_k: int = 3) -> list[list[Match]]:
    """The ``top_k`` nearest people of each embedding (nearest face per person), nearest first."""
    found = gallery.search(embeddings, k=max(top_k * 20, 50)) if len(embeddings) else []
    return [best_people(matches, top_k) for matches in found]


def identify(images: ImageInput | Iterable[ImageInput], gallery: Gallery, model, top_k: int = 3,
             threshold: float | None = None, far: float | None = None,
             progress: Callable[[int], None] | None = None) -> list[IdentifiedImage]:
    """Every face of every image (folders are walked), embedded by ``model`` (a ``FaceNet``): its ``top_k``
    people and its identity, at ``threshold``, or the measured one for ``far`` (default FAR 1e-3)."""
    gallery.check_model(model.description)
    point = model.operating_point(threshold, far, default_far=IDENTIFY_FAR)
    out = []
    for result in model.embed_many(images, faces="all", progress=progress):
        people = search_people(np.stack([f.embedding for f in result.faces]) if result.faces else np.zeros((0, 0)),
                               gallery, top_k)
        faces = [IdentifiedFace(face, *decide(matches, point), matches) for face, matches in zip(result.faces, people)]
        out.append(IdentifiedImage(result.source, result.status, faces, point))
    return out
