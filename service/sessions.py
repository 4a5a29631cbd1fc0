"""Signing in to the admin pages: a signed, HttpOnly, SameSite=Strict cookie that carries a CSRF token.

Any configured secret signs in: the admin password (``HOIDAP_ADMIN_PASSWORD``) or an API key. The cookie
holds a keyed fingerprint of that secret, never the secret, so changing the password or removing a key
ends the sessions it opened. Signing out ends the session on the server too: it is recorded in the data
dir's ``sessions.sqlite3``, which every worker reads, so the cookie replayed later signs nobody in.
With no secret configured nobody can sign in: uploads are switched off.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .security import is_key
from .settings import Settings

COOKIE = "hoidap_admin"
COOKIE_PATH = "/admin"  # the cookie is never sent to the search pages or the API (unless they need it)
MAX_AGE = 8 * 3600  # a working day
DISABLED = ("Tải tài liệu lên đang tắt: người quản trị hãy đặt HOIDAP_ADMIN_PASSWORD (hoặc HOIDAP_API_KEYS) "
            "rồi khởi động lại dịch vụ.")


ENDED = "sessions.sqlite3"  # sessions signed out before their cookie expired, in the data dir

log = logging.getLogger(__name__)


# Wrong passwords allowed per client address before it must wait: a few a minute, then fewer an hour.
FAILED_SIGN_INS = (parse("5/minute"), parse("20/hour"))


class SignInGuard:
    """Slows password guessing: past :data:`FAILED_SIGN_INS` wrong passwords from one address (the real one:
    ``HOIDAP_TRUSTED_PROXIES``), it is told to wait, and its passwords are not even checked meanwhile."""

    def __init__(self) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def wait(self, address: str) -> int:
        """Seconds ``address`` must wait before trying again (0: it may try now)."""
        over = [rate for rate in FAILED_SIGN_INS if not self.limiter.test(rate, address)]
        return max((max(1, int(self.limiter.get_window_stats(rate, address).reset_time - time.time()) + 1)
                    for rate in over), default=0)

    def failed(self, address: str) -> None:
        log.warning("wrong admin password from %s", address)
        for rate in FAILED_SIGN_INS:
            self.limiter.hit(rate, address)


@dataclass(frozen=True)
class Session:
    csrf: str  # random per sign-in: also what names the session when it is ended

    @property
    def id(self) -> str:
        return hashlib.sha256(self.csrf.encode()).hexdigest()


def cookie_path(settings: Settings) -> str:
    """Where the browser sends the session: /admin only, or the whole site when the pages need signing in."""
    return "/" if settings.pages_auth else COOKIE_PATH


def pages_access(request: Request) -> None:
    """With ``HOIDAP_PAGES_AUTH`` the search and document pages need the admin sign-in: a 401 page whose
    button signs in and comes back here."""
    if request.app.state.settings.pages_auth and current(request) is None:
        raise HTTPException(401, "Hãy đăng nhập để tìm kiếm trong tài liệu.")


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
    response.set_cookie(COOKIE, token, max_age=MAX_AGE, path=cookie_path(settings), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return True


def sign_out(request: Request, response: Response, session: Session) -> None:
    """End ``session`` for every worker, and delete its cookie from this browser."""
    now = time.time()
    try:
        path = _ended_path(request)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as db, db:
            db.execute("PRAGMA journal_mode=WAL")  # workers read it while one writes
            db.execute("CREATE TABLE IF NOT EXISTS ended (id TEXT PRIMARY KEY, until REAL NOT NULL)")
            db.execute("DELETE FROM ended WHERE until < ?", (now,))
            db.execute("INSERT OR REPLACE INTO ended VALUES (?, ?)", (session.id, now + MAX_AGE))
    except (sqlite3.Error, OSError) as exc:  # the cookie still goes; a replayed copy would work until it expires
        log.error("could not record the end of a session: %s", exc)
    response.delete_cookie(COOKIE, path=cookie_path(request.app.state.settings), httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def _ended_path(request: Request) -> Path:
    """The data dir's record of ended sessions, written by :func:`sign_out`."""
    return Path(request.app.state.data_dir) / ENDED


def _was_ended(request: Request, session: Session) -> bool:
    """Read only: a session nobody has ended leaves no record to look in."""
    path = _ended_path(request)
    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        return db.execute("SELECT 1 FROM ended WHERE id = ?", (session.id,)).fetchone() is not None


def current(request: Request) -> Session | None:
    """The signed-in session, or None when the cookie is missing, forged, expired or its secret is gone."""
    settings: Settings = request.app.state.settings
    try:
        data = _serializer(settings).loads(request.cookies.get(COOKIE, ""), max_age=MAX_AGE)
    except BadSignature:
        return None
    if not is_key(data.get("fingerprint"), tuple(_fingerprint(settings, s) for s in _secrets(settings))):
        return None
    session = Session(csrf=data["csrf"])
    return None if _was_ended(request, session) else session


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
