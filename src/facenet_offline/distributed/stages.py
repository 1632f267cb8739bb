"""The Ray Data stages of an archive run: detect (decode, detect, align) and embed, each an actor class that
builds its engine once; and the writer, an actor that writes their rows as Parquet part files.

Each actor holds ``job.threads`` CPUs in Ray and runs its engine on as many threads, so the actors
on a node never ask for more cores than Ray gave them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..data.images import ImageSource, source_digest
from ..face_loop import analyse
from .archive_table import file_identity, fixed_lists, schema, write_part
from .job import ArchiveJob

log = logging.getLogger(__name__)


class DetectStage:
    """Decode (in this project's code: EXIF, colour, the size bound, a status for every bad file), detect,
    select and align: one row per chosen face with its crop, or one row per input without a face."""

    job: ArchiveJob  # set on a subclass per run (archive.run_pipeline)

    def __init__(self):
        self.detector = self.job.open_detector()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        sources = [ImageSource(p, path=Path(p)) for p in paths]
        side = self.job.options.align.image_size
        rows: dict[str, list] = {k: [] for k in ("path", "face", "status", "box", "score", "landmarks", "crop",
                                                  "input_rows", "file_size", "file_mtime_ns", "sha256")}
        # Each file's identity before it is read: a file changed after this is seen as changed by the next run.
        identities = [file_identity(p) for p in paths]
        results = analyse(sources, self.detector, None, self.job.options, self.job.batch_size, crops=True,
                          decode_workers=1)
        for path, (size, mtime), result in zip(paths, identities, results):
            digest = source_digest(path) or ""
            faces = result.faces or [None]
            for face in faces:
                rows["path"].append(path)
                rows["status"].append(str(result.status))
                rows["input_rows"].append(len(faces))
                rows["file_size"].append(size)
                rows["file_mtime_ns"].append(mtime)
                rows["sha256"].append(digest)
                if face is None:
                    rows["face"].append(-1)
                    rows["box"].append(np.full(4, np.nan, np.float32))
                    rows["score"].append(np.nan)
                    rows["landmarks"].append(np.full(10, np.nan, np.float32))
                    rows["crop"].append(np.zeros((side, side, 3), np.uint8))
                else:
                    rows["face"].append(face.index)
                    rows["box"].append(face.box)
                    rows["score"].append(face.score)
                    rows["landmarks"].append(face.landmarks.reshape(10))
                    rows["crop"].append(face.crop)
        out = {k: np.array(v) for k, v in rows.items() if k not in ("box", "landmarks", "crop")}
        out.update({k: np.stack(rows[k]) for k in ("box", "landmarks", "crop")})  # a batch is never empty
        out["face"] = out["face"].astype(np.int32)
        out["score"] = out["score"].astype(np.float32)
        return out


class EmbedStage:
    """Embed the crops of the detect stage's rows in one run per batch; rows without a face pass through
    with a NaN embedding. Returns the archive's rows as an Arrow table (``archive_table.schema``)."""

    job: ArchiveJob

    def __init__(self):
        self.embedder = self.job.open_embedder()
        self.description = self.embedder.description
        self.schema = schema(self.embedder.spec.embedding_dim)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        n, dim = len(batch["path"]), self.embedder.spec.embedding_dim
        has_face = batch["face"] >= 0
        vectors = np.full((n, dim), np.nan, np.float32)
        if has_face.any():
            vectors[has_face] = self.embedder.embed(batch["crop"][has_face])
        columns = {
            "path": pa.array([str(p) for p in batch["path"]], pa.string()),
            "face": pa.array(batch["face"], pa.int32()),
            "status": pa.array([str(s) for s in batch["status"]], pa.string()),
            "box": fixed_lists(batch["box"], 4),
            "score": pa.array(batch["score"], pa.float32()),
            "landmarks": fixed_lists(batch["landmarks"], 10),
            "embedding": fixed_lists(vectors, dim),
            "model": pa.array([self.description["model"]] * n, pa.string()),
            "precision": pa.array([self.description["precision"]] * n, pa.string()),
            "input_rows": pa.array(batch["input_rows"], pa.int32()),
            "file_size": pa.array(batch["file_size"], pa.int64()),
            "file_mtime_ns": pa.array(batch["file_mtime_ns"], pa.int64()),
            "sha256": pa.array([str(s) or None for s in batch["sha256"]], pa.string()),
        }
        return pa.Table.from_pydict(columns, schema=self.schema)


class WriteStage:
    """Writes each batch it is given (``rows_per_file`` rows, the last one fewer) as one part file of the
    output folder, atomically, and returns its row count. An actor, so one process writes all along: Ray's
    write tasks each started a worker process of their own, which cost the busy actors a fifth of a core."""

    folder: str  # set on a subclass per run (archive.run_pipeline)

    def __call__(self, table: pa.Table) -> dict[str, np.ndarray]:
        if len(table):
            write_part(self.folder, table)
        return {"rows": np.array([len(table)], np.int64)}
