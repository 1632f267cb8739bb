"""A gallery of known people on disk: metadata in SQLite, vectors in a FAISS index.

SQLite is the source of truth (people, faces, their embeddings as float32 blobs, the model they
were made with) and every change is one transaction: a killed ``add`` rolls back on the next open.
The FAISS index is derived from it and written atomically as ``index-<generation>.faiss``; the
database names the generation it expects, so an index that is missing or stale (a kill between
commit and index write) is rebuilt from the database instead of being trusted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cache import atomic_path
from ..errors import FacenetOfflineError

log = logging.getLogger(__name__)

DB = "gallery.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    box TEXT,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
"""
# What must match for two embeddings to be comparable.
MODEL_KEYS = ("model", "precision", "weights_sha256")


class GalleryError(FacenetOfflineError):
    pass


@dataclass
class Match:
    """One gallery face near a query: who, how far (squared L2 of unit vectors, 0..4), which face."""

    name: str
    distance: float
    face_id: int
    source: str


class Gallery:
    """Open with ``Gallery.open(folder)``; ``create=True`` with the model description makes a new one."""

    def __init__(self, folder: Path, db: sqlite3.Connection):
        self.folder, self.db = folder, db
        self._index = None

    # --- opening ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, model: dict | None = None, create: bool = False) -> Gallery:
        folder = Path(folder)
        path = folder / DB
        if not path.is_file():
            if not create:
                raise GalleryError(f"{folder}: no gallery here; create one with `facenet-offline gallery add`.")
            if model is None:
                raise GalleryError("a new gallery needs the model description it is built with")
            folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)  # transactions are explicit below
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMA)
        gallery = cls(folder, db)
        stored = gallery.meta("model")
        if stored is None and model is not None:
            with gallery._transaction():
                gallery._set_meta("model", {k: model.get(k) for k in MODEL_KEYS} | {"description": model})
                gallery._set_meta("generation", 0)
        elif model is not None:
            gallery.check_model(model)
        return gallery

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    # --- metadata -----------------------------------------------------------------------------------
    def meta(self, key: str):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def model(self) -> dict:
        return self.meta("model") or {}

    def check_model(self, model: dict) -> None:
        """Refuse embeddings from another model or precision: their distances mean nothing here."""
        stored = self.model
        diffs = [f"{k}: gallery {stored.get(k)} vs now {model.get(k)}" for k in MODEL_KEYS if stored.get(k) != model.get(k)]
        if diffs:
            raise GalleryError(f"{self.folder} was built with another model ({'; '.join(diffs)}); use "
                               f"--model {stored.get('model')} --precision {stored.get('precision')}, "
                               "or another gallery.")

    def _transaction(self):
        db = self.db

        class _Tx:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, exc, tb):
                db.execute("COMMIT" if kind is None else "ROLLBACK")
                return False

        return _Tx()

    # --- changes ------------------------------------------------------------------------------------
    def add(self, name: str, embeddings: np.ndarray, sources: Sequence[str], boxes: Sequence | None = None,
            after_each=None) -> list[int]:
        """Enrol faces of ``name`` in one transaction; returns their ids."""
        return self.add_faces([name] * len(sources), embeddings, sources, boxes, after_each)

    def add_faces(self, names: Sequence[str], embeddings: np.ndarray, sources: Sequence[str],
                  boxes: Sequence | None = None, after_each=None) -> list[int]:
        """Enrol faces (row i belongs to ``names[i]``) in one transaction, then rewrite the index once.

        ``after_each(i)`` is called after each row is written (progress, and tests of a kill mid-way).
        """
        names = [n.strip() for n in names]
        if not all(names):
            raise GalleryError("every person needs a non-empty --name")
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or not len(embeddings) == len(sources) == len(names):
            raise ValueError("one name, embedding and source per face expected")
        ids = []
        with self._transaction():
            person_ids: dict[str, int] = {}
            for i, (name, vector, source) in enumerate(zip(names, embeddings, sources)):
                if name not in person_ids:
                    self.db.execute("INSERT OR IGNORE INTO people (name) VALUES (?)", (name,))
                    person_ids[name] = self.db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()[0]
                box = json.dumps([float(v) for v in boxes[i]]) if boxes is not None and boxes[i] is not None else None
                cur = self.db.execute("INSERT INTO faces (person_id, source, box, embedding) VALUES (?, ?, ?, ?)",
                                      (person_ids[name], str(source), box, vector.tobytes()))
                ids.append(cur.lastrowid)
                if after_each:
                    after_each(i)
            self._bump()
        self._write_index()
        return ids

    def remove(self, name: str) -> int:
        """Forget a person and all their faces; returns how many faces went."""
        with self._transaction():
            row = self.db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise GalleryError(f"{name!r} is not in {self.folder}; `facenet-offline gallery list` shows who is.")
            (count,) = self.db.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?", row).fetchone()
            self.db.execute("DELETE FROM faces WHERE person_id = ?", row)
            self.db.execute("DELETE FROM people WHERE id = ?", row)
            self._bump()
        self._write_index()
        return count

    def _bump(self) -> None:
        self._set_meta("generation", (self.meta("generation") or 0) + 1)

    # --- reading ------------------------------------------------------------------------------------
    def people(self) -> list[tuple[str, int]]:
        return self.db.execute("SELECT p.name, COUNT(f.id) FROM people p LEFT JOIN faces f ON f.person_id = p.id "
                               "GROUP BY p.id ORDER BY p.name").fetchall()

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(face ids, N x D embeddings) from the database, in id order."""
        rows = self.db.execute("SELECT id, embedding FROM faces ORDER BY id").fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return (np.array([r[0] for r in rows], np.int64),
                np.stack([np.frombuffer(r[1], np.float32) for r in rows]))

    def _index_path(self, generation: int) -> Path:
        return self.folder / f"index-{generation}.faiss"

    def _write_index(self):
        import faiss

        ids, vectors = self.vectors()
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1] if len(vectors) else 1))
        if len(vectors):
            index.add_with_ids(np.ascontiguousarray(vectors), ids)
        generation = self.meta("generation") or 0
        target = self._index_path(generation)
        with atomic_path(target, ".faiss") as tmp:
            faiss.write_index(index, str(tmp))
        for old in self.folder.glob("index-*.faiss"):
            if old != target:
                old.unlink(missing_ok=True)
        self._index = (generation, index)
        return index

    def index(self):
        """The FAISS index of the current generation: loaded, or rebuilt if missing or stale."""
        import faiss

        generation = self.meta("generation") or 0
        if self._index and self._index[0] == generation:
            return self._index[1]
        path = self._index_path(generation)
        if path.is_file():
            index = faiss.read_index(str(path))
            if index.ntotal == len(self):
                self._index = (generation, index)
                return index
        log.info("rebuilding the index of %s from its database", self.folder)
        return self._write_index()

    def search(self, queries: np.ndarray, k: int = 5) -> list[list[Match]]:
        """The ``k`` nearest gallery faces of each query embedding (unit vectors), nearest first."""
        queries = np.ascontiguousarray(np.asarray(queries, np.float32))
        if len(self) == 0:
            return [[] for _ in queries]
        sims, ids = self.index().search(queries, min(k, len(self)))
        wanted = sorted({int(i) for i in ids.ravel() if i >= 0})
        marks = ",".join("?" * len(wanted))
        info = {r[0]: (r[1], r[2]) for r in self.db.execute(
            f"SELECT f.id, p.name, f.source FROM faces f JOIN people p ON p.id = f.person_id WHERE f.id IN ({marks})",
            wanted)}
        return [[Match(info[int(i)][0], float(max(0.0, 2.0 - 2.0 * s)), int(i), info[int(i)][1])
                 for s, i in zip(row_s, row_i) if i >= 0] for row_s, row_i in zip(sims, ids)]
