"""facenet-offline: offline face recognition with FaceNet, on your own machine.

Verify two photos, embed a folder, enrol people and find them in new photos::

    from facenet_offline import FaceNet, Gallery, identify
    from facenet_offline.samples import PEOPLE, PROBES  # LFW photos shipped with the package

    fn = FaceNet()  # MTCNN + FaceNet (CASIA-WebFace), built into the local cache on first use
    result = fn.verify(PEOPLE / "Tony_Blair/Tony_Blair_0001.jpg", PROBES / "Tony_Blair_0003.jpg")
    print(result.same, round(result.distance, 3), result.operating_point.describe())

    for image in fn.embed_many(PROBES):  # paths, folders, bytes, file objects, PIL images or arrays
        print(image.source, image.status, [face.embedding.shape for face in image.faces])

    gallery = Gallery.open("my-gallery", create=True)
    gallery.enrol("Tony Blair", PEOPLE / "Tony_Blair", fn)
    for found in identify(PROBES, gallery, fn):
        print(found.source, [(face.identity, round(face.distance, 3)) for face in found.faces])

The names below load on first use, so ``import facenet_offline`` (and the command line's
``--help``) stays quick.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "FaceNet": "api", "Verification": "api", "NoFaceError": "api",
    "Face": "face_loop", "FaceOptions": "face_loop", "ImageResult": "face_loop",
    "Status": "status", "StatusKind": "status",
    "Selection": "detect.mtcnn", "AlignConfig": "detect.align",
    "OperatingPoint": "weights.registry", "ModelSpec": "weights.registry",
    "EmbeddingSet": "embedding_set",
    "Gallery": "recognition.gallery", "Match": "recognition.gallery",
    "identify": "recognition.identify", "cluster": "recognition.cluster",
    "embed_archive": "distributed.archive", "ArchiveSummary": "distributed.archive",
    "read_archive": "distributed.archive_table", "ArchiveFaces": "distributed.archive_table",
    "FacenetOfflineError": "errors", "ImageError": "errors",
}
# The front door; the result types load the same way under their own names (facenet_offline.Face, ...).
__all__ = ["__version__", "FaceNet", "Gallery", "identify", "cluster", "embed_archive", "read_archive", "Status",
           "FacenetOfflineError"]


def __getattr__(name: str):
    """Import the module holding ``name`` when it is first asked for (unknown names raise AttributeError)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'facenet_offline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(["__version__", *_EXPORTS])
