"""Asking a running Hỏi Đáp server through its JSON API, for `hoidap ask --server URL`.

Nothing of the index package is loaded: the server already holds the model and the index, so a
question costs one HTTP request. The standard library's ``urllib`` is used rather than ``httpx``
because importing httpx alone costs about a third of the command's time budget (0.3 s).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pydantic import ValidationError

from hoidap.index.errors import HoidapError, QueryError
from hoidap.index.results import SearchResponse

TIMEOUT_SECONDS = 30


def search(server: str, body: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
    """``POST /api/v1/search`` on ``server``; the API's JSON answer, or its error as a typed one.

    A 422 (an empty or over-long question, a bad filter) is the caller's mistake: :class:`QueryError`,
    as the local search raises it. Anything else (no server, a wrong key, a 5xx) is :class:`HoidapError`.
    """
    url = server.rstrip("/") + "/api/v1/search"
    headers = {"content-type": "application/json", "accept": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, json.dumps(body).encode("utf-8"), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        message = _error_message(exc)
        if exc.code == 422:
            raise QueryError(message) from exc
        raise HoidapError(f"{server} answered {exc.code}: {message}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HoidapError(f"cannot ask {server}: {reason}; is `hoidap serve` running there?") from exc


def response(server: str, answer: dict[str, Any]) -> SearchResponse:
    """The server's answer as the local search would give it; a server of another version says so."""
    try:
        return SearchResponse.model_validate(answer)
    except ValidationError as exc:
        raise HoidapError(f"{server} answered in a form this hoidap cannot read ({exc.error_count()} fields differ): "
                          "is it another version of Hỏi Đáp?") from exc


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The ``{"error": {"message"}}`` the API sends, else the HTTP reason."""
    try:
        return str(json.loads(exc.read())["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(exc.reason)
