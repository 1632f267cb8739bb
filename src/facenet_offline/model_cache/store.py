"""The model cache (``FACENET_OFFLINE_HOME``): verified builds, keyed by weights sha256 and build options.

A cached build is used only if its record exists and every file's sha256 matches the record; a
build writes its files and then the record, each atomically, under a lock shared by concurrent
builders, so a killed or racing build never leaves a model that looks complete.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..cache import HOME_ENV, atomic_write_json, file_lock, home, remove_stale_temporaries, sha256_file
from ..errors import DiskFullError
from ..versions import library_versions
from ..weights import ModelSpec, get_spec

log = logging.getLogger("facenet_offline.model_cache")

BUILD_FORMAT = 2  # bump when an export recipe changes, so old cache entries are not reused
RECORD = "build.json"


@dataclass(frozen=True)
class Built:
    """Verified ONNX files in the cache and the record of how they were made."""

    folder: Path
    files: dict[str, Path]
    record: dict

    @property
    def path(self) -> Path:
        """The single model of a FaceNet build."""
        return self.files["facenet"]

    @property
    def spec(self) -> ModelSpec:
        return get_spec(self.record["model"])


def _read_valid(folder: Path) -> Built | None:
    record_path = folder / RECORD
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError:
        return None
    if not record.get("files"):
        return None
    files = {name: folder / f"{name}.onnx" for name in record["files"]}
    for name, path in files.items():
        if not path.is_file() or sha256_file(path) != record["files"][name]:
            log.warning("cached %s does not match its record; rebuilding", path)
            return None
    return Built(folder, files, record)


def cached_build(folder: Path, force: bool, make: Callable[[Path], dict]) -> Built:
    """Return the valid build in ``folder`` or run ``make(folder)`` (which writes the ONNX files) under a lock."""
    with file_lock(folder.with_name(folder.name + ".lock")):
        if not force and (built := _read_valid(folder)):
            return built
        # From here the folder is incomplete until the new record lands: drop the old record first,
        # and the temporary files a killed build may have left.
        (folder / RECORD).unlink(missing_ok=True)
        remove_stale_temporaries(folder)
        started = time.perf_counter()
        try:
            record = make(folder)
            record["files"] = {name: sha256_file(folder / f"{name}.onnx") for name in record.pop("names")}
            record["versions"] = library_versions()
            record["build_seconds"] = round(time.perf_counter() - started, 2)
            atomic_write_json(folder / RECORD, record)
        except DiskFullError as exc:
            raise DiskFullError(f"{exc} The model cache is {home()}; set {HOME_ENV}=DIR to keep it on another "
                                "disk.") from None
        log.info("built %s in %.1fs", folder, record["build_seconds"])
        return Built(folder, {n: folder / f"{n}.onnx" for n in record["files"]}, record)


