"""ASGI middleware that bounds a request's body: over the limit, a 413 before the app reads the rest."""

from __future__ import annotations

from .answers import error_response


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before the app reads the rest of it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send) -> None:
        refusal = error_response(413, "upload_too_large", f"the request is over {self.max_bytes:,} bytes; send "
                                                          "fewer or smaller images per request.")
        await refusal(scope, receive, send)


class _TooLarge(Exception):
    pass
