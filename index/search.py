"""The search entry point: a question in, ranked answer sentences and highlighted passages out.

The command line, the web page and the JSON API all call :meth:`Engine.search`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .embeddings import Embedder
from .errors import ModelMismatchError, QueryError
from .results import Answer, Highlight, Result, SearchResponse
from .store import Store
from .text import normalize

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 50
CANDIDATES = 20  # passages whose sentences compete for the answer
SENTENCE_WEIGHT = 0.5  # how much a sentence's own similarity counts against its passage's


def check_query(query: str) -> str:
    """The question as it will be searched; empty or over-long questions are refused, not guessed at."""
    text = normalize(query)
    if not text:
        raise QueryError("the question is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"the question is too long ({len(query)} characters, at most {MAX_QUERY_CHARS})")
    return text


class Engine:
    """A loaded index and the model it was built with, shared by every request."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        _check_model(store, embedder.name)
        self.store = store
        self.embedder = embedder

    @classmethod
    def open(cls, data_dir: Path, model: str | None = None, cache_dir: Path | None = None) -> "Engine":
        """Open the index in ``data_dir``; the model defaults to the one the index was built with."""
        store = Store.open(data_dir)
        chosen = model or os.environ.get("HOIDAP_MODEL") or store.info.model
        _check_model(store, chosen)  # before paying for loading the wrong model
        return cls(store, Embedder(chosen, cache_dir))

    def search(self, query: str, top_k: int = 5) -> SearchResponse:
        """Answer ``query`` with up to ``top_k`` passages and the best answer sentences among them."""
        started = time.perf_counter()
        if not 1 <= top_k <= MAX_TOP_K:
            raise QueryError(f"top_k must be between 1 and {MAX_TOP_K}")
        q = self.embedder.encode([check_query(query)], "query")
        n = min(max(top_k, CANDIDATES), self.store.info.passages)
        scores, ids = self.store.passage_vectors.search(q, n)
        passage_score = {int(i): float(s) for i, s in zip(ids[0], scores[0]) if i >= 0}
        ranked = sorted(passage_score, key=passage_score.get, reverse=True)[:top_k]
        sentences = self.store.sentences_of(ranked)
        if sentences:
            cosines = self.store.sentence_vectors_of([s["id"] for s in sentences]) @ q[0]
        else:
            cosines = np.zeros(0, dtype=np.float32)
        sentence_score = {
            s["id"]: SENTENCE_WEIGHT * float(c) + (1 - SENTENCE_WEIGHT) * passage_score[s["passage_id"]]
            for s, c in zip(sentences, cosines)
        }
        return self._response(query, ranked, passage_score, sentences, sentence_score, top_k, started)

    def _response(self, query: str, ranked: list[int], passage_score: dict[int, float], sentences: list,
                  sentence_score: dict[int, float], top_k: int, started: float) -> SearchResponse:
        """Assemble answers (best sentences across results) and results (passages with their marks)."""
        passages = self.store.passages(ranked)
        order = sorted(sentences, key=lambda s: sentence_score[s["id"]], reverse=True)
        answers = [
            Answer(text=s["text"], score=sentence_score[s["id"]], document_id=passages[s["passage_id"]]["document_id"],
                   title=passages[s["passage_id"]]["title"], source=passages[s["passage_id"]]["source"],
                   passage_id=s["passage_id"], sentence_id=s["id"], start=s["start"], end=s["end"])
            for s in order[:top_k]
        ]
        marked = {a.sentence_id for a in answers}
        best_of: dict[int, int] = {}
        for s in order:
            best_of.setdefault(s["passage_id"], s["id"])
        results = []
        for pid in ranked:
            p = passages[pid]
            highlights = [
                Highlight(start=s["start"] - p["start"], end=s["end"] - p["start"], score=sentence_score[s["id"]],
                          best=bool(answers) and s["id"] == answers[0].sentence_id)
                for s in sentences if s["passage_id"] == pid and (s["id"] in marked or s["id"] == best_of[pid])
            ]
            results.append(Result(document_id=p["document_id"], title=p["title"], source=p["source"], passage_id=pid,
                                  score=passage_score[pid], text=p["text"], start=p["start"], end=p["end"],
                                  highlights=highlights))
        took = (time.perf_counter() - started) * 1000
        return SearchResponse(query=query, answers=answers, results=results, took_ms=round(took, 2))



def _check_model(store: Store, model: str) -> None:
    """Vectors of two models are not comparable: a mismatch would answer nonsense, so refuse it."""
    if model != store.info.model:
        raise ModelMismatchError(
            f"the index in {store.path.parent.parent} was built with model {store.info.model!r}, not {model!r}: "
            f"query it with --model {store.info.model} or rebuild it with `hoidap index --model {model}`")
