"""serve and keys: the HTTP service and its API keys."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


def cmd_serve(args: argparse.Namespace) -> int:
    from ..runtime.base import usable_cpus
    from ..serve.batcher import BatchLimits
    from ..serve.config import ENV, RequestLimits, ServeConfig, default_gallery
    from .common import take_gallery_model

    take_gallery_model(args, args.gallery or default_gallery())
    config = ServeConfig(
        host=args.host, port=args.port, workers=args.workers, gallery=args.gallery, api_keys=args.api_keys,
        insecure=args.insecure, model=args.model, precision=args.precision, backend=args.backend,
        detector_backend=args.detector_backend, weights=args.weights,
        threads=args.threads or max(1, usable_cpus() // args.workers), access_log=not args.quiet,
        batch=BatchLimits(args.max_batch, args.max_wait_ms, args.max_queue),
        limits=RequestLimits(args.max_request_mb << 20, args.max_images, args.max_pixels, args.timeout))
    # The settings are checked (a network host without keys, say) before the models' imports take seconds.
    import uvicorn

    from ..serve.access_log import log_requests
    from ..serve.app import create_app

    threads = f"{config.threads} thread{'s' if config.threads != 1 else ''}"
    layout = f"{config.workers} workers of {threads} each" if config.workers > 1 else f"1 worker of {threads}"
    print(f"facenet-offline serve: {config.model} ({config.precision}) on http://{config.host}:{config.port} "
          f"with {layout} (web page at /, API docs at /docs); gallery {config.gallery_path}; "
          + (f"keys from {config.api_keys}" if config.api_keys else "no API keys (open to this machine only)"
             if not config.insecure else "no API keys (open to the network: --insecure)"), flush=True)
    common = dict(host=config.host, port=config.port, access_log=False, timeout_graceful_shutdown=30,
                  log_level="warning")
    if config.workers == 1:
        log_requests(config.access_log)
        uvicorn.run(create_app(config), **common)
    else:  # each worker process builds the app from the environment: its own models, batcher and metrics
        os.environ[ENV] = config.to_env()
        with shared_metrics():
            uvicorn.run("facenet_offline.serve.app:factory", factory=True, workers=config.workers, **common)
    return 0


@contextlib.contextmanager
def shared_metrics() -> Iterator[None]:
    """A fresh folder for the workers' metrics (prometheus_client's multiprocess mode), removed at the end;
    one the user named in PROMETHEUS_MULTIPROC_DIR is used as it is."""
    from ..serve.metrics import MULTIPROCESS_ENV

    if os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="facenet-offline-metrics-") as folder:
        os.environ[MULTIPROCESS_ENV] = folder
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_ENV]


def cmd_keys(args: argparse.Namespace) -> int:
    from ..serve import keys

    if args.action == "add":
        key = keys.add_key(args.file, args.name, args.scope)
        print(key)  # alone on stdout, so that KEY=$(facenet-offline keys add ...) takes just the key
        print(f"{args.name} ({args.scope}): kept only as its sha256 in {args.file}; send it in the {keys.HEADER} "
              "header. It is not shown again.", file=sys.stderr)
    elif args.action == "list":
        for key in keys.load_keys(args.file):
            print(f"{key.name}: {key.scope.value}")
    else:
        keys.remove_key(args.file, args.name)
        print(f"removed {args.name} from {args.file}")
    return 0
