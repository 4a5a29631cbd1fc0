"""Indexing: files → documents → passages and sentences → vectors → a new build swapped in whole."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .documents import Document, discover, load_document
from .embeddings import Embedder
from .errors import DocumentError, HoidapError
from .passages import Passage, build_passages
from .store import IndexWriter, build_lock
from .text import NORMALIZATION_VERSION, normalize

DEFAULT_PASSAGE_TOKENS = 256
BATCH_PASSAGES = 256  # passages embedded together: enough to batch well, few enough to bound memory

log = logging.getLogger(__name__)
Progress = Callable[[Document], None]  # called once a document is embedded and stored


@dataclass
class BuildReport:
    documents: int = 0
    passages: int = 0
    sentences: int = 0
    seconds: float = 0.0


def split_document(doc: Document, embedder: Embedder, passage_tokens: int) -> list[Passage]:
    """Passages sized in the model's own tokens, counted on the text the model will actually see."""
    limit = embedder.max_tokens
    return build_passages(doc.text, lambda t: embedder.token_count(normalize(t)), min(passage_tokens, limit), limit)


def _embed_batch(writer: IndexWriter, batch: list[tuple[Document, list[Passage]]], embedder: Embedder,
                 progress: Progress | None) -> None:
    passage_texts = [normalize(d.text[p.start:p.end]) for d, ps in batch for p in ps]
    sentence_texts = [normalize(d.text[s.start:s.end]) for d, ps in batch for p in ps for s in p.sentences]
    passage_vectors = embedder.encode(passage_texts, "passage")
    sentence_vectors = embedder.encode(sentence_texts, "passage")
    p_at = s_at = 0
    for doc, passages in batch:
        n_s = sum(len(p.sentences) for p in passages)
        writer.add(doc, passages, passage_vectors[p_at:p_at + len(passages)], sentence_vectors[s_at:s_at + n_s])
        p_at, s_at = p_at + len(passages), s_at + n_s
        if progress:
            progress(doc)


def build_index(documents: Iterable[Document], data_dir: Path, embedder: Embedder,
                passage_tokens: int = DEFAULT_PASSAGE_TOKENS, progress: Progress | None = None) -> BuildReport:
    """Index ``documents`` into a new build of ``data_dir``; the previous index answers until the swap."""
    started = time.perf_counter()
    with build_lock(data_dir):
        writer = IndexWriter(data_dir, embedder.name, embedder.dimension, NORMALIZATION_VERSION)
        try:
            seen: set[str] = set()
            batch: list[tuple[Document, list[Passage]]] = []
            for doc in documents:
                if doc.id in seen:
                    continue
                seen.add(doc.id)
                passages = split_document(doc, embedder, passage_tokens)
                batch.append((doc, passages))
                if sum(len(ps) for _, ps in batch) >= BATCH_PASSAGES:
                    _embed_batch(writer, batch, embedder, progress)
                    batch = []
            if batch:
                _embed_batch(writer, batch, embedder, progress)
            if not writer.counts["documents"]:
                raise HoidapError("no documents to index: nothing was found, or every file was skipped")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    return BuildReport(**writer.counts, seconds=time.perf_counter() - started)


def load_files(paths: Iterable[Path], skipped: list[str]) -> Iterable[Document]:
    """Documents from files and folders; an unreadable file is noted in ``skipped`` and the rest go on."""
    for path in discover(paths):
        try:
            yield load_document(path)
        except DocumentError as exc:
            log.warning("skipped %s", exc)
            skipped.append(str(exc))
