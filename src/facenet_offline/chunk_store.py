"""Resumable runs: results are written in numbered chunks, each renamed into place when complete.

A run over many inputs keeps ``<output>.parts/`` beside its output: ``manifest.json`` (the command,
every setting the results depend on, and a digest of the input list) and one file per finished
chunk. A killed run loses at most the chunk in progress; ``resume`` skips finished chunks, and is
refused when the settings or the inputs differ from the interrupted run's. When every chunk is
done the caller merges them into the output and the folder is removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .cache import atomic_path, atomic_write_json, remove_stale_temporaries
from .errors import FacenetOfflineError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1


class ResumeError(FacenetOfflineError):
    """An unfinished run is in the way, or cannot be resumed with these settings."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during a run: the message says what was kept and how to continue."""


RESUME_HINT = "the finished chunks are kept; free space there, then run it again with resume=True to continue"
MAX_CHUNK = 256
CHUNKS_AT_LEAST = 16  # a run is cut into at least this many chunks (when it has that many inputs)


def auto_chunk_size(inputs: int) -> int:
    """Inputs per chunk when none is given: small runs keep finished work too, in at least 16 chunks."""
    return max(1, min(MAX_CHUNK, -(-inputs // CHUNKS_AT_LEAST)))


def unfinished_chunk_size(folder: str | Path) -> int | None:
    """The chunk size of the unfinished run in ``folder`` (None if there is none): resuming takes it."""
    try:
        return int(json.loads((Path(folder) / MANIFEST).read_text())["chunk_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def inputs_digest(paths: Sequence[str | Path]) -> str:
    """sha256 of the ordered input list: resuming over other inputs would mix results."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(str(p).encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def run_manifest(command: str, settings: dict, paths: Sequence[str | Path], chunk_size: int) -> dict:
    """What a run's results depend on: compared key by key when resuming."""
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    return {"format": FORMAT, "command": command, "settings": settings, "chunk_size": chunk_size,
            "inputs": {"count": len(paths), "sha256": inputs_digest(paths)}}


def _flatten(obj, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def manifest_differences(before: dict, now: dict) -> list[str]:
    """Human-readable ``key: before -> now`` lines for every setting that differs."""
    a, b = _flatten(before), _flatten(now)
    return [f"{k}: {a.get(k, '(unset)')} -> {b.get(k, '(unset)')}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def chunk_name(index: int, suffix: str) -> str:
    return f"chunk-{index:06d}{suffix}"


def is_complete(folder: str | Path, items: int, chunk_size: int, suffix: str) -> bool:
    """Whether ``folder`` holds every chunk of a run over ``items`` inputs (a look, without opening it)."""
    count = (items + chunk_size - 1) // chunk_size
    return all((Path(folder) / chunk_name(i, suffix)).is_file() for i in range(count))


def parts_dir(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".parts")


@dataclass
class ChunkStore:
    """The finished chunks of one run; ``open`` creates it or checks it against the run's manifest."""

    folder: Path
    manifest: dict
    suffix: str
    on_full: str = RESUME_HINT  # what to do when the disk fills (DiskFullError)
    _lock_file: object = field(default=None, repr=False, compare=False)

    def __enter__(self) -> ChunkStore:
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    @classmethod
    def open(cls, folder: str | Path, manifest: dict, suffix: str, resume: bool, on_full: str = RESUME_HINT
             ) -> ChunkStore:
        folder = Path(folder)
        store = cls(folder, manifest, suffix, on_full)
        store._lock()
        if folder.exists():
            try:
                before = json.loads((folder / MANIFEST).read_text())
            except (OSError, json.JSONDecodeError):
                store._unlock()
                raise ResumeError(f"{folder} is in the way but is not an unfinished run (no readable {MANIFEST}); "
                                  "remove it.") from None
            done = len(store.finished())
            diffs = manifest_differences(before, manifest)
            if not resume or diffs:
                store._unlock()
            if not resume:
                raise ResumeError(f"{folder} holds an unfinished run ({done}/{store.count} chunks done); "
                                  f"run it again with resume=True to continue it, or remove the folder to start again.")
            if diffs:
                raise ResumeError(f"cannot resume the run in {folder}: it was made with other settings or inputs:\n  "
                                  + "\n  ".join(diffs)
                                  + "\nrerun with the settings above, or remove the folder to start again.")
            remove_stale_temporaries(folder)  # a killed run's half-written chunk
            log.info("resuming %s: %d/%d chunks already done", folder, done, store.count)
        else:
            folder.mkdir(parents=True)
            atomic_write_json(folder / MANIFEST, manifest)
        return store

    def _lock(self) -> None:
        """Hold ``<folder>.lock`` while this store is open: two processes never write one run."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.folder.with_name(self.folder.name + ".lock"), "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise ResumeError(f"another process is writing {self.folder}; wait for it to finish or stop it.") from None

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the lock
            self._lock_file = None

    @property
    def count(self) -> int:
        n, size = self.manifest["inputs"]["count"], self.manifest["chunk_size"]
        return (n + size - 1) // size

    def path(self, index: int) -> Path:
        return self.folder / chunk_name(index, self.suffix)

    def finished(self) -> list[int]:
        return [i for i in range(self.count) if self.path(i).is_file()]

    def pending(self, items: Sequence) -> Iterator[tuple[int, Sequence]]:
        """(chunk index, its slice of ``items``) for every chunk not yet written."""
        size = self.manifest["chunk_size"]
        for i in range(self.count):
            if not self.path(i).is_file():
                yield i, items[i * size:(i + 1) * size]

    def done_items(self) -> int:
        size, n = self.manifest["chunk_size"], self.manifest["inputs"]["count"]
        return sum(min(size, n - i * size) for i in self.finished())

    def write(self, index: int, writer: Callable[[Path], None]) -> Path:
        """``writer(tmp)`` writes the chunk to a temporary path, renamed to the chunk's name when it returns."""
        with atomic_path(self.path(index), self.suffix, on_full=self.on_full) as tmp:
            writer(tmp)
        return self.path(index)

    def files(self) -> list[Path]:
        missing = [i for i in range(self.count) if not self.path(i).is_file()]
        if missing:
            raise ResumeError(f"{self.folder}: chunks {missing[:5]} are missing; resume the run to finish them.")
        return [self.path(i) for i in range(self.count)]

    def remove(self) -> None:
        """Delete the chunks (once merged into the output) and release the run."""
        shutil.rmtree(self.folder, ignore_errors=True)
        Path(self.folder.with_name(self.folder.name + ".lock")).unlink(missing_ok=True)
        self._unlock()

    def close(self) -> None:
        """Release the run, keeping its chunks (a cache, or a run to resume later)."""
        self._unlock()
