"""Serving the newest build without a restart and without a failed request.

A build commits by pointing ``data_dir/current`` at a new folder. The next request notices the change
(and a poller, when none comes), opens the new build off the event loop with the model already in
memory, answers one question with it, and only then swaps ``app.state.engine`` in one assignment. A
request holds the engine it started with, so it finishes on the old build, which stays on disk while
any process reads it (``hoidap.index.store``). A build that cannot be opened is logged and the old one
keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from hoidap.index.build import BuildReport, update_index
from hoidap.index.documents import Document
from hoidap.index.embeddings import Embedder, resolve_model_name
from hoidap.index.errors import HoidapError
from hoidap.index.search import Engine
from hoidap.index.store import Store

log = logging.getLogger("hoidap")
# Asked of every build before it serves: with marks, and without them (restoring them reads committed counts)
WARM_UP_QUESTIONS = ("khởi động", "khoi dong")


class Reloader:
    """Keeps ``state.engine`` on the live build; ``state.load_error`` says why there is none yet, and
    ``state.load_error_vi`` says it to staff."""

    def __init__(self, state: State, data_dir: Path, model: str | None = None) -> None:
        self.state = state
        self.data_dir = data_dir
        self.model = model
        self._seen: str | None = None  # the `current` link target last tried, loaded or not
        self._embedder: Embedder | None = None
        self._reload_lock = threading.Lock()
        self._write_lock = threading.Lock()  # API writes queue here instead of failing on the build lock
        state.engine, state.load_error, state.load_error_vi, state.loaded_at = None, None, None, None

    def _target(self) -> str | None:
        try:
            return os.readlink(self.data_dir / "current")
        except OSError:
            return None

    def reload(self, only_if_new: bool = False) -> Engine | None:
        """Open the live build and serve it; on failure the engine in service, if any, stays. ``only_if_new``:
        not if another thread loaded this very build while this one waited."""
        with self._reload_lock:
            if only_if_new and self.is_current():
                return self.state.engine
            # Marked seen only once served (or failed): a request that finds it seen must find it served, or it
            # would be answered from the previous build while this one loads (a document just added: a 404).
            target = self._target()
            try:
                engine = self._open()
                for question in WARM_UP_QUESTIONS:  # the first user should not pay for cold caches
                    engine.search(question)
                self.state.engine, self.state.load_error, self.state.load_error_vi = engine, None, None
            except HoidapError as exc:
                if self.state.engine is None:
                    self.state.load_error, self.state.load_error_vi = str(exc), exc.vi
                log.error("index not loaded, %s: %s", "none served" if self.state.engine is None
                          else "still serving the previous one", exc)
                raise
            finally:
                self._seen = target
            self.state.loaded_at = time.time()
            info = engine.store.info
            log.info("serving index %s: %d documents, %d passages, model %s", info.path, info.documents,
                     info.passages, info.model)
            return engine

    def _open(self) -> Engine:
        """The model is loaded once, with the first index; later builds reuse it (a mismatch is refused)."""
        if self._embedder is None:
            engine = Engine.open(self.data_dir, self.model)
            self._embedder = engine.embedder
            return engine
        return Engine(Store.open(self.data_dir), self._embedder)

    def is_current(self) -> bool:
        """Whether the build served is the one ``current`` points at (one readlink, a few microseconds)."""
        return self._target() == self._seen

    def check(self) -> None:
        """Reload if ``current`` points somewhere new; never raises, the poller must keep going."""
        if self.is_current():
            return
        try:
            self.reload(only_if_new=True)
        except HoidapError:
            pass  # logged by reload
        except Exception:
            log.exception("unexpected error while loading the new index; still serving the previous one")

    async def poll(self, interval: float) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.check)

    def embedder(self) -> Embedder:
        """The loaded model, loading it now if no index was ever served (a first document via the API)."""
        with self._reload_lock:
            if self._embedder is None:
                self._embedder = Embedder(resolve_model_name(self.model))
            return self._embedder

    def update(self, upserts: list[Document], removals: list[str]) -> BuildReport:
        """Apply a change to the index and serve the result before returning."""
        with self._write_lock:
            report = update_index(self.data_dir, self.embedder(), upserts, removals)
            self.reload()
            return report


class ServeLatest:
    """ASGI middleware serving every request from the live build: a change another worker or process
    committed is loaded before the request is answered, not up to a poll interval later."""

    def __init__(self, app: ASGIApp, reloader: Reloader) -> None:
        self.app = app
        self.reloader = reloader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.reloader.is_current() and not scope["path"].startswith("/static/"):
            await asyncio.to_thread(self.reloader.check)
        await self.app(scope, receive, send)
