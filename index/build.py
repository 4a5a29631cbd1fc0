"""Indexing: files → documents → passages and sentences → vectors → a new build swapped in whole.

Builds are incremental: a document whose content hash is unchanged is copied from the current
index with its vectors, so only new and changed documents are embedded. When nothing changes at
all, no build is made and the model is never loaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .documents import NOT_FILES, Document, Found, discover, load_document, location
from .embeddings import Embedder
from .errors import CorruptIndexError, DocumentError, HoidapError, NoIndexError
from .passages import Passage, build_passages
from .store import IndexWriter, Store, build_lock, older_documents
from .text import NORMALIZATION_VERSION, normalize

if TYPE_CHECKING:
    from .distributed import RayOptions

DEFAULT_PASSAGE_TOKENS = 256
# How sentence vectors are made: "pooled" from their passage's own pass (late chunking), or "encoded"
# each on its own, which embeds about twice the text. On XQuAD-vi, pooled indexes at 0.88x the raw
# encoder's passage rate against 0.48x, with Answer@1 0.811 against 0.817 and Answer@3 0.946 against
# 0.942: of 1,190 questions 21 answered first only pooled, 28 only encoded, a difference within chance
# (and within the 0.01 of Answer@1 we allow a faster default), so pooled is the default for new
# indexes. An index keeps its kind until another is asked for, which re-embeds every document.
SENTENCE_VECTORS = ("pooled", "encoded")
DEFAULT_SENTENCE_VECTORS = "pooled"
BATCH_PASSAGES = 256  # passages embedded together: enough to batch well, few enough to bound memory

log = logging.getLogger(__name__)
Progress = Callable[[Document], None]  # called once per given document, when it is in the new build


@dataclass
class BuildReport:
    documents: int = 0
    passages: int = 0
    sentences: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    vector_index: str = ""  # the kind of vector index asked for, when it differs from the previous build's
    seconds: float = 0.0
    model_seconds: float = 0.0  # of ``seconds``, loading the model (and converting it, the first time)

    @property
    def passages_per_second(self) -> float:
        """The indexing rate, without the one-time cost of loading the model."""
        working = self.seconds - self.model_seconds
        return self.passages / working if working > 0 else 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.vector_index)


def split_document(doc: Document, embedder: Embedder, passage_tokens: int) -> list[Passage]:
    """Passages sized in the model's own tokens, counted on the text the model will actually see."""
    limit = embedder.max_tokens
    return build_passages(doc.text, lambda t: embedder.token_count(normalize(t)), min(passage_tokens, limit), limit,
                          {offset for offset, _ in doc.headings})


def document_vectors(batch: list[tuple[Document, list[Passage]]], embedder: Embedder,
                     sentence_vectors: str) -> list[tuple[list[Passage], np.ndarray, np.ndarray]]:
    """Each document's passages with their vectors and their sentences' vectors, the whole batch embedded
    together (here, or by an actor of :mod:`hoidap.index.distributed`)."""
    passage_texts = [normalize(d.text[p.start:p.end]) for d, ps in batch for p in ps]
    sentence_texts = [[normalize(d.text[s.start:s.end]) for s in p.sentences] for d, ps in batch for p in ps]
    if sentence_vectors == "pooled":
        passage_vectors, sentence_vectors_ = _pooled(passage_texts, sentence_texts, embedder)
    else:
        passage_vectors = embedder.encode(passage_texts, "passage")
        sentence_vectors_ = embedder.encode([t for texts in sentence_texts for t in texts], "passage")
    out = []
    p_at = s_at = 0
    for _, passages in batch:
        n_s = sum(len(p.sentences) for p in passages)
        out.append((passages, passage_vectors[p_at:p_at + len(passages)], sentence_vectors_[s_at:s_at + n_s]))
        p_at, s_at = p_at + len(passages), s_at + n_s
    return out


def _embedded_here(documents: list[Document], embedder: Embedder, passage_tokens: int,
                   sentence_vectors: str) -> Iterator[tuple[Document, list[Passage], np.ndarray, np.ndarray]]:
    """Each document with its passages and their vectors, in order, embedded in this process in batches of
    about :data:`BATCH_PASSAGES` passages."""
    batch: list[tuple[Document, list[Passage]]] = []
    for doc in [*documents, None]:
        if doc is not None:
            batch.append((doc, split_document(doc, embedder, passage_tokens)))
        if batch and (doc is None or sum(len(ps) for _, ps in batch) >= BATCH_PASSAGES):
            for (document, _), vectors in zip(batch, document_vectors(batch, embedder, sentence_vectors)):
                yield document, *vectors
            batch = []


def _pooled(passage_texts: list[str], sentence_texts: list[list[str]],
            embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """Passage vectors, and sentence vectors pooled from the passages' own pass (:meth:`Embedder.encode_spans`).

    Each sentence is found in its normalized passage in order; one that normalizes differently
    there (never seen, but normalization is not guaranteed to commute with cutting) is encoded alone.
    """
    spans: list[list[tuple[int, int]]] = []
    alone: dict[int, str] = {}  # position among all the sentences -> its text
    for text, sentences in zip(passage_texts, sentence_texts):
        at, found = 0, []
        for sentence in sentences:
            start = text.find(sentence, at)
            if start < 0:
                alone[sum(map(len, spans)) + len(found)] = sentence
                start = at
            found.append((start, start + len(sentence)))
            at = start + len(sentence)
        spans.append(found)
    passage_vectors, sentence_vectors = embedder.encode_spans(passage_texts, spans, "passage")
    if alone:
        sentence_vectors[list(alone)] = embedder.encode(list(alone.values()), "passage")
    return passage_vectors, sentence_vectors


def _current(data_dir: Path) -> tuple[Store | None, dict[str, Document]]:
    """The live index; or, when there is none this version can open, the documents it still holds
    (:func:`hoidap.index.store.older_documents`), to be embedded again."""
    try:
        return Store.open(data_dir), {}
    except NoIndexError:
        return None, {}
    except CorruptIndexError as exc:
        older = {d.id: d for d in older_documents(data_dir)}
        log.warning("%s: building a new index from scratch%s", exc,
                    f", its {len(older)} documents embedded again" if older else "")
        return None, older


def _without_files_given_again(older: dict[str, Document], given: dict[str, Document]) -> dict[str, Document]:
    """An older version's documents, less the files given again under their new name: such a version
    knew a file by its path as typed (relative to wherever it ran), so its id can differ from the
    file's one name now; a file document (not ``upload:`` or ``api:``) whose text is given again is that file."""
    texts = {d.content_hash for d in given.values()}
    return {i: d for i, d in older.items()
            if i in given or d.source.startswith(NOT_FILES) or d.content_hash not in texts}


def _under(original: str | None, folders: Sequence[Path]) -> bool:
    """Whether a document's file (:attr:`Document.original`) is one of ``folders`` (files or folders, resolved)
    or lies under one; an upload's kept copy and text sent through the API never are."""
    if not original or not Path(original).is_absolute():
        return False
    path = Path(original)
    return any(path == folder or folder in path.parents for folder in folders)


def _update(data_dir: Path, embedder: Embedder, incoming: Iterable[Document], removals: set[str],
            prune: Sequence[Path], progress: Progress | None, passage_tokens: int | None = None,
            vector_index: str | None = None, sentence_vectors: str | None = None,
            loading: Callable[[], None] | None = None, ray: RayOptions | None = None) -> BuildReport:
    """The one build path; a setting not given (None) is the live index's, else the default. ``ray``: the
    documents to embed are embedded on that Ray cluster instead of here."""
    started = time.perf_counter()
    with build_lock(data_dir):
        old, older = _current(data_dir)
        passage_tokens = passage_tokens or (old.info.passage_tokens if old else DEFAULT_PASSAGE_TOKENS)
        sentence_vectors = sentence_vectors or (old.info.sentence_vectors if old else DEFAULT_SENTENCE_VECTORS)
        vector_index = vector_index or (old.info.vector_index if old else "auto")
        reusable = old is not None and (old.info.model, old.info.normalization_version, old.info.passage_tokens,
                                        old.info.sentence_vectors) \
            == (embedder.name, NORMALIZATION_VERSION, passage_tokens, sentence_vectors)
        given: dict[str, Document] = {}
        for doc in incoming:
            given.setdefault(doc.id, doc)
        older = _without_files_given_again(older, given)
        old_hashes = old.hashes() if old else {i: d.content_hash for i, d in older.items()}
        # a pruning run removes the files under its folders that it was not given: never another folder's, an
        # upload or an API document
        folders = [Path(location(folder)) for folder in prune]
        originals = old.originals() if old else {i: d.original for i, d in older.items()}
        others = [i for i in old_hashes if i not in given and i not in removals and not _under(originals[i], folders)]
        report = BuildReport(removed=sum(1 for i in old_hashes if i not in given and i not in others))
        to_copy = [i for i in old_hashes if i in given and given[i].content_hash == old_hashes[i] and reusable]
        to_copy += [i for i in others if reusable]
        to_embed = [d for i, d in given.items() if i not in to_copy]
        if not reusable:  # another model, passage size, sentence vectors or schema: re-embed
            to_embed += [old.stored_document(i)[0] if old else older[i] for i in others]
        report.added = sum(1 for d in to_embed if d.id not in old_hashes)
        report.updated = len(to_embed) - report.added
        report.unchanged = sum(1 for i in to_copy if i in given)
        report.vector_index = vector_index if old is not None and vector_index != old.info.vector_index else ""
        if old is not None and not report.changed:
            info = old.info
            report.documents, report.passages, report.sentences = info.documents, info.passages, info.sentences
            report.seconds = time.perf_counter() - started
            return report
        if to_embed:  # the model is loaded here, once, so that its time is known apart
            if loading:
                loading()
            load_started = time.perf_counter()
            embedder.model  # noqa: B018
            report.model_seconds = time.perf_counter() - load_started
        writer = IndexWriter(data_dir, embedder.name, embedder.dimension, NORMALIZATION_VERSION, passage_tokens,
                             vector_index, sentence_vectors)
        try:
            for doc_id in to_copy:
                writer.add(*old.stored_document(doc_id))
                if progress and doc_id in given:
                    progress(given[doc_id])
            if ray is not None and to_embed:
                from .distributed import embedded
                stream = embedded(to_embed, embedder, passage_tokens, sentence_vectors, ray)
            else:
                stream = _embedded_here(to_embed, embedder, passage_tokens, sentence_vectors)
            for doc, passages, passage_vectors, sentence_vectors_ in stream:
                writer.add(doc, passages, passage_vectors, sentence_vectors_)
                if progress:
                    progress(doc)
            if not writer.counts["documents"]:
                raise HoidapError("no documents to index: nothing was found, or every file was skipped",
                                  "Chỉ mục không thể trống: không còn tài liệu nào để lập chỉ mục.")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    report.documents, report.passages, report.sentences = (writer.counts[k] for k in
                                                           ("documents", "passages", "sentences"))
    report.seconds = time.perf_counter() - started
    return report


def build_index(documents: Iterable[Document], data_dir: Path, embedder: Embedder,
                passage_tokens: int = DEFAULT_PASSAGE_TOKENS, progress: Progress | None = None,
                prune: Sequence[Path] = (), vector_index: str | None = None,
                sentence_vectors: str | None = None, loading: Callable[[], None] | None = None,
                ray: RayOptions | None = None) -> BuildReport:
    """Index ``documents``: new and changed ones are embedded, unchanged ones reused.

    Documents already indexed but not given are kept, unless their file is under one of the files or folders
    ``prune`` names (files gone from the folders indexed).
    ``vector_index`` is "auto" (exact for small collections) or a kind of :mod:`hoidap.index.vectors`;
    ``sentence_vectors`` one of :data:`SENTENCE_VECTORS`. Either defaults to the index's own, else
    to "auto" and :data:`DEFAULT_SENTENCE_VECTORS`; another vector index kind is built from the
    vectors the index has, without embedding again. ``loading`` is called just before the model loads,
    when there is anything to embed: a progress display can show that step. ``ray`` embeds on a Ray cluster
    (:mod:`hoidap.index.distributed`); the build is the same.
    """
    if sentence_vectors is not None and sentence_vectors not in SENTENCE_VECTORS:
        raise HoidapError(f"unknown kind of sentence vectors {sentence_vectors!r}: "
                          f"choose {' or '.join(SENTENCE_VECTORS)}")
    return _update(data_dir, embedder, documents, set(), prune, progress, passage_tokens, vector_index,
                   sentence_vectors, loading, ray)


def update_index(data_dir: Path, embedder: Embedder, upserts: list[Document],
                 removals: list[str]) -> BuildReport:
    """Add or replace ``upserts`` and remove the documents with ids in ``removals``; keep everything else,
    with the passage size and the kinds of sentence vectors and vector index the index has."""
    return _update(data_dir, embedder, upserts, set(removals), (), None)


def load_files(paths: Iterable[Path], skipped: list[str]) -> Iterable[Document]:
    """Documents from files and folders; an unreadable file is noted in ``skipped`` and the rest go on."""
    return load_found(discover(paths), skipped)


def load_found(files: Iterable[Found], skipped: list[str]) -> Iterable[Document]:
    """:func:`load_files` of files already found (by :func:`~hoidap.index.documents.discover`)."""
    for found in files:
        try:
            yield load_document(found.path, found.source, location(found.path))
        except DocumentError as exc:
            log.warning("skipped %s", exc)
            skipped.append(str(exc))
