"""What a service is started with: where it listens, its models, its gallery, its keys and its limits."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..cache import home
from ..weights import DEFAULT_MODEL
from .batcher import BatchLimits

ENV = "FACENET_OFFLINE_SERVE_CONFIG"  # how uvicorn's worker processes get the config


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on what one request may send."""

    max_request_bytes: int = 32 << 20  # the whole body
    max_images: int = 32  # images in one request
    max_pixels: int = 50_000_000  # pixels of one image, read from its header before it is decoded
    timeout_s: float = 60.0  # from a request's images entering the batcher to their results

    def __post_init__(self):
        if min(self.max_request_bytes, self.max_images, self.max_pixels) < 1 or self.timeout_s <= 0:
            raise ValueError(f"request limits must be positive: {self}")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # processes, each with its own models and batcher
    gallery: str | None = None  # default: $FACENET_OFFLINE_HOME/gallery
    api_keys: str | None = None
    insecure: bool = False  # allow a non-loopback host without keys
    model: str = DEFAULT_MODEL
    precision: str = "fp32"
    backend: str = "onnxruntime"
    detector_backend: str = "openvino"
    weights: str | None = None
    threads: int | None = None  # per worker; default: the usable cores shared among the workers
    access_log: bool = True  # one JSON line per request on stderr
    batch: BatchLimits = BatchLimits()
    limits: RequestLimits = RequestLimits()

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: must be at least 1")
        if not self.api_keys and not self.insecure and not is_loopback(self.host):
            raise ValueError(f"host={self.host} is reachable from other machines and no keys are set: give "
                             "api_keys=FILE (facenet-offline keys add), or insecure=True to serve it open.")

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        data = json.loads(os.environ[ENV])
        data["batch"], data["limits"] = BatchLimits(**data["batch"]), RequestLimits(**data["limits"])
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    @property
    def gallery_path(self) -> Path:
        return Path(self.gallery) if self.gallery else default_gallery()


def default_gallery() -> Path:
    """The service's gallery when none is named."""
    return home() / "gallery"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
