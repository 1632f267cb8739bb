"""Recognition and clustering: a gallery of known people, identifying faces against it, grouping faces by person."""

from .cluster import cluster, cluster_embeddings
from .gallery import Gallery, GalleryError, Match
from .identify import UNKNOWN, identify

__all__ = ["Gallery", "GalleryError", "Match", "UNKNOWN", "cluster", "cluster_embeddings", "identify"]
