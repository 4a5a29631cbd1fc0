"""One structured line per request on the ``hoidap.access`` logger, and the request metrics.

Questions can be personal, so the query text is logged only when ``HOIDAP_LOG_QUERIES=1``; search
routes put it in ``request.state.query`` for this purpose.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

log = logging.getLogger("hoidap.access")
UNMATCHED = "<unmatched>"  # the route label of a 404: raw paths would let clients create labels


class AccessLog:
    """ASGI middleware: times each request, then logs it and counts it, whatever happened inside."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log_queries: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_queries = log_queries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped
        self.metrics.in_progress += 1

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.in_progress -= 1
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", UNMATCHED)
            self.metrics.observe(route, scope["method"], status, seconds)
            line = {"method": scope["method"], "route": route, "status": status,
                    "duration_ms": round(seconds * 1000, 2), "client": (scope.get("client") or ("-",))[0]}
            query = scope.get("state", {}).get("query")
            if self.log_queries and query is not None:
                line["query"] = query
            log.info(json.dumps(line, ensure_ascii=False))
