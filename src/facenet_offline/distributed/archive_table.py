"""The archive's Parquet dataset: one row per face, or per input without one; written file by file, atomically.

A folder holds ``_facenet_offline.json`` (the settings every row was made with) and ``part-*.parquet``
files. Readers of Parquet datasets (pyarrow, pandas, DuckDB, Spark, Ray) skip names that start with
``_`` or ``.``, so they see the rows only; a part file being written is a hidden ``.tmp`` until it is
renamed into place, so a killed run never leaves a half-written file that looks complete.

Columns: ``path`` (absolute), ``face`` (its place among the image's faces, most certain first; -1 for
a row without a face), ``status``, ``box`` (x1, y1, x2, y2) and ``landmarks`` (5 x (x, y)) in the
photo's pixels, ``score``, ``embedding``, ``model``, ``precision``; and what resuming and enrolling
need: ``input_rows`` (how many rows the input has), ``file_size`` and ``file_mtime_ns`` (the file as it
was read), ``sha256`` (of its bytes).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..cache import atomic_path, atomic_write_json
from ..embedding_set import EmbeddingSet
from ..errors import FacenetOfflineError
from ..face_loop import Face, ImageResult
from ..status import Status

MANIFEST = "_facenet_offline.json"
FORMAT = "facenet-offline archive 1"
PART_GLOB = "part-*.parquet"


class ArchiveError(FacenetOfflineError):
    """An output folder that is not an archive, or one made with other settings."""


def schema(dim: int) -> pa.Schema:
    """The part files' schema for embeddings of ``dim`` values."""
    return pa.schema([
        ("path", pa.string()), ("face", pa.int32()), ("status", pa.string()),
        ("box", pa.list_(pa.float32(), 4)), ("score", pa.float32()), ("landmarks", pa.list_(pa.float32(), 10)),
        ("embedding", pa.list_(pa.float32(), dim)), ("model", pa.string()), ("precision", pa.string()),
        ("input_rows", pa.int32()), ("file_size", pa.int64()), ("file_mtime_ns", pa.int64()), ("sha256", pa.string()),
    ])


def fixed_lists(values: np.ndarray, width: int) -> pa.FixedSizeListArray:
    """An n x width float32 array as a Parquet fixed-size list column."""
    flat = np.ascontiguousarray(values, np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), width)


def column_array(table: pa.Table, name: str) -> np.ndarray:
    """A fixed-size list column as an n x width float32 array."""
    column = table.column(name).combine_chunks()
    width = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width).astype(np.float32)


def write_part(folder: str | os.PathLike, table: pa.Table) -> Path:
    """Write ``table`` as a new part file of ``folder``, atomically (hidden until complete)."""
    target = Path(folder) / f"part-{uuid.uuid4().hex}.parquet"
    with atomic_path(target, ".parquet", "the finished files are kept; free space there and run it again") as tmp:
        pq.write_table(table, tmp)
    return target


def part_files(folder: str | os.PathLike) -> list[Path]:
    return sorted(Path(folder).glob(PART_GLOB))


# --- the manifest ------------------------------------------------------------------------------------
def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The settings an archive folder was made with; None for a folder that is not one (or does not exist)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{folder}: its {MANIFEST} cannot be read ({exc}); write to another --out.") from None
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"{folder}: {MANIFEST} is not a facenet-offline archive's ({manifest.get('format')!r}).")
    return manifest


def is_archive(folder: str | os.PathLike) -> bool:
    return Path(folder).is_dir() and (Path(folder) / MANIFEST).is_file()


def write_manifest(folder: str | os.PathLike, settings: dict) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(folder) / MANIFEST, {"format": FORMAT, "settings": settings})


def file_identity(path: str) -> tuple[int, int]:
    """(size, mtime in ns) of a file as it is now; (-1, -1) if it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


# --- what is done ------------------------------------------------------------------------------------
@dataclass
class RecordedInput:
    """An input as the archive has it: how many of its rows are there, how many it should have, and the file
    (size, mtime) its rows were made from."""

    rows: int = 0
    expected: int = 0
    file: tuple[int, int] = (-1, -1)

    @property
    def complete(self) -> bool:
        return self.rows == self.expected


def recorded_inputs(folder: str | os.PathLike) -> dict[str, RecordedInput]:
    """Every input with rows in the archive, read one part file (four columns) at a time."""
    found: dict[str, RecordedInput] = {}
    for part in part_files(folder):
        table = pq.read_table(part, columns=["path", "input_rows", "file_size", "file_mtime_ns"])
        for path, expected, size, mtime in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            entry = found.setdefault(path, RecordedInput(expected=expected, file=(size, mtime)))
            entry.rows += 1
    return found


def drop_inputs(folder: str | os.PathLike, paths: Iterable[str]) -> int:
    """Remove every row of ``paths`` from the part files (each rewritten atomically); returns rows removed."""
    paths = pa.array(sorted(set(paths)), pa.string())
    removed = 0
    if not len(paths):
        return 0
    for part in part_files(folder):
        table = pq.read_table(part)
        hit = pc.is_in(table.column("path"), value_set=paths)
        n = pc.sum(hit).as_py() or 0
        if n:
            kept = table.filter(pc.invert(hit))
            if len(kept):
                with atomic_path(part, ".parquet") as tmp:
                    pq.write_table(kept, tmp)
            else:
                part.unlink()
            removed += n
    return removed


# --- reading it back ---------------------------------------------------------------------------------
@dataclass
class ArchiveFaces:
    """Rows of an archive, sorted by path and face: what ``gallery build`` and ``cluster`` take."""

    paths: list[str]
    faces: np.ndarray
    status: list[Status]
    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray
    sha256: list[str | None]
    settings: dict = field(default_factory=dict)

    @property
    def model(self) -> dict:
        """The embedder's description (model, precision, digests): what a gallery checks."""
        return self.settings["embedder"]

    @property
    def ok(self) -> np.ndarray:
        return self.faces >= 0

    def images(self) -> Iterator[tuple[ImageResult, str | None]]:
        """Each input as the face loop gives it (an ``ImageResult`` of its faces, embedded) and its sha256."""
        start = 0
        while start < len(self.paths):
            end = start
            while end < len(self.paths) and self.paths[end] == self.paths[start]:
                end += 1
            faces = [Face(self.boxes[i], float(self.scores[i]), self.landmarks[i], int(self.faces[i]),
                          self.embeddings[i]) for i in range(start, end) if self.faces[i] >= 0]
            yield ImageResult(self.paths[start], self.status[start], faces), self.sha256[start]
            start = end

    def to_embedding_set(self) -> EmbeddingSet:
        """The rows as ``embed``'s ``.npz`` set (inputs numbered by path order)."""
        _, inputs = np.unique(np.array(self.paths, dtype=str), return_inverse=True)
        return EmbeddingSet(list(self.paths), self.embeddings, self.status, {"settings": self.settings},
                            inputs, self.faces, self.boxes)


def iter_tables(folder: str | os.PathLike, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    for part in part_files(folder):
        yield pq.read_table(part, columns=list(columns) if columns else None)


def read_archive(folder: str | os.PathLike) -> ArchiveFaces:
    """Every row of an archive folder (made by ``embed --engine ray``), sorted by path and face."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise ArchiveError(f"{folder}: not an embedded archive (no {MANIFEST}); make one with "
                           f"facenet-offline embed PHOTOS --engine ray --out {folder}")
    tables = list(iter_tables(folder))
    dim = int(manifest["settings"]["embedding_dim"])
    table = pa.concat_tables(tables) if tables else schema(dim).empty_table()
    table = table.sort_by([("path", "ascending"), ("face", "ascending")])
    return ArchiveFaces(table.column("path").to_pylist(), table.column("face").to_numpy().astype(np.int32),
                        [Status.parse(s) for s in table.column("status").to_pylist()], column_array(table, "box"),
                        column_array(table, "landmarks").reshape(-1, 5, 2),
                        table.column("score").to_numpy(zero_copy_only=False).astype(np.float32),
                        column_array(table, "embedding"),
                        table.column("sha256").to_pylist(), manifest["settings"])
