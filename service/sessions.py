"""Signing in to the admin pages: a signed, HttpOnly, SameSite=Strict cookie that carries a CSRF token.

Any configured secret signs in: the admin password (``HOIDAP_ADMIN_PASSWORD``) or an API key. The cookie
holds a keyed fingerprint of that secret, never the secret, so changing the password or removing a key
ends the sessions it opened. With no secret configured nobody can sign in: uploads are switched off.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .security import is_key
from .settings import Settings

COOKIE = "hoidap_admin"
COOKIE_PATH = "/admin"  # the cookie is never sent to the search pages or the API
MAX_AGE = 8 * 3600  # a working day
DISABLED = ("Tải tài liệu lên đang tắt: người quản trị hãy đặt HOIDAP_ADMIN_PASSWORD (hoặc HOIDAP_API_KEYS) "
            "rồi khởi động lại dịch vụ.")


@dataclass(frozen=True)
class Session:
    csrf: str


def enabled(settings: Settings) -> bool:
    return bool(_secrets(settings))


def _secrets(settings: Settings) -> tuple[str, ...]:
    return ((settings.admin_password,) if settings.admin_password else ()) + settings.api_keys


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="hoidap-admin-session")


def _fingerprint(settings: Settings, secret: str) -> str:
    return hmac.new(settings.secret_key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def sign_in(request: Request, response: Response, password: str) -> bool:
    """Set the session cookie on ``response`` if ``password`` is a configured secret (constant-time check)."""
    settings: Settings = request.app.state.settings
    if not is_key(password, _secrets(settings)):
        return False
    token = _serializer(settings).dumps({"csrf": secrets.token_urlsafe(32),
                                         "fingerprint": _fingerprint(settings, password)})
    response.set_cookie(COOKIE, token, max_age=MAX_AGE, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return True


def sign_out(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def current(request: Request) -> Session | None:
    """The signed-in session, or None when the cookie is missing, forged, expired or its secret is gone."""
    settings: Settings = request.app.state.settings
    try:
        data = _serializer(settings).loads(request.cookies.get(COOKIE, ""), max_age=MAX_AGE)
    except BadSignature:
        return None
    if not is_key(data.get("fingerprint"), tuple(_fingerprint(settings, s) for s in _secrets(settings))):
        return None
    return Session(csrf=data["csrf"])


def signed_in(request: Request) -> Session:
    """The session of a form post, checked from its headers alone so a stranger's body is never read."""
    if not enabled(request.app.state.settings):
        raise HTTPException(403, DISABLED)
    session = current(request)
    if session is None:
        raise HTTPException(401, "Bạn chưa đăng nhập hoặc phiên đăng nhập đã hết hạn: hãy đăng nhập lại.")
    return session


def check_csrf(session: Session, token: object) -> None:
    """A form must carry its session's token: another site cannot read it, so cannot forge the post."""
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise HTTPException(403, "Biểu mẫu đã cũ hoặc không hợp lệ (thiếu mã xác nhận): hãy tải lại trang rồi thử lại.")
