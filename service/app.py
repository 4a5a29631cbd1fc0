"""The web app: the search page for staff, the upload pages for administrators and the JSON API for
chatbots, over one shared engine.

The model is loaded once, with the first index; later builds are picked up while serving
(:mod:`hoidap.service.reload`). Without an index the app still starts: pages say what to do and the API
answers 503, so a server never crash-loops on a missing or damaged index.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from hoidap.index.errors import HoidapError

from . import admin, admin_pages, api, feedback_admin, feedback_routes, mcp_server, metrics, pages, sessions, uploads
from .access_log import AccessLog
from .docs import add_docs
from .errors import add_error_handlers
from .feedback import FeedbackStore
from .reload import Reloader, ServeLatest
from .request_limits import RequestLimits
from .security import SecurityHeaders
from .settings import Settings

STATIC_DIR = Path(__file__).resolve().parent.parent / "templates" / "static"


def create_app(data_dir: Path | None = None, model: str | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the app; ``data_dir``, ``model`` and ``settings`` default to ``$HOIDAP_DATA_DIR``,
    ``$HOIDAP_MODEL`` and the other ``HOIDAP_*`` variables (:class:`Settings`)."""
    data_dir = Path(data_dir or os.environ.get("HOIDAP_DATA_DIR") or "data")
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.search_threads = api.search_threads()
        await asyncio.to_thread(uploads.remove_leftovers)
        with contextlib.suppress(HoidapError):  # logged, and kept in load_error for pages and health
            await asyncio.to_thread(app.state.reloader.reload)
        poller = asyncio.create_task(app.state.reloader.poll(settings.reload_interval)) \
            if settings.reload_interval else None
        async with mcp_server.running(app):
            yield
        app.state.search_threads.shutdown(wait=False)
        app.state.feedback.close()
        if poller:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    app = FastAPI(
        title="Hỏi Đáp API",
        version="1",
        description="Vietnamese semantic search and question answering over your own documents: "
                    "ranked answer sentences with their sources.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.data_dir = data_dir
    app.state.sign_ins = sessions.SignInGuard()
    app.state.feedback = FeedbackStore(data_dir)  # feedback, and questions when HOIDAP_LOG_QUERIES=1
    app.state.reloader = Reloader(app.state, data_dir, model)
    app.state.metrics = metrics.Metrics(app.state)

    app.include_router(api.health_router)
    app.include_router(api.router)
    app.include_router(feedback_routes.router)
    app.include_router(admin.router)
    app.include_router(metrics.router)
    app.include_router(pages.router)
    app.include_router(feedback_routes.page_router)
    app.include_router(admin_pages.router)
    app.include_router(feedback_admin.router)
    mcp_server.mount(app)  # the search as MCP tools for AI assistants, behind the same API keys
    add_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_error_handlers(app)

    # The last added runs first: every response gets the headers and is logged; CORS answers
    # preflights before the limits, and its headers let browsers read a 429.
    app.add_middleware(ServeLatest, reloader=app.state.reloader)
    app.add_middleware(RequestLimits, rate=settings.rate_limit, keys=settings.api_keys,
                       body_limits={admin_pages.UPLOAD_PATH: uploads.request_limit(settings.max_upload_mb)},
                       body_timeout=settings.body_timeout, in_progress=lambda: app.state.metrics.in_progress,
                       max_queue=settings.max_queue)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["Retry-After"])
    app.add_middleware(AccessLog, metrics=app.state.metrics, log_queries=settings.log_queries)
    app.add_middleware(SecurityHeaders)
    return app
