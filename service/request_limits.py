"""How much one client may ask: requests per period (per API key, else per address) and bytes per request.

Both are checked before any work is done, so a flood costs the server almost nothing. Health,
metrics and static files are not limited: monitoring and page assets must keep working.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Mapping

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import pages
from .errors import error_response
from .security import bearer_token, is_key

MAX_BODY_BYTES = 8 * 2**20  # a 2-million-character document, JSON-escaped, fits
UNLIMITED_PATHS = {"/api/v1/health", "/metrics", "/docs"}
UNLIMITED_PREFIXES = ("/static/", "/docs/")
SEARCH_PATHS = frozenset({"/api/v1/search", "/search", "/mcp"})  # shed first when too many requests are in progress
BUSY = {"Retry-After": "1"}


class RequestLimits:
    """ASGI middleware answering 503 (with ``Retry-After``) to a search when more than ``max_queue`` requests are
    in progress, 413 for oversized bodies, 408 for a body that stalls ``body_timeout`` seconds (None: no limit),
    and 429 (with ``Retry-After``) past the rate.

    A search past ``max_queue`` is answered here, before its body is read or anything else awaited: on a busy
    server every await waits its turn for the event loop (and the GIL), so a 503 decided later is no longer
    fast. ``body_limits`` gives paths that take more than :data:`MAX_BODY_BYTES` (file uploads) their own limit.
    """

    def __init__(self, app: ASGIApp, rate: RateLimitItem | None, keys: tuple[str, ...],
                 body_limits: Mapping[str, int] | None = None, body_timeout: float | None = None,
                 in_progress: Callable[[], int] = lambda: 0, max_queue: int = 0) -> None:
        self.app = app
        self.rate = rate
        self.keys = keys
        self.body_limits = dict(body_limits or {})
        self.body_timeout = body_timeout
        self.in_progress = in_progress
        self.max_queue = max_queue
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.max_queue and path in SEARCH_PATHS and (waiting := self.in_progress()) > self.max_queue:
            await _busy(waiting, scope)(scope, receive, send)
            return
        max_bytes = self.body_limits.get(path, MAX_BODY_BYTES)
        if _declared_length(scope) > max_bytes:  # refused before reading a byte of it
            await _too_large(max_bytes, scope)(scope, receive, send)
            return
        if self.rate is not None and path not in UNLIMITED_PATHS and not path.startswith(UNLIMITED_PREFIXES):
            client = self._client(scope)
            if not self.limiter.hit(self.rate, client):
                reset = self.limiter.get_window_stats(self.rate, client).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                response = error_response(429, "too_many_requests",
                                          f"over the limit of {self.rate}: retry in {retry} s",
                                          {"Retry-After": str(retry)})
                await response(scope, receive, send)
                return
        await _with_body_limit(self.app, scope, receive, send, max_bytes, self.body_timeout)

    def _client(self, scope: Scope) -> str:
        """A valid key's own budget (hashed: raw keys are never kept); otherwise the client address.

        An unknown key counts against the address, so rotating made-up keys buys nothing.
        """
        token = bearer_token(scope)
        if is_key(token, self.keys):
            return "key:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
        return "address:" + (scope["client"][0] if scope.get("client") else "unknown")


async def _with_body_limit(app: ASGIApp, scope: Scope, receive: Receive, send: Send, max_bytes: int,
                           timeout: float | None) -> None:
    """``app`` reading at most ``max_bytes`` of body, however it is sent: a chunked body declares no length,
    so the bytes are counted as they arrive. Past the limit the client is answered 413 at once, and a body
    that stalls for ``timeout`` seconds 408; the app is then told the client left: nothing more is read or
    waited for, so memory, disk and connections stay bounded, and whatever the app does about it (an error
    of its own) goes nowhere."""
    received = 0
    started = refused = body_done = False

    async def refuse(response: Response) -> Message:
        nonlocal refused
        if not started:
            await response(scope, receive, send)
        refused = True
        return {"type": "http.disconnect"}

    async def counted_receive() -> Message:
        nonlocal received, body_done
        if refused:
            return {"type": "http.disconnect"}
        if body_done:  # after the body, receive only waits for the client to leave: no deadline
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except asyncio.TimeoutError:
            return await refuse(error_response(408, "request_timeout",
                                               f"no part of the request body came for {timeout:g} s"))
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            body_done = not message.get("more_body", False)
            if received > max_bytes:
                return await refuse(_too_large(max_bytes, scope))
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if refused:
            return
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, counted_receive, guarded_send)
    except Exception:
        if not refused:
            raise


def _too_large(max_bytes: int, scope: Scope) -> Response:
    """JSON for the API; a page in Vietnamese for a browser's form (an upload of too many megabytes)."""
    if scope["path"].startswith(("/api/", "/mcp")):
        return error_response(413, "content_too_large", f"the request body is over {max_bytes / 2**20:g} MB")
    return pages.error_page(Request(scope), 413, f"Dữ liệu gửi lên vượt quá {max_bytes / 2**20:g} MB: hãy gửi ít tệp "
                                                 "hơn hoặc tệp nhỏ hơn mỗi lần.")


def _busy(waiting: int, scope: Scope) -> Response:
    """More requests are in progress than the server can start soon (``HOIDAP_MAX_QUEUE``): a fast 503 with
    ``Retry-After`` rather than an answer that comes later and later for everyone."""
    if scope["path"] == "/search":
        page = pages.error_page(Request(scope), 503, "Máy chủ đang bận: hãy thử lại sau giây lát.")
        page.headers.update(BUSY)
        return page
    return error_response(503, "service_unavailable",
                          f"the server is busy ({waiting} requests in progress): retry in 1 s", BUSY)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
