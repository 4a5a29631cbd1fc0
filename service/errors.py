"""How every failure is answered: JSON ``{"error": {"code", "message"}}`` for the API, an HTML page for people.

Nothing a client sends may surface as a 500: bad input is a 4xx with a message that says what was wrong.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hoidap.index.errors import NoIndexError, QueryError

from . import pages
from .security import SECURITY_HEADERS

log = logging.getLogger("hoidap")


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The API's one error shape: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def phrase(status: int) -> str:
    """``404`` → ``Not Found``; "" for a status HTTP does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def status_code_name(status: int) -> str:
    """``404`` → ``not_found``: a stable, readable code for plain HTTP errors."""
    return phrase(status).lower().replace(" ", "_").replace("-", "_") or "http_error"


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QueryError)
    async def bad_query(request: Request, exc: QueryError):
        return error_response(422, "invalid_query", str(exc))

    @app.exception_handler(NoIndexError)
    async def no_index(request: Request, exc: NoIndexError):
        return error_response(503, "no_index", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])  # without the leading "body", "query", ...
        if first.get("type") == "json_invalid":
            message = f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'cannot parse it')})"
        else:
            message = f"{where}: {first.get('msg', 'invalid request')}".lstrip(": ")
        if is_api(request):
            return error_response(422, "invalid_request", message)
        return pages.error_page(request, 422, f"Địa chỉ có tham số không hợp lệ: {where or 'nội dung gửi'}.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if is_api(request) or exc.status_code == 405:
            return error_response(exc.status_code, status_code_name(exc.status_code), str(exc.detail), exc.headers)
        # Starlette's own details ("Not Found") are English: the page's heading already says it in Vietnamese
        return pages.error_page(request, exc.status_code, "" if exc.detail == phrase(exc.status_code) else str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        # Answered outside the middleware stack, so the security headers are added here. A full disk is the
        # operator's to fix and says so (507); anything else is a bug, logged with its traceback.
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            log.error("the disk is full (%s) on %s", exc.filename or exc.strerror, request.url.path)
            if is_api(request):
                return error_response(507, "disk_full", "the server's disk is full: free some space and retry",
                                      SECURITY_HEADERS)
            page = pages.error_page(request, 507, "Ổ đĩa của máy chủ đã đầy: người quản trị hãy giải phóng dung lượng "
                                                  "rồi thử lại. Tài liệu đã có trong chỉ mục vẫn tìm được như trước.")
        else:
            log.exception("unexpected error on %s", request.url.path)
            if is_api(request):
                return error_response(500, "internal_error", "internal error: see the server log", SECURITY_HEADERS)
            page = pages.error_page(request, 500, "Lỗi trong máy chủ: người quản trị xem chi tiết trong nhật ký.")
        page.headers.update(SECURITY_HEADERS)
        return page
