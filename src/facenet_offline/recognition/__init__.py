"""Recognition and clustering: a gallery of known people, identifying faces against it, grouping faces by person."""

from .cluster import Clustering, cluster, cluster_embeddings
from .enrol import people_folders
from .gallery import (
           BadNameError,
           EnrolledPhoto,
           EnrolReport,
           FaceRecord,
           Gallery,
           GalleryError,
           Match,
           NameTakenError,
           UnknownPersonError,
)
from .identify import IDENTIFY_FAR, UNKNOWN, IdentifiedFace, IdentifiedImage, identify

__all__ = ["BadNameError", "Clustering", "EnrolReport", "EnrolledPhoto", "FaceRecord", "Gallery", "GalleryError", "NameTakenError",
           "UnknownPersonError", "IDENTIFY_FAR", "IdentifiedFace",
           "IdentifiedImage", "Match", "UNKNOWN", "cluster", "cluster_embeddings", "identify", "people_folders"]
