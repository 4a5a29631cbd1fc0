"""Settings from the environment (``HOIDAP_*``), read one way for the index and the service alike."""

from __future__ import annotations

import math

from .errors import HoidapError


class ConfigError(HoidapError):
    """An environment variable has a value that cannot be used."""


def positive(value: str | None, name: str, default: float, kind: type = float) -> float:
    """A positive, finite ``kind`` (int or float) from ``value``; ``default`` when unset."""
    if value is None or not value.strip():
        return default
    try:
        number = kind(value)
    except ValueError:
        number = 0
    if not 0 < number < math.inf:
        raise ConfigError(f"{name}: {value!r} is not a positive {'whole ' * (kind is int)}number")
    return number
