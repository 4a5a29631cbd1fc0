"""uvicorn's HTTP protocol with a deadline for each request's headers.

uvicorn waits for headers for ever: a client that sends them a byte at a time (or never finishes them)
holds its connection as long as it likes, and a few hundred such clients hold every connection there is.
Here the headers of a request must all arrive within ``HOIDAP_HEADER_TIMEOUT`` seconds (10) of its first
byte, or of the connection when nothing comes; past that the client is answered 408 and disconnected,
as nginx's ``client_header_timeout`` does. The body has its own deadline (``HOIDAP_BODY_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import functools
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hoidap.index.config import positive

from .settings import DEFAULT_HEADER_TIMEOUT

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@functools.cache
def header_timeout() -> float:
    """``HOIDAP_HEADER_TIMEOUT``, read once (``hoidap serve`` has already checked it)."""
    return positive(os.environ.get("HOIDAP_HEADER_TIMEOUT"), "HOIDAP_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT)


class HeaderDeadline(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that closes a connection whose request headers are too slow to come."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a new request on a kept-alive connection: its headers get the whole time again

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(header_timeout(), self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        """No request is being answered (its headers never completed): nothing else is written to it."""
        if not self.transport.is_closing():
            self.transport.write(TIMED_OUT)
            self.transport.close()
