"""Past one machine: embed a photo archive with Ray Data into a Parquet dataset, and read it back.

``embed_archive`` runs the pipeline (``archive``) of the detect and embed actors (``stages``);
``read_archive`` gives the rows to ``gallery build`` and ``cluster`` (``archive_table``).
"""

from .archive import ArchiveSummary, embed_archive
from .archive_table import ArchiveError, ArchiveFaces, is_archive, read_archive

__all__ = ["ArchiveError", "ArchiveFaces", "ArchiveSummary", "embed_archive", "is_archive", "read_archive"]
