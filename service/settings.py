"""The service's operating settings, read once from the environment when the app is built.

A setting that cannot be understood stops the start with one line that names it: a typo in a key
file or a rate limit must not leave a server running open or unlimited.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from limits import RateLimitItem, parse

from index.errors import HoidapError

DEFAULT_RATE_LIMIT = "600/minute"
DEFAULT_RELOAD_INTERVAL = 1.0
_OFF = {"", "0", "off", "none", "false"}


class ConfigError(HoidapError):
    """An environment variable of the service has a value it cannot use."""


@dataclass(frozen=True)
class Settings:
    """What the service enforces. The field defaults are the most permissive; :meth:`from_env` applies the
    service's defaults (a rate limit of 600 requests a minute)."""

    api_keys: tuple[str, ...] = ()
    rate_limit: RateLimitItem | None = None  # None: unlimited
    cors_origins: tuple[str, ...] = ()
    reload_interval: float = DEFAULT_RELOAD_INTERVAL  # seconds; 0 turns the poller off
    log_queries: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        """``HOIDAP_API_KEYS``, ``HOIDAP_API_KEYS_FILE``, ``HOIDAP_RATE_LIMIT``, ``HOIDAP_CORS_ORIGINS``,
        ``HOIDAP_RELOAD_INTERVAL`` and ``HOIDAP_LOG_QUERIES``."""
        keys = _split(env.get("HOIDAP_API_KEYS", ""))
        if key_file := env.get("HOIDAP_API_KEYS_FILE"):
            keys += _read_keys(Path(key_file))
        return cls(api_keys=tuple(dict.fromkeys(keys)), rate_limit=_rate_limit(env.get("HOIDAP_RATE_LIMIT")),
                   cors_origins=tuple(_split(env.get("HOIDAP_CORS_ORIGINS", ""))),
                   reload_interval=_interval(env.get("HOIDAP_RELOAD_INTERVAL")),
                   log_queries=env.get("HOIDAP_LOG_QUERIES", "").strip().lower() in {"1", "true", "yes", "on"})


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
    if value is None:
        return parse(DEFAULT_RATE_LIMIT)
    if value.strip().lower() in _OFF:
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
