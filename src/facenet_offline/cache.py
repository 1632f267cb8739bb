"""The build cache: where built models live, and the atomic-write and locking rules for it.

Readers never see a half-written file: everything is written to a temporary name in the same
folder and renamed into place. Concurrent builders of the same artefact take a file lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import DiskFullError

HOME_ENV = "FACENET_OFFLINE_HOME"


def home() -> Path:
    """Cache root: ``$FACENET_OFFLINE_HOME``, else the user's cache dir."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facenet-offline"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def options_key(options: dict) -> str:
    """Short stable digest of a JSON-serialisable dict of build options."""
    text = json.dumps(options, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "", on_full: str = "free space there and run it again"
                ) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    A full disk (or quota) becomes a DiskFullError naming the folder and ``on_full``: what to do.
    """
    target = Path(target)
    tmp_path = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.errno in FULL:
            raise DiskFullError(f"{target.parent}: no space left on the device (writing {target.name}); "
                                f"{on_full}.") from None
        raise
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def save_png(fig, target: str | os.PathLike) -> None:
    """Write a matplotlib figure to ``target`` as PNG, whole or not at all, and release it."""
    import matplotlib.pyplot as plt  # only the reports that draw need it

    with atomic_path(target, ".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporary files ``atomic_path`` leaves when its process is killed; return how many.

    Only safe while holding the lock of whatever writes into ``folder``.
    """
    folder = Path(folder)
    stale = list(folder.glob(".*.tmp")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(target: str | os.PathLike, obj) -> None:
    atomic_write_bytes(target, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock held for the block (released by the OS if the process dies)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
