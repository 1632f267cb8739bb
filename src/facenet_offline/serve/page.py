"""The service's web page: its files under ``web/``, served at ``/`` and ``/ui`` with headers that allow
nothing but them (no inline script or style, nothing from elsewhere; photos are shown from blob: URLs)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).parent / "web"
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; object-src 'none'; "
                                           "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class PageFiles(StaticFiles):
    """The page's script and style, with the page's security headers."""

    async def get_response(self, path: str, scope):
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def mount_page(app: FastAPI) -> None:
    """The page at ``/`` (outside the API's description) and its files at ``/ui``."""

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB / "index.html", headers=PAGE_HEADERS)

    app.mount("/ui", PageFiles(directory=WEB), name="ui")
