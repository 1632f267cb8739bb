"""API keys of the service: made here, shown once, stored only as their sha256.

A key is 32 random bytes (URL-safe text), so a plain sha256 of it is as good as a slow password
hash: nothing shorter than the key itself can be guessed from it. Two scopes: ``read`` (detect,
embed, verify, identify, search, and reading the gallery) and ``admin`` (all of that, and changing
the gallery). The keys file is JSON: ``{"keys": [{"name": ..., "scope": ..., "sha256": ...}]}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from ..cache import atomic_write_json
from ..choices import Choice
from ..errors import FacenetOfflineError

HEADER = "X-API-Key"


class Scope(Choice):
    READ = "read"
    ADMIN = "admin"


class KeysError(FacenetOfflineError):
    pass


@dataclass(frozen=True)
class ApiKey:
    name: str
    scope: Scope
    sha256: str

    def allows(self, needed: Scope) -> bool:
        return self.scope is Scope.ADMIN or needed is Scope.READ


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_keys(path: str | Path) -> list[ApiKey]:
    """The keys of ``path``, or a KeysError naming what is wrong with the file."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text())["keys"]
        keys = [ApiKey(str(e["name"]), Scope.parse(e["scope"]), str(e["sha256"])) for e in entries]
    except FileNotFoundError:
        raise KeysError(f"{path}: no keys file; make one with `facenet-offline keys add --file {path}`.") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise KeysError(f"{path}: not a keys file ({exc}); it holds {{\"keys\": [{{\"name\", \"scope\", "
                        "\"sha256\"}]}}.") from None
    if not keys:
        raise KeysError(f"{path}: holds no keys; add one with `facenet-offline keys add --file {path}`.")
    return keys


def add_key(path: str | Path, name: str, scope: Scope | str) -> str:
    """Make a key, store its digest in ``path`` (created if missing) and return the key: it is never shown again."""
    path = Path(path)
    keys = load_keys(path) if path.exists() else []
    if any(k.name == name for k in keys):
        raise KeysError(f"{path}: a key named {name!r} exists; remove it first or choose another name.")
    key = secrets.token_urlsafe(32)
    keys.append(ApiKey(name, Scope.parse(scope), digest(key)))
    _save(path, keys)
    return key


def remove_key(path: str | Path, name: str) -> None:
    keys = load_keys(path)
    if not any(k.name == name for k in keys):
        raise KeysError(f"{path}: no key named {name!r}; `facenet-offline keys list --file {path}` shows them.")
    _save(Path(path), [k for k in keys if k.name != name])


def _save(path: Path, keys: list[ApiKey]) -> None:
    atomic_write_json(path, {"keys": [dict(asdict(k), scope=k.scope.value) for k in keys]})
    path.chmod(0o600)


def match(keys: list[ApiKey], presented: str | None) -> ApiKey | None:
    """The key whose digest is the presented key's, compared in constant time."""
    if not presented:
        return None
    wanted = digest(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(key.sha256, wanted):
            found = key
    return found
