"""Find a model's weights file on this machine and verify its sha256 before anything reads it."""

from __future__ import annotations

import importlib.metadata
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..cache import home, sha256_file
from ..errors import ChecksumError, WeightsNotFoundError
from .registry import ModelSpec, WeightFormat, WeightSource

log = logging.getLogger(__name__)

_SUFFIX_FORMATS = {".pb": WeightFormat.TF_GRAPH, ".pt": WeightFormat.TORCH_STATE, ".pth": WeightFormat.TORCH_STATE}


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


def _verify(path: Path, spec: ModelSpec, source: WeightSource | None) -> ResolvedWeights:
    digest = sha256_file(path)
    pinned = {s.sha256: s for s in spec.sources if s.sha256}
    if digest in pinned:
        return ResolvedWeights(path, pinned[digest].format, digest, pinned[digest])
    if source is not None and source.sha256:
        raise ChecksumError(
            f"{path}: sha256 {digest} does not match the published {source.sha256} of {source.filename} "
            f"({spec.name}). The file is corrupt or not what its name says; replace it with the original."
        )
    fmt = source.format if source else _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise WeightsNotFoundError(
            f"{path}: unknown weights format {path.suffix!r}; use a frozen graph (.pb) or a state dict (.pt)."
        )
    log.warning("%s has no published digest to check against; using it with sha256 %s", path, digest)
    return ResolvedWeights(path, fmt, digest, source)


def _missing_message(spec: ModelSpec) -> str:
    files = "; ".join(f"{s.filename} ({s.format.value})" for s in spec.sources if s.user_supplied)
    return (
        f"Model {spec.name!r} ({spec.tag}) needs a weights file that is not installed. "
        f"Put one of: {files} in {user_weights_dir()}, or pass --weights PATH, "
        f"or set {spec.env_var}=PATH."
    )


def resolve_weights(spec: ModelSpec, path: str | os.PathLike | None = None) -> ResolvedWeights:
    """Locate and verify the weights of ``spec``: explicit path, env var, installed package, user dir."""
    explicit = path or os.environ.get(spec.env_var or "")
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsNotFoundError(f"{p}: weights file not found (model {spec.name!r}). {_missing_message(spec)}")
        by_name = next((s for s in spec.sources if s.filename.rsplit("/", 1)[-1] == p.name), None)
        return _verify(p, spec, by_name)
    for source in spec.sources:
        candidate = package_file(source.package, source.filename) if source.package else (
            user_weights_dir() / source.filename)
        if candidate is not None and candidate.is_file():
            return _verify(candidate, spec, source)
    raise WeightsNotFoundError(_missing_message(spec))
