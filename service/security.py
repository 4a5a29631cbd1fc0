"""Who may call what, and what every response tells the browser.

Reading is open unless API keys are configured; writing and administration always need a key, so
a server started without keys can never be changed through its API.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

bearer = HTTPBearer(auto_error=False, description="an API key from HOIDAP_API_KEYS or HOIDAP_API_KEYS_FILE")


def is_key(token: str | None, keys: tuple[str, ...]) -> bool:
    """Whether ``token`` is one of ``keys``, compared in constant time (every key is compared)."""
    if not token:
        return False
    given = token.encode("utf-8")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode("utf-8"))
    return found


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def key_sender(request: Request) -> str | None:
    """Who sent a request, as feedback and the question log keep it: a fingerprint of its API key when keys
    are set (never the key itself), else nobody known."""
    token = bearer_token(request.scope)
    if not token or not request.app.state.settings.api_keys:
        return None
    return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _check_key(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    if not is_key(credentials.credentials if credentials else None, request.app.state.settings.api_keys):
        raise HTTPException(401, "a valid API key is required: send `Authorization: Bearer <key>`",
                            headers={"WWW-Authenticate": "Bearer"})


async def read_access(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
    """Reading needs a key only when keys are configured."""
    if request.app.state.settings.api_keys:
        _check_key(request, credentials)


async def write_access(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
    """Writing and administration always need a key; with none configured they are switched off."""
    if not request.app.state.settings.api_keys:
        raise HTTPException(403, "changing the index through the API is switched off: "
                                 "configure HOIDAP_API_KEYS or HOIDAP_API_KEYS_FILE to allow it")
    _check_key(request, credentials)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, error pages and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)

