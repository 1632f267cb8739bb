"""The access log: one JSON line per request on stderr (no headers, so no keys), or none with --quiet.

Each worker process sets it up for itself: ``serve --workers N`` starts workers that inherit no handlers.
"""

from __future__ import annotations

import json
import logging
import sys

access = logging.getLogger("facenet_offline.serve.access")


def log_requests(enabled: bool) -> None:
    """Write the access log to stderr, or keep it silent."""
    access.setLevel(logging.INFO)
    access.propagate = False
    if enabled and not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)


def log_request(request_id: str, method: str, route: str, status: int, seconds: float, client: str | None) -> None:
    access.info(json.dumps({"request": request_id, "method": method, "route": route, "status": status,
                            "ms": round(seconds * 1000, 1), "client": client}))
