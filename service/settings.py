"""The service's operating settings, read once from the environment when the app is built.

A setting that cannot be understood stops the start with one line that names it: a typo in a key
file or a rate limit must not leave a server running open or unlimited.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from limits import RateLimitItem, parse

from hoidap.index.config import ConfigError, positive

DEFAULT_BODY_TIMEOUT = 30.0  # seconds a request body may stall before it is answered 408
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds a request's headers may take, from its first byte (header_timeout.py)
# Requests in progress past which a search is answered 503 at once. bench/load.py, 64 clients on 2 cores: 8, 16
# and 32 answered alike (190, 194 and 178 a second) but the answers' p99 grew with the bound (379, 511, 882 ms);
# under 16, the 16 clients the issue names would be shed too.
DEFAULT_MAX_QUEUE = 16
DEFAULT_RELOAD_INTERVAL = 1.0
DEFAULT_MAX_UPLOAD_MB = 20.0
MIN_SECRET_KEY_CHARS = 32
_OFF = {"", "0", "off", "none", "false"}


def new_secret_key() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Settings:
    """What the service enforces. No rate limit by default, as Elasticsearch, Meilisearch and Typesense ship:
    behind a proxy every client shares one address, and a chatbot asks many questions a second. Overload is
    shed instead (``max_queue``); a limit per key or address is for a public deployment."""

    api_keys: tuple[str, ...] = ()
    rate_limit: RateLimitItem | None = None  # None: unlimited
    cors_origins: tuple[str, ...] = ()
    reload_interval: float = DEFAULT_RELOAD_INTERVAL  # seconds; 0 turns the poller off
    log_queries: bool = False
    admin_password: str = field(default="", repr=False)  # "": only API keys sign in to the admin pages
    # Signs the admin session cookie; a random one ends every session at restart and differs per worker.
    secret_key: str = field(default_factory=new_secret_key, repr=False)
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB  # per uploaded file
    max_queue: int = DEFAULT_MAX_QUEUE  # requests in progress past which searches are answered 503
    body_timeout: float = DEFAULT_BODY_TIMEOUT  # a slow client's stalled body is not waited for longer
    pages_auth: bool = False  # the search and document pages need the /admin sign-in too (staff sign in once)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        """``HOIDAP_API_KEYS``, ``HOIDAP_API_KEYS_FILE``, ``HOIDAP_RATE_LIMIT``, ``HOIDAP_CORS_ORIGINS``,
        ``HOIDAP_RELOAD_INTERVAL``, ``HOIDAP_LOG_QUERIES``, ``HOIDAP_ADMIN_PASSWORD``, ``HOIDAP_SECRET_KEY``,
        ``HOIDAP_MAX_UPLOAD_MB``, ``HOIDAP_MAX_QUEUE``, ``HOIDAP_BODY_TIMEOUT`` and ``HOIDAP_PAGES_AUTH`` (``HOIDAP_HEADER_TIMEOUT`` is uvicorn's part:
        :mod:`hoidap.service.header_timeout`)."""
        keys = _split(env.get("HOIDAP_API_KEYS", ""))
        if key_file := env.get("HOIDAP_API_KEYS_FILE"):
            keys += _read_keys(Path(key_file))
        return cls(api_keys=tuple(dict.fromkeys(keys)), rate_limit=_rate_limit(env.get("HOIDAP_RATE_LIMIT")),
                   cors_origins=tuple(_split(env.get("HOIDAP_CORS_ORIGINS", ""))),
                   reload_interval=_interval(env.get("HOIDAP_RELOAD_INTERVAL")),
                   log_queries=_switch(env.get("HOIDAP_LOG_QUERIES")),
                   admin_password=env.get("HOIDAP_ADMIN_PASSWORD", "").strip(),
                   secret_key=_secret_key(env.get("HOIDAP_SECRET_KEY")),
                   max_upload_mb=positive(env.get("HOIDAP_MAX_UPLOAD_MB"), "HOIDAP_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB),
                   max_queue=positive(env.get("HOIDAP_MAX_QUEUE"), "HOIDAP_MAX_QUEUE", DEFAULT_MAX_QUEUE, int),
                   body_timeout=positive(env.get("HOIDAP_BODY_TIMEOUT"), "HOIDAP_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT),
                   pages_auth=_switch(env.get("HOIDAP_PAGES_AUTH")))


def _switch(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _read_keys(path: Path) -> list[str]:
    """One key a line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"HOIDAP_API_KEYS_FILE: cannot read {path} ({exc})") from exc
    return [key for line in lines if (key := line.split("#", 1)[0].strip())]


def _rate_limit(value: str | None) -> RateLimitItem | None:
    if value is None or value.strip().lower() in _OFF:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise ConfigError(f"HOIDAP_RATE_LIMIT: {value!r} is not a rate such as '120/minute' (or 'off')") from exc


def _interval(value: str | None) -> float:
    if value is None:
        return DEFAULT_RELOAD_INTERVAL
    if value.strip().lower() in _OFF:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"HOIDAP_RELOAD_INTERVAL: {value!r} is not a number of seconds (or 'off')")
    return seconds


def _secret_key(value: str | None) -> str:
    """Random when unset; a short key would make session cookies forgeable by guessing."""
    if value is None or not value.strip():
        return new_secret_key()
    if len(value.strip()) < MIN_SECRET_KEY_CHARS:
        raise ConfigError(f"HOIDAP_SECRET_KEY: use at least {MIN_SECRET_KEY_CHARS} random characters, "
                          "e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return value.strip()
