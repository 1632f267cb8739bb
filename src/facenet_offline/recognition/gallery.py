"""A gallery of known people on disk: metadata in SQLite, vectors in a FAISS index.

SQLite is the source of truth (people, faces, their embeddings as float32 blobs, the model they
were made with) and every change is one transaction: a killed ``add`` rolls back on the next open.
The FAISS index is derived from it and written atomically as ``index-<generation>.faiss``; the
database names the generation it expects and the index's sha256, so an index that is missing,
stale (a kill between commit and index write) or corrupt is rebuilt from the database instead of
being trusted. Each face records the digest of the photo it came from and its place among that
photo's faces, so enrolling the same photo again adds nothing: enrolment is idempotent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import faiss
import numpy as np

from ..cache import atomic_path, sha256_file
from ..data.images import ImageInput, expand_inputs, source_digest
from ..detect.mtcnn import Selection
from ..distance import from_cosine
from ..errors import FacenetOfflineError
from ..status import Status

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
# Columns added after the first galleries were made: the photo's digest, the face's place in it, and a small
# JPEG of the aligned face (what the service's page shows; faces enrolled before have none).
LATER_COLUMNS = {"digest": "TEXT", "face_index": "INTEGER", "thumbnail": "BLOB"}
THUMBNAIL_SIDE = 96
UNIQUE_FACE = "CREATE UNIQUE INDEX IF NOT EXISTS faces_photo ON faces(digest, face_index) WHERE digest IS NOT NULL"
# What must match for two embeddings to be comparable.
MODEL_KEYS = ("model", "precision", "weights_sha256")


# Below this many queries FAISS's flat search runs faster on one thread: its OpenMP threads cost more to wake than
# a few queries take, and they keep spinning after the search, slowing the runtime that runs next (the service
# embeds between searches). FAISS's own BLAS cut-over is 20 queries.
FEW_QUERIES = 20


@contextlib.contextmanager
def _search_threads(queries: int):
    """FAISS on one thread for a few queries, on all it had for many; restored after."""
    before = faiss.omp_get_max_threads()
    if queries < FEW_QUERIES:
        faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class GalleryError(FacenetOfflineError):
    pass


class UnknownPersonError(GalleryError):
    """A name or face id the gallery does not hold."""


class NameTakenError(GalleryError):
    """A person of that name is there already."""


class BadNameError(GalleryError):
    """A name no person may have."""


MAX_NAME = 200  # characters in a person's name
UNKNOWN = "unknown"  # what identify answers for a face matching nobody, so no one's name


def check_name(name: str) -> str:
    """A person's name as stored (stripped), or a BadNameError saying what is wrong with it.

    A name must be addressable as one URL segment by the service, and must not read as the answer for a
    face that matches nobody.
    """
    name = str(name).strip()
    wrong = ("is empty" if not name else
             f"is longer than {MAX_NAME} characters" if len(name) > MAX_NAME else
             "has a '/', which no URL of the service's /v1/people/{name} can carry" if "/" in name else
             "has control characters" if any(ord(c) < 32 or ord(c) == 127 for c in name) else
             "is the word answers use for a face matching nobody" if name.lower() == UNKNOWN else None)
    if wrong:
        raise BadNameError(f"name={name[:40]!r} {wrong}; choose another name.")
    return name


def face_thumbnail(crop: np.ndarray) -> bytes | None:
    """An aligned face crop (RGB) as a small JPEG, or None without a crop."""
    if crop is None or not crop.size:
        return None
    small = cv2.resize(crop, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data.tobytes() if ok else None


@dataclass
class EnrolReport:
    """What an enrolment did: faces added and skipped (already in the gallery), and inputs without a face."""

    added: list[tuple[str, str, int]] = field(default_factory=list)  # (person, source, face index)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # (source, face index, enrolled as)
    failures: list[tuple[str, Status]] = field(default_factory=list)  # (source, status)
    ids: list[int] = field(default_factory=list)  # the gallery ids of the added faces, in order


@dataclass
class EnrolledPhoto:
    """A photo to enrol as ``name``: its faces embedded (``face_loop.ImageResult``) and the sha256 of what it is."""

    name: str
    result: object
    digest: str | None
    thumbnails: dict[int, bytes | None] = field(default_factory=dict)  # by face index; else made from face.crop

    @classmethod
    def keeping_thumbnails(cls, name: str, result, digest: str | None) -> EnrolledPhoto:
        """The photo with its faces' thumbnails made now and their crops dropped (a build holds every photo)."""
        thumbs = {}
        for face in result.faces:
            thumbs[face.index] = face_thumbnail(face.crop)
            face.crop = np.zeros((0, 0, 3), np.uint8)
        return cls(name, result, digest, thumbs)


@dataclass
class FaceRecord:
    """A face in the gallery."""

    id: int
    name: str
    source: str
    box: list[float] | None
    face_index: int | None


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
                raise GalleryError(f"{folder}: no gallery here; create one with create=True, or enrol people into it.")
            folder.mkdir(parents=True, exist_ok=True)
        # Transactions are explicit below; a writer in another process is waited for. One thread at a time may use
        # a Gallery (the service holds a lock around it), in whichever thread.
        db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMA)
        known = {row[1] for row in db.execute("PRAGMA table_info(faces)")}
        for column, kind in LATER_COLUMNS.items():
            if column not in known:
                db.execute(f"ALTER TABLE faces ADD COLUMN {column} {kind}")
        db.execute(UNIQUE_FACE)
        gallery = cls(folder, db)
        if model is not None:
            gallery.check_model(model)
        return gallery

    @classmethod
    def stored_model(cls, folder: str | Path) -> dict:
        """The model description of the gallery in ``folder`` ({} if there is none yet, or it has no faces)."""
        if not (Path(folder) / DB).is_file():
            return {}
        with cls.open(folder) as gallery:
            return gallery.model

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
        """Refuse embeddings from another model or precision: their distances mean nothing here.

        A gallery without faces yet takes the model of its first embeddings.
        """
        stored = self.model
        if not stored:
            with self._transaction():
                self._set_meta("model", {k: model.get(k) for k in MODEL_KEYS} | {"description": model})
                if self.meta("generation") is None:
                    self._set_meta("generation", 0)
            return
        diffs = [f"{k}: gallery {stored.get(k)} vs now {model.get(k)}" for k in MODEL_KEYS if stored.get(k) != model.get(k)]
        if diffs:
            raise GalleryError(f"{self.folder} was built with another model ({'; '.join(diffs)}); use "
                               f"model={stored.get('model')} precision={stored.get('precision')}, or another gallery.")

    @contextlib.contextmanager
    def _transaction(self):
        """One transaction: committed if the block succeeds, rolled back otherwise (a full disk names the fix)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.db.in_transaction:  # SQLite has already rolled back after some errors (a full disk)
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise GalleryError(f"{self.folder}: the disk is full ({exc}); the gallery is unchanged. Free space "
                                   "there and enrol again.") from None
            raise

    # --- changes ------------------------------------------------------------------------------------
    def add(self, name: str, embeddings: np.ndarray, sources: Sequence[str], boxes: Sequence | None = None,
            after_each=None) -> list[int]:
        """Enrol faces of ``name`` in one transaction; returns their ids."""
        return self.add_faces([name] * len(sources), embeddings, sources, boxes, after_each)

    def add_faces(self, names: Sequence[str], embeddings: np.ndarray, sources: Sequence[str],
                  boxes: Sequence | None = None, after_each=None,
                  photos: Sequence[tuple[str | None, int]] | None = None,
                  thumbnails: Sequence[bytes | None] | None = None) -> list[int]:
        """Enrol faces (row i belongs to ``names[i]``) in one transaction, then rewrite the index once.

        ``photos[i]`` is (digest of the photo, face index) of row i, which must not be enrolled yet;
        ``thumbnails[i]`` its face as a small JPEG (``face_thumbnail``), if any.
        ``after_each(i)`` is called after each row is written (progress, and tests of a kill mid-way).
        """
        names = [check_name(n) for n in names]
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
                digest, face_index = photos[i] if photos is not None else (None, None)
                thumb = thumbnails[i] if thumbnails is not None else None
                cur = self.db.execute("INSERT INTO faces (person_id, source, box, embedding, digest, face_index, "
                                      "thumbnail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                      (person_ids[name], str(source), box, vector.tobytes(), digest, face_index,
                                       thumb))
                ids.append(cur.lastrowid)
                if after_each:
                    after_each(i)
            self._bump()
        self._write_index()
        return ids

    def enrol(self, name: str, images: ImageInput | Iterable[ImageInput], model, faces: Selection | str = "largest",
              progress: Callable[[int], None] | None = None) -> EnrolReport:
        """Add the chosen face (default: the largest) of each image of ``name``, embedded by ``model`` (a
        ``FaceNet``), in one transaction. A photo's face that is already enrolled is skipped and reported."""
        return self.enrol_people({name: images}, model, faces, progress)

    def enrol_people(self, people: Mapping[str, ImageInput | Iterable[ImageInput]], model,
                     faces: Selection | str = "largest", progress: Callable[[int], None] | None = None) -> EnrolReport:
        """``enrol`` for several people at once, all in one transaction (a build is all or nothing)."""
        self.check_model(model.description)
        photos = []
        for name, images in people.items():
            sources = list(expand_inputs(images))
            for source, result in zip(sources, model.embed_many(sources, faces=faces, crops=True, progress=progress)):
                photos.append(EnrolledPhoto.keeping_thumbnails(name, result, source_digest(source)))
        return self.enrol_results(photos, model.description)

    def enrol_results(self, photos: Sequence[EnrolledPhoto], model: dict) -> EnrolReport:
        """Store photos already embedded (``EnrolledPhoto``), in one transaction: each face once, a face of a
        photo already enrolled skipped and reported."""
        self.check_model(model)
        report, rows, seen = EnrolReport(), [], {}
        for photo in photos:
            result = photo.result
            if not result.faces:
                report.failures.append((result.source, result.status))
                continue
            for face in result.faces:
                known = seen.get((photo.digest, face.index)) or self.enrolled_as(photo.digest, face.index)
                if known is not None:
                    report.skipped.append((result.source, face.index, known))
                    continue
                seen[(photo.digest, face.index)] = photo.name
                rows.append((photo.name, result.source, face, photo.digest,
                             photo.thumbnails.get(face.index) or face_thumbnail(face.crop)))
                report.added.append((photo.name, result.source, face.index))
        if rows:
            report.ids = self.add_faces([r[0] for r in rows], np.stack([r[2].embedding for r in rows]),
                                        [r[1] for r in rows], [r[2].box for r in rows],
                                        photos=[(r[3], r[2].index) for r in rows],
                                        thumbnails=[r[4] for r in rows])
        return report

    def enrolled_as(self, digest: str | None, face_index: int) -> str | None:
        """Who face ``face_index`` of the photo with sha256 ``digest`` is enrolled as, if it is."""
        if digest is None:
            return None
        row = self.db.execute("SELECT p.name FROM faces f JOIN people p ON p.id = f.person_id "
                              "WHERE f.digest = ? AND f.face_index = ?", (digest, int(face_index))).fetchone()
        return None if row is None else row[0]

    def create_person(self, name: str) -> None:
        """A person with no faces yet; a name already there is a GalleryError."""
        name = check_name(name)
        with self._transaction():
            if self.db.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone():
                raise NameTakenError(f"{name!r} is already in {self.folder}.")
            self.db.execute("INSERT INTO people (name) VALUES (?)", (name,))

    def rename_person(self, name: str, new_name: str) -> None:
        """Rename a person; their faces stay theirs."""
        new_name = check_name(new_name)
        with self._transaction():
            self._person_id(name)
            if self.db.execute("SELECT 1 FROM people WHERE name = ?", (new_name,)).fetchone():
                raise NameTakenError(f"{new_name!r} is already in {self.folder}; choose another name.")
            self.db.execute("UPDATE people SET name = ? WHERE name = ?", (new_name, name))

    def faces_of(self, name: str) -> list[FaceRecord]:
        """Every face of ``name``, oldest first."""
        person = self._person_id(name)
        rows = self.db.execute("SELECT id, source, box, face_index FROM faces WHERE person_id = ? ORDER BY id",
                               (person,)).fetchall()
        return [FaceRecord(r[0], name, r[1], json.loads(r[2]) if r[2] else None, r[3]) for r in rows]

    def remove_face(self, face_id: int) -> FaceRecord:
        """Forget one face (its person stays, maybe with no faces)."""
        with self._transaction():
            row = self.db.execute("SELECT f.id, p.name, f.source, f.box, f.face_index FROM faces f JOIN people p "
                                  "ON p.id = f.person_id WHERE f.id = ?", (int(face_id),)).fetchone()
            if row is None:
                raise UnknownPersonError(f"no face {face_id} in {self.folder}; faces_of(name) lists a person's "
                                         "faces.")
            self.db.execute("DELETE FROM faces WHERE id = ?", (int(face_id),))
            self._bump()
        self._write_index()
        return FaceRecord(row[0], row[1], row[2], json.loads(row[3]) if row[3] else None, row[4])

    def _person_id(self, name: str) -> int:
        row = self.db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownPersonError(f"{name!r} is not in {self.folder}; people() (gallery list) shows who is.")
        return row[0]

    def remove(self, name: str) -> int:
        """Forget a person and all their faces; returns how many faces went."""
        with self._transaction():
            row = (self._person_id(name),)
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

    def first_faces(self) -> dict[str, int]:
        """Each person's oldest face id (people without faces are left out): whose thumbnail stands for them."""
        return dict(self.db.execute("SELECT p.name, MIN(f.id) FROM people p JOIN faces f ON f.person_id = p.id "
                                    "GROUP BY p.id").fetchall())

    def thumbnail(self, face_id: int) -> bytes | None:
        """The face's JPEG thumbnail, or None if it was enrolled without one (or is not there)."""
        row = self.db.execute("SELECT thumbnail FROM faces WHERE id = ?", (int(face_id),)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

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
        ids, vectors = self.vectors()
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1] if len(vectors) else 1))
        if len(vectors):
            index.add_with_ids(np.ascontiguousarray(vectors), ids)
        generation = self.meta("generation") or 0
        target = self._index_path(generation)
        with atomic_path(target, ".faiss", on_full="the gallery's faces are saved; free space there and the index "
                                                   "is rebuilt when the gallery is next used") as tmp:
            faiss.write_index(index, str(tmp))
            digest = sha256_file(tmp)
        with self._transaction():
            self._set_meta("index", {"generation": generation, "sha256": digest})
        for old in self.folder.glob("index-*.faiss"):
            if old != target:
                old.unlink(missing_ok=True)
        self._index = (generation, index)
        return index

    def index(self):
        """The FAISS index of the current generation: loaded, or rebuilt if missing, stale or corrupt."""
        generation = self.meta("generation") or 0
        if self._index and self._index[0] == generation:
            return self._index[1]
        path = self._index_path(generation)
        if path.is_file() and self.meta("index") == {"generation": generation, "sha256": sha256_file(path)}:
            try:
                index = faiss.read_index(str(path))
            except RuntimeError as exc:  # FAISS's reader raises RuntimeError on any malformed file
                log.warning("%s: unreadable (%s)", path, str(exc).splitlines()[0])
            else:
                if index.ntotal == len(self):
                    self._index = (generation, index)
                    return index
        log.info("rebuilding the index of %s from its database", self.folder)
        return self._write_index()

    def search(self, queries: np.ndarray, k: int = 5) -> list[list[Match]]:
        """The ``k`` nearest gallery faces of each query embedding (unit vectors), nearest first."""
        queries = np.ascontiguousarray(np.asarray(queries, np.float32))
        index = self.index()  # its size, not the database's COUNT(*): that reads every row of a large gallery
        if index.ntotal == 0:
            return [[] for _ in queries]
        with _search_threads(len(queries)):
            sims, ids = index.search(queries, min(k, index.ntotal))
        wanted = sorted({int(i) for i in ids.ravel() if i >= 0})
        marks = ",".join("?" * len(wanted))
        info = {r[0]: (r[1], r[2]) for r in self.db.execute(
            f"SELECT f.id, p.name, f.source FROM faces f JOIN people p ON p.id = f.person_id WHERE f.id IN ({marks})",
            wanted)}
        return [[Match(info[int(i)][0], float(from_cosine(s)), int(i), info[int(i)][1])
                 for s, i in zip(row_s, row_i) if i >= 0] for row_s, row_i in zip(sims, ids)]
