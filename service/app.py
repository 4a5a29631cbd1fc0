"""The web app: the search page for staff and the JSON API for chatbots, over one shared engine.

The model and the index are loaded once at start-up. Without an index the app still starts: pages
say what to do and the API answers 503, so a server never crash-loops on a missing or damaged index.
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.errors import HoidapError, NoIndexError, QueryError
from index.search import Engine

from . import api, pages

log = logging.getLogger("hoidap")
STATIC_DIR = Path(__file__).resolve().parent.parent / "templates" / "static"


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The API's one error shape: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(data_dir: Path | None = None, model: str | None = None) -> FastAPI:
    """Build the app; ``data_dir`` and ``model`` default to ``$HOIDAP_DATA_DIR`` / ``$HOIDAP_MODEL``."""
    data_dir = Path(data_dir or os.environ.get("HOIDAP_DATA_DIR") or "data")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine, app.state.load_error = None, None
        try:
            engine = Engine.open(data_dir, model)
            engine.search("khởi động")  # warm the model so the first user does not pay for it
            app.state.engine = engine
            info = engine.store.info
            log.info("loaded index %s: %d documents, %d passages, model %s", info.path, info.documents,
                     info.passages, info.model)
        except HoidapError as exc:
            app.state.load_error = str(exc)
            log.error("no index loaded: %s", exc)
        yield

    app = FastAPI(
        title="Hỏi Đáp API",
        version="1",
        description="Vietnamese semantic search and question answering over your own documents: "
                    "ranked answer sentences with their sources.",
        lifespan=lifespan,
    )
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(QueryError)
    async def bad_query(request: Request, exc: QueryError):
        return error_response(422, "invalid_query", str(exc))

    @app.exception_handler(NoIndexError)
    async def no_index(request: Request, exc: NoIndexError):
        return error_response(503, "no_index", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}".lstrip(": "))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if _is_api(request) or exc.status_code == 405:
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            return error_response(exc.status_code, code, str(exc.detail))
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, "internal_error", "internal error: see the server log")

    return app
