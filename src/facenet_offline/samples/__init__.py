"""Real LFW pictures shipped with the package, for examples, smoke runs and export parity.

- ``FACES_DIR``: eight aligned 160 x 160 face crops (four people, two images each);
- ``PEOPLE``: photos of three people, a folder each (``PEOPLE/<Name>/<Name>_NNNN.jpg``), to enrol;
- ``PROBES``: other photos of them, one of someone else and one of two strangers, to identify.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.images import load_rgb
from ..data.tensors import resize_face

FACES_DIR = Path(__file__).parent / "faces"
PEOPLE = Path(__file__).parent / "people"
PROBES = Path(__file__).parent / "probes"


def sample_face_paths() -> list[Path]:
    return sorted(FACES_DIR.glob("*.jpg"))


def load_sample_faces(size: int = 160) -> np.ndarray:
    """N x size x size x 3 uint8 RGB."""
    return np.stack([resize_face(load_rgb(p), size) for p in sample_face_paths()])
