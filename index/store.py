"""The index on disk: a SQLite database of documents and passages (with their sentences) beside FAISS vector indexes.

Layout of a data directory::

    current -> builds/<name>        the live build (a symlink, replaced atomically)
    builds/<name>/index.sqlite3     documents, passages (each with its sentences: offsets, page, section,
                                    answer offers), metadata
    builds/<name>/passages.faiss    the passage vector index (exact or approximate by size: index.vectors)
    builds/<name>/passages.npy      passage vectors, row = passage id (memory-mapped; exact re-scoring)
    builds/<name>/sentences.npy     sentence vectors, row = sentence id (only ever re-scored, never searched)
    builds/<name>/sentence_passages.npy   the passage id of each sentence id (ascending: a passage's
                                    sentences are one run), so a search finds them without SQL
    builds/<name>/passages.bm25/    BM25 over passages, row = passage id (and sentences.bm25/, which numbers
                                    terms alike: one vocabulary is loaded for both)
    .lock                           held by the one build that may run at a time

A build writes a new folder and only then points ``current`` at it, so a crash at any moment
leaves the previous index whole and answering. The previous build is kept until the next one
commits, so a server still answering from it never loses its files mid-request.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .arrays import mapped_view, runs
from .documents import Document, document_id, location, page_of, section_of
from .errors import CorruptIndexError, IndexBusyError, NoIndexError
from .lexical import LexicalIndex
from .passages import Passage
from .question import offers
from .sentences import Span
from .text import normalize
from .vectors import build_vector_index, choose_kind, open_index, save

SCHEMA_VERSION = 8  # 7: a file's id is its resolved location's, not its path as typed; 8: the original file
DB_NAME = "index.sqlite3"
PASSAGE_INDEX = "passages.faiss"
PASSAGE_VECTORS = "passages.npy"
SENTENCE_VECTORS = "sentences.npy"
SENTENCE_PASSAGES = "sentence_passages.npy"
PASSAGE_TERMS = "passages.bm25"
SENTENCE_TERMS = "sentences.bm25"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, source TEXT NOT NULL, format TEXT NOT NULL,
    text TEXT NOT NULL, content_hash TEXT NOT NULL, modified REAL, indexed_at TEXT NOT NULL,
    pages TEXT NOT NULL DEFAULT '[]', headings TEXT NOT NULL DEFAULT '[]', original TEXT);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY, document_id TEXT NOT NULL REFERENCES documents(id), ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, page INTEGER, section TEXT,
    sentences TEXT NOT NULL);
CREATE INDEX passages_by_document ON passages(document_id, ordinal);
"""


def default_data_dir() -> Path:
    return Path(os.environ.get("HOIDAP_DATA_DIR") or "data")


@dataclass(frozen=True)
class IndexInfo:
    """What an index says about itself: enough to refuse a mismatched model and to report health."""

    path: Path
    model: str
    dimension: int
    normalization_version: int
    passage_tokens: int
    sentence_vectors: str  # index.build.SENTENCE_VECTORS: encoded apart, or pooled from their passage
    vector_index: str  # the kind asked for: "auto" (chosen by size at each build) or one of index.vectors.KINDS
    built_at: str
    documents: int
    passages: int
    sentences: int
    size_bytes: int


def _document_of(row: sqlite3.Row) -> Document:
    return Document(row["id"], row["title"], row["source"], row["format"], row["text"], row["content_hash"],
                    row["modified"], tuple(json.loads(row["pages"])), tuple(tuple(h) for h in json.loads(row["headings"])),
                    row["original"] if "original" in row.keys() else None)  # not known before schema 8


def older_documents(data_dir: Path) -> list[Document]:
    """The documents of a live build that this version cannot open as an index (made by another schema
    version), read from its database; [] when there are none or they cannot be read.

    Documents added through the API or the upload page have no file to index again, so a rebuild
    after an upgrade re-embeds these rather than drop them. The documents table is the one part of
    the schema every version has kept.
    """
    try:
        db = sqlite3.connect(f"file:{(data_dir / 'current').resolve() / DB_NAME}?mode=ro", uri=True)
    except (OSError, sqlite3.Error):
        return []
    try:
        db.row_factory = sqlite3.Row
        return [_located(_document_of(r)) for r in db.execute("SELECT * FROM documents ORDER BY rowid")]
    except (sqlite3.Error, KeyError, IndexError, ValueError, TypeError):
        return []
    finally:
        db.close()


def _located(doc: Document) -> Document:
    """A document of a version before schema 7, which knew a file by its path as typed, under its
    file's one name (:func:`~hoidap.index.documents.location`): indexing the file again then replaces
    it rather than adding it twice. An absolute source is shown as its folder and name; documents
    that are no file here (uploads, the API's) keep their id and source."""
    path = Path(doc.source)
    if not path.is_file():
        return doc
    shown = doc.source if not path.is_absolute() else (Path(path.parent.name) / path.name).as_posix()
    return replace(doc, id=document_id(location(path)), source=shown, original=str(location(path)))


def _mapped(file: Path) -> np.ndarray:
    return mapped_view(np.load(file, mmap_mode="r"))


@contextmanager
def build_lock(data_dir: Path) -> Iterator[None]:
    """One build per data directory at a time; a second one is refused rather than left to corrupt the first."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexBusyError(f"another `hoidap index` is running on {data_dir}: wait for it to finish") from exc
        for stale in (data_dir / "builds").glob(".tmp-*"):  # left by a build that crashed; only the lock holder may
            shutil.rmtree(stale, ignore_errors=True)
        yield


def _save_chunks(path: Path, chunks: list[np.ndarray], dimension: int) -> None:
    """``np.save`` of the rows of ``chunks`` one after another, emptying the list as it goes: the sentence
    vectors are the build's largest array, and concatenating them first would hold them twice."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                    shape=(sum(len(c) for c in chunks), dimension))
    at = 0
    chunks.reverse()
    while chunks:
        chunk = chunks.pop()
        out[at:at + len(chunk)] = chunk
        at += len(chunk)
    out.flush()
    del out


class IndexWriter:
    """Writes one complete build into a hidden folder; :meth:`commit` makes it the live index."""

    def __init__(self, data_dir: Path, model: str, dimension: int, normalization_version: int,
                 passage_tokens: int, vector_index: str, sentence_vectors: str) -> None:
        self.data_dir = data_dir
        builds = data_dir / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        self.name = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self.tmp = builds / f".tmp-{self.name}"
        self.tmp.mkdir()
        self.db = sqlite3.connect(self.tmp / DB_NAME)
        self.db.executescript(_SCHEMA)
        self.meta = {"schema_version": SCHEMA_VERSION, "model": model, "dimension": dimension,
                     "normalization_version": normalization_version, "passage_tokens": passage_tokens,
                     "sentence_vectors": sentence_vectors, "vector_index_asked": vector_index}
        self.vector_index = vector_index
        self.passage_vectors: list[np.ndarray] = []
        self.sentence_vectors: list[np.ndarray] = []
        self.counts = {"documents": 0, "passages": 0, "sentences": 0}
        self.passage_texts: list[str] = []  # normalized, for the lexical indexes built at commit
        self.sentence_texts: list[str] = []
        self.sentence_passages: list[int] = []

    def add(self, doc: Document, passages: list[Passage], passage_vectors: np.ndarray,
            sentence_vectors: np.ndarray) -> None:
        """Add a document with its passages and one vector per passage and per sentence, in order."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.db.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (doc.id, doc.title, doc.source, doc.format, doc.text, doc.content_hash, doc.modified, now,
                         json.dumps(doc.pages), json.dumps(doc.headings, ensure_ascii=False), doc.original))
        pid, sid = self.counts["passages"], self.counts["sentences"]
        for ordinal, p in enumerate(passages):
            shown = []  # each sentence as a search shows it (ShownSentence), kept with its passage
            for s in p.sentences:
                matched = normalize(doc.text[s.start:s.end])
                shown.append((sid, s.start, s.end, page_of(doc.pages, s.start), section_of(doc.headings, s.start),
                              offers(matched)))
                self.sentence_texts.append(matched)
                self.sentence_passages.append(pid + ordinal)
                sid += 1
            self.db.execute("INSERT INTO passages VALUES (?,?,?,?,?,?,?,?,?)",
                            (pid + ordinal, doc.id, ordinal, p.start, p.end, doc.text[p.start:p.end],
                             page_of(doc.pages, p.start), section_of(doc.headings, p.start),
                             json.dumps(shown, ensure_ascii=False, separators=(",", ":"))))
            self.passage_texts.append(normalize(doc.text[p.start:p.end]))
        self.passage_vectors.append(np.asarray(passage_vectors, dtype=np.float32))
        self.sentence_vectors.append(np.asarray(sentence_vectors, dtype=np.float32))
        self.counts = {"documents": self.counts["documents"] + 1, "passages": pid + len(passages), "sentences": sid}

    def commit(self) -> Path:
        """Finish the build and swap it in: an atomic symlink replace, then the old build is removed."""
        self.meta |= self.counts | {"built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        passages = np.concatenate(self.passage_vectors)
        kind = choose_kind(len(passages), self.vector_index)
        index = build_vector_index(passages, kind)
        self.meta["vector_index"] = kind
        save(index, self.tmp / PASSAGE_INDEX)
        np.save(self.tmp / PASSAGE_VECTORS, passages)
        _save_chunks(self.tmp / SENTENCE_VECTORS, self.sentence_vectors, self.meta["dimension"])
        del passages, index
        self.passage_vectors, self.sentence_vectors = [], []  # on disk: out of memory before the lexical indexes
        np.save(self.tmp / SENTENCE_PASSAGES, np.array(self.sentence_passages, dtype=np.int64))
        self.db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in self.meta.items()])
        self.db.commit()
        self.db.close()
        passage_terms, _ = LexicalIndex.build(self.passage_texts, self.sentence_texts,
                                              into=(self.tmp / PASSAGE_TERMS, self.tmp / SENTENCE_TERMS))
        passage_terms.save_impacts(self.tmp / PASSAGE_TERMS)  # a search asks for the best passages, not sentences
        _sync(self.tmp)  # on disk before anything points at it: a power cut cannot leave a half-written build live
        final = self.tmp.with_name(self.name)
        self.tmp.rename(final)
        _fsync(final.parent)
        current = self.data_dir / "current"
        previous = current.resolve() if current.is_symlink() else None
        link = self.data_dir / f".current-{self.name}"
        link.symlink_to(Path("builds") / self.name)
        os.replace(link, current)
        _fsync(self.data_dir)
        for old in final.parent.iterdir():  # no build a process still reads is removed (_unread)
            if old.name != final.name and old.resolve() != previous and not old.name.startswith(".tmp-") \
                    and _unread(old):
                shutil.rmtree(old, ignore_errors=True)
        return final

    def abort(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


class ShownSentence(NamedTuple):
    """A sentence as a search shows it; its text is cut from its passage's (document offsets)."""

    id: int
    start: int
    end: int
    page: int | None
    section: str | None
    offers: dict[str, list[str]]  # index.question.offers, decoded


class ShownPassage(NamedTuple):
    """A passage as a search shows it, with its document's title and source and its sentences by id."""

    id: int
    document_id: str
    title: str
    source: str
    start: int
    end: int
    text: str
    page: int | None
    section: str | None
    sentences: dict[int, ShownSentence]

    def text_of(self, sentence: ShownSentence) -> str:
        return self.text[sentence.start - self.start:sentence.end - self.start]


ORDERS = {"source": "d.source", "title": "d.title COLLATE NOCASE, d.source", "indexed": "d.indexed_at DESC, d.source",
          "modified": "d.modified IS NULL, d.modified DESC, d.source"}  # the document list's orders
_CONTAINS = "(? = '' OR instr(casefold(d.title), casefold(?)) OR instr(casefold(d.source), casefold(?)))"
_SHOWN = """SELECT p.id, p.document_id, d.title, d.source, p.start, p."end", p.text, p.page, p.section, p.sentences
            FROM passages p JOIN documents d ON d.id = p.document_id"""


def _shown(row: sqlite3.Row) -> ShownPassage:
    """A row of :data:`_SHOWN`; its sentences keep their stored (text) order."""
    return ShownPassage(*tuple(row)[:9], {s[0]: ShownSentence(*s) for s in json.loads(row[9])})


def _sync(folder: Path) -> None:
    """fsync every file and folder under ``folder``, then ``folder`` itself."""
    for path in sorted(folder.rglob("*"), reverse=True):  # files before the folders holding them
        _fsync(path)
    _fsync(folder)


def _fsync(path: Path) -> None:
    """fsync a file, or a folder (its entries, such as a rename or a new link, are then on disk too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


READERS = ".readers"  # in each build: every process reading the build holds a shared lock on it


def _hold_for_reading(store: "Store", build: Path) -> None:
    """A shared lock on ``build``'s :data:`READERS` file for as long as ``store`` lives (the file is closed
    when it is collected, or when the process ends, however it ends): a commit by any process then
    leaves the build alone (:func:`_unread`) while it is read."""
    try:
        fd = os.open(build / READERS, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:  # a read-only build folder: nothing to hold (such builds are never removed by us either)
        return
    fcntl.flock(fd, fcntl.LOCK_SH)
    weakref.finalize(store, os.close, fd)


def _unread(build: Path) -> bool:
    """Whether no process reads ``build``: its :data:`READERS` lock can be taken exclusively. Builds made
    before readers held it have no such file, and count as unread."""
    try:
        fd = os.open(build / READERS, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


class Store:
    """Read side of one build; safe to share between threads (one SQLite connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        _hold_for_reading(self, path)
        try:
            rows = self._db().execute("SELECT key, value FROM meta").fetchall()
            meta: dict[str, Any] = {k: json.loads(v) for k, v in rows}
            if meta.get("schema_version") != SCHEMA_VERSION:
                raise CorruptIndexError(f"the index in {path.parent.parent} was made by another version of hoidap "
                                        f"(schema {meta.get('schema_version')}, expected {SCHEMA_VERSION}): "
                                        "rebuild it with `hoidap index`")
            self.passage_index = open_index(path / PASSAGE_INDEX)
            self.passage_vectors = _mapped(path / PASSAGE_VECTORS)
            self.sentence_vectors = _mapped(path / SENTENCE_VECTORS)
            self.sentence_passages = _mapped(path / SENTENCE_PASSAGES)
            self.passage_terms = LexicalIndex.load(path / PASSAGE_TERMS)
            self.sentence_terms = LexicalIndex.load(path / SENTENCE_TERMS, self.passage_terms.vocabulary)
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            self.info = IndexInfo(path, meta["model"], int(meta["dimension"]), int(meta["normalization_version"]),
                                  # builds made before these choices existed encoded every sentence apart
                                  int(meta["passage_tokens"]), meta.get("sentence_vectors", "encoded"),
                                  meta.get("vector_index_asked", "auto"),
                                  meta["built_at"], meta["documents"],
                                  meta["passages"], meta["sentences"], size)
        except (sqlite3.DatabaseError, RuntimeError, ValueError, KeyError, OSError) as exc:
            raise CorruptIndexError(f"the index in {path.parent.parent} is damaged ({str(exc).splitlines()[0]}): "
                                    "rebuild it with `hoidap index`") from exc
        if (self.passage_index.ntotal, len(self.passage_vectors), self.passage_terms.size, len(self.sentence_vectors),
                self.sentence_terms.size, len(self.sentence_passages)) \
                != (meta["passages"],) * 3 + (meta["sentences"],) * 3:
            raise CorruptIndexError(f"the index in {path.parent.parent} is damaged (row counts do not match "
                                    "the database): rebuild it with `hoidap index`")

    @classmethod
    def open(cls, data_dir: Path) -> "Store":
        current = data_dir / "current"
        if not current.exists():
            raise NoIndexError(f"no index in {data_dir}: run `hoidap index` first")
        return cls(current.resolve())

    def _db(self) -> sqlite3.Connection:
        """This thread's connection. A committed build is never written again (changes make a new one),
        so it is opened ``immutable``: SQLite then skips the file locks and change checks it would
        otherwise make on every query, eight system calls each."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path / DB_NAME}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.create_function("casefold", 1, lambda text: text and text.casefold(), deterministic=True)  # SQLite's
            # lower() knows ASCII only: "Đ" and "Ư" would not match "đ" and "ư"
            self._local.db = db
        return db

    def query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        return self._db().execute(sql, params).fetchall()

    def passages(self, ids: list[int]) -> dict[int, "ShownPassage"]:
        """Passages by id with their document's title and source and their sentences: everything a search
        shows of them, in one row each (a query costs ~0.1 ms of SQLite's own work after the encoder ran)."""
        marks = ",".join("?" * len(ids))
        return {p.id: p for p in map(_shown, self.query(f"{_SHOWN} WHERE p.id IN ({marks})", ids))}

    def passage_text(self, passage_id: int) -> str:
        """A passage's text alone: :meth:`passages` also decodes its sentences, which restoring diacritics does
        not need."""
        return self.query("SELECT text FROM passages WHERE id = ?", (passage_id,))[0][0]

    def passages_of(self, doc_id: str) -> list["ShownPassage"]:
        """A document's passages in text order, as :meth:`passages` gives them."""
        return [_shown(r) for r in self.query(f"{_SHOWN} WHERE p.document_id = ? ORDER BY p.ordinal", (doc_id,))]

    def passage_ids_where(self, source_prefix: str | None = None, formats: tuple[str, ...] = (),
                          modified_after: float | None = None, modified_before: float | None = None) -> np.ndarray:
        """Ids of the passages of documents that meet every given condition."""
        where, params = [], []
        if source_prefix:
            where.append("substr(d.source, 1, ?) = ?")
            params += [len(source_prefix), source_prefix]
        if formats:
            where.append(f"d.format IN ({','.join('?' * len(formats))})")
            params += list(formats)
        if modified_after is not None:
            where.append("d.modified >= ?")
            params.append(modified_after)
        if modified_before is not None:
            where.append("d.modified <= ?")
            params.append(modified_before)
        rows = self.query("SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id"
                          + (" WHERE " + " AND ".join(where) if where else ""), params)
        return np.array([r[0] for r in rows], dtype=np.int64)

    def sentence_ids_of(self, passage_ids: np.ndarray) -> np.ndarray:
        """Ids of the sentences of ``passage_ids`` (ascending), in passage then text order, without SQL."""
        ids = np.asarray(passage_ids, dtype=np.int64)
        return runs(np.searchsorted(self.sentence_passages, ids, "left"),
                    np.searchsorted(self.sentence_passages, ids, "right"))

    def term_ids(self, terms: list[str]) -> np.ndarray:
        """Ids of the known ``terms`` in the one vocabulary both lexical indexes number terms by."""
        return self.passage_terms.ids(terms)

    def passage_vectors_of(self, ids: np.ndarray | list[int]) -> np.ndarray:
        return np.asarray(self.passage_vectors[np.asarray(ids, dtype=np.int64)])

    def sentence_vectors_of(self, ids: np.ndarray | list[int]) -> np.ndarray:
        return np.asarray(self.sentence_vectors[np.asarray(ids, dtype=np.int64)])

    def stored_document(self, doc_id: str) -> tuple[Document, list[Passage], np.ndarray, np.ndarray]:
        """A document as indexed, with its passages and vectors: what a rebuild copies instead of re-embedding."""
        row = self.document(doc_id)
        if row is None:
            raise KeyError(doc_id)
        shown = self.passages_of(doc_id)
        passages = [Passage(p.start, p.end, tuple(Span(s.start, s.end) for s in p.sentences.values())) for p in shown]
        return (_document_of(row), passages, self.passage_vectors_of([p.id for p in shown]),
                self.sentence_vectors_of([s.id for p in shown for s in p.sentences.values()]))

    def hashes(self) -> dict[str, str]:
        """Document id → content hash, in index order: what an incremental build compares against."""
        return {r["id"]: r["content_hash"] for r in self.query(
            "SELECT d.id, d.content_hash FROM documents d JOIN passages p ON p.document_id = d.id "
            "GROUP BY d.id ORDER BY min(p.id)")}

    def originals(self) -> dict[str, str | None]:
        """Document id → :attr:`Document.original`: what a pruning run compares with the folders it indexes."""
        return {r["id"]: r["original"] for r in self.query("SELECT id, original FROM documents")}

    def document(self, doc_id: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM documents WHERE id = ?", (doc_id,))
        return rows[0] if rows else None

    def find_document(self, name: str) -> str | None:
        """The id of the document ``name`` names: its id, its source as shown, or its file by any spelling
        of the path (the id is the file's :func:`~hoidap.index.documents.location`'s)."""
        ids = [name, document_id(name), document_id(location(Path(name)))]
        rows = self.query(f"SELECT id FROM documents WHERE id IN ({','.join('?' * len(ids))}) OR source = ? LIMIT 1",
                          (*ids, name))
        return rows[0]["id"] if rows else None

    def documents(self, offset: int = 0, limit: int = 50, contains: str = "", order: str = "source") -> list[sqlite3.Row]:
        """A page of the documents whose title or source holds ``contains`` (any case), in an :data:`ORDERS` order."""
        return self.query(f"""SELECT d.id, d.title, d.source, d.format, d.modified, d.indexed_at,
                                     (SELECT count(*) FROM passages p WHERE p.document_id = d.id) AS passages
                              FROM documents d WHERE {_CONTAINS} ORDER BY {ORDERS[order]} LIMIT ? OFFSET ?""",
                          (contains, contains, contains, limit, offset))

    def count_documents(self, contains: str = "") -> int:
        """How many documents :meth:`documents` pages through."""
        return self.query(f"SELECT count(*) FROM documents d WHERE {_CONTAINS}", (contains, contains, contains))[0][0]

