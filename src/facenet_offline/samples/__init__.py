"""Eight real face crops (four LFW people, two images each) shipped for smoke runs and export parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FACES_DIR = Path(__file__).parent / "faces"


def sample_face_paths() -> list[Path]:
    return sorted(FACES_DIR.glob("*.jpg"))


def load_sample_faces(size: int = 160) -> np.ndarray:
    """N x size x size x 3 uint8 RGB."""
    from ..data.images import load_rgb
    from ..data.tensors import resize_face

    return np.stack([resize_face(load_rgb(p), size) for p in sample_face_paths()])
