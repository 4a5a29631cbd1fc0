"""What people say of the answers they got, and (when allowed) what they asked: the data dir's
``feedback.sqlite3``, outside the builds.

Rebuilds, uploads and removals never touch it: each row keeps the answer's text as it was, so feedback on a
document removed since still says what was answered. WAL and one transaction per row, so a ``kill -9`` loses
at most the row being written. Confirmed answers (``right``, or a sentence marked as the ``answer``) export
as a SQuAD-format question set that ``hoidap eval`` measures the live collection with: an evaluation set from
real use. Nothing about the person is kept beyond who sent it: a key's fingerprint (never the key), "page",
an admin session's fingerprint, or "mcp". Questions themselves are kept only with ``HOIDAP_LOG_QUERIES=1``,
or when someone reports one the documents did not answer.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from hoidap.index.search import Engine

FEEDBACK_DB = "feedback.sqlite3"
MAX_COMMENT_CHARS = 1000
MAX_PHRASE_CHARS = 2000  # an answer named by offsets: a phrase or a few sentences, not a document
Verdict = Literal["right", "wrong", "answer"]
VERSION = 2  # 1 had no "answer" verdict and no asked table
_SCHEMA = ("""CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, query TEXT NOT NULL, document_id TEXT NOT NULL,
    sentence_id INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, answer TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('right', 'wrong', 'answer')), comment TEXT NOT NULL DEFAULT '',
    sender TEXT)""",
           """CREATE TABLE IF NOT EXISTS asked (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, query TEXT NOT NULL, answered INTEGER NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0, sender TEXT)""",
           "CREATE INDEX IF NOT EXISTS asked_at ON asked (at)")


class Feedback(BaseModel):
    """A row as kept: ``answer`` is the answer's text when the feedback was given (a sentence, or the phrase
    its offsets named); ``verdict`` ``answer`` marks a sentence the search did not give as the answer."""

    id: int
    at: str = Field(description="when (ISO 8601, UTC)")
    query: str
    document_id: str
    sentence_id: int
    start: int = Field(description="the answer's offsets in the document's text, when the feedback was given")
    end: int
    answer: str
    verdict: str
    comment: str
    sender: str | None = Field(description="who sent it: `key:` and a fingerprint of the API key, `page`, `admin:` "
                                           "and one of the admin's session, or `mcp`")


@dataclass(frozen=True)
class Asked:
    """A question as the admin page lists it: its latest spelling, how often it was asked and answered (when
    questions are logged), how often reported as unanswered, and when last."""

    query: str
    count: int
    last: str
    answered: int
    reported: int


@dataclass(frozen=True)
class Period:
    """The admin page's filters: the days ``since``..``until`` inclusive, in the server's time zone (the
    office's), and one verdict or all."""

    since: date | None = None
    until: date | None = None
    verdict: str = ""

    def where(self, verdict: bool = False) -> tuple[str, list[str]]:
        """A WHERE clause over a table's ``at``, and its ``verdict`` when asked (only feedback has one), with its
        parameters."""
        clauses, args = ["1"], []
        if verdict and self.verdict:
            clauses.append("verdict = ?")
            args.append(self.verdict)
        if self.since:
            clauses.append("at >= ?")
            args.append(_utc(self.since))
        if self.until:
            clauses.append("at < ?")
            args.append(_utc(self.until + timedelta(days=1)))
        return " AND ".join(clauses), args


def _utc(day: date) -> str:
    """The start of a local ``day`` as stored times are written: ISO 8601 in UTC."""
    return datetime.combine(day, time.min).astimezone().astimezone(timezone.utc).isoformat(timespec="seconds")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def question_key(query: str) -> str:
    """What makes two askings the same question: case, spacing, Unicode form and a final "?" aside."""
    return " ".join(unicodedata.normalize("NFC", query).casefold().split()).rstrip(" ?.!")


class FeedbackStore:
    """The feedback database of one data dir: one connection per process, opened on first use, shared by the
    server's threads under a lock (a write is a fraction of a millisecond)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FEEDBACK_DB
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL: a kill -9 loses nothing, a power cut the last rows
                with _immediate(db):
                    _migrate(db)
                self._db = db
            with _immediate(self._db):
                yield self._db

    def _read(self, sql: str, args: list | tuple = ()) -> list[sqlite3.Row]:
        if self._db is None and not self.path.exists():
            return []  # nothing said yet: reading makes no file
        with self._transaction() as db:
            return db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def record(self, row: dict) -> int:
        """Keep one row of :class:`Feedback` (without ``id``); its new id."""
        with self._transaction() as db:
            return db.execute("INSERT INTO feedback (at, query, document_id, sentence_id, start, \"end\", answer, "
                              "verdict, comment, sender) VALUES (:at, :query, :document_id, :sentence_id, :start, "
                              ":end, :answer, :verdict, :comment, :sender)", row).lastrowid

    def asked(self, query: str, answered: bool, sender: str | None, reported: bool = False) -> None:
        """Keep a question and whether it was answered (``reported``: someone said the documents should have)."""
        with self._transaction() as db:
            db.execute("INSERT INTO asked (at, query, answered, reported, sender) VALUES (?, ?, ?, ?, ?)",
                       (now(), query, int(answered), int(reported), sender))

    def latest(self, limit: int = 50, period: Period = Period(), offset: int = 0) -> list[Feedback]:
        """The newest rows first, within ``period``."""
        where, args = period.where(verdict=True)
        return [Feedback(**dict(r)) for r in self._read(
            f"SELECT * FROM feedback WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset])]

    def count(self, period: Period = Period()) -> int:
        where, args = period.where(verdict=True)
        rows = self._read(f"SELECT count(*) FROM feedback WHERE {where}", args)
        return rows[0][0] if rows else 0

    def confirmed(self) -> list[Feedback]:
        """Every answer confirmed (``right``) or marked (``answer``), oldest first: for each question and
        answer, the latest verdict decides, so an answer said right and later wrong is not confirmed."""
        return [Feedback(**dict(r)) for r in self._read(
            "SELECT * FROM feedback WHERE id IN (SELECT max(id) FROM feedback "
            "GROUP BY query, document_id, start, \"end\") AND verdict IN ('right', 'answer') ORDER BY id")]

    def wrongly_answered(self, period: Period = Period(), limit: int = 20) -> list[Asked]:
        """The questions whose answers were said wrong, most often first."""
        where, args = period.where()
        rows = self._read(f"SELECT query, at, 1 AS answered, 0 AS reported FROM feedback "
                          f"WHERE {where} AND verdict = 'wrong' ORDER BY id", args)
        return _grouped(rows, limit)

    def unanswered(self, period: Period = Period(), limit: int = 20) -> list[Asked]:
        """The questions the documents did not answer (logged, or reported from the page), most often first."""
        where, args = period.where()
        return _grouped(self._read(f"SELECT query, at, answered, reported FROM asked WHERE {where} "
                                   f"AND answered = 0 ORDER BY id", args), limit)

    def most_asked(self, period: Period = Period(), limit: int = 20) -> list[Asked]:
        """The questions asked most often (kept only with ``HOIDAP_LOG_QUERIES=1``)."""
        where, args = period.where()
        return _grouped(self._read(f"SELECT query, at, answered, reported FROM asked WHERE {where} "
                                   f"AND reported = 0 ORDER BY id", args), limit)


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``): committed, or rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate(db: sqlite3.Connection) -> None:
    """Make the tables; a version 1 database gains the "answer" verdict (a new CHECK: the table is copied)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    old = version < VERSION and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'feedback'").fetchone()
    if old:
        db.execute("ALTER TABLE feedback RENAME TO feedback_1")
    for statement in _SCHEMA:
        db.execute(statement)
    if old:
        db.execute("INSERT INTO feedback SELECT * FROM feedback_1")
        db.execute("DROP TABLE feedback_1")
    db.execute(f"PRAGMA user_version = {VERSION}")


def _grouped(rows: list[sqlite3.Row], limit: int) -> list[Asked]:
    """Rows of (query, at, answered, reported), oldest first, as questions, the most asked or reported first;
    a report is not an asking."""
    groups: dict[str, Asked] = {}
    for r in rows:
        key = question_key(r["query"])
        seen = groups.get(key) or Asked(r["query"], 0, r["at"], 0, 0)
        groups[key] = Asked(r["query"], seen.count + (not r["reported"]), r["at"], seen.answered + r["answered"],
                            seen.reported + r["reported"])
    return sorted(groups.values(), key=lambda a: (a.count + a.reported, a.last), reverse=True)[:limit]


class NotInIndex(LookupError):
    """The feedback names a document or sentence the live index does not hold."""


def answer_row(engine: Engine, query: str, document_id: str, verdict: str, comment: str, sender: str | None,
               sentence_id: int | None = None, span: tuple[int, int] | None = None) -> dict:
    """A row for :meth:`FeedbackStore.record` about a sentence of the live index (``sentence_id``) or a phrase
    of a document (``span``, offsets into its text: its sentence is the one it starts in)."""
    doc = engine.store.document(document_id)
    sentences = [s for p in engine.store.passages_of(document_id) for s in p.sentences.values()] if doc else []
    if span is not None:
        start, end = span
        if doc is None or not 0 <= start < end <= len(doc["text"]) or end - start > MAX_PHRASE_CHARS:
            raise NotInIndex(f"no text at {start}..{end} in document {document_id!r} (at most {MAX_PHRASE_CHARS} "
                             "characters)")
        sentence = min(sentences, key=lambda s: (not s.start <= start < s.end, abs(s.start - start)), default=None)
    else:
        sentence = next((s for s in sentences if s.id == sentence_id), None)
        start, end = (sentence.start, sentence.end) if sentence else (0, 0)
    if sentence is None:
        raise NotInIndex(f"no sentence {sentence_id} in document {document_id!r}")
    return {"at": now(), "query": query, "document_id": document_id, "sentence_id": sentence.id, "start": start,
            "end": end, "answer": doc["text"][start:end], "verdict": verdict, "comment": comment, "sender": sender}


def export(confirmed: list[Feedback], documents: dict[str, str]) -> dict:
    """The ``confirmed`` answers as SQuAD v1.1, one question per question and document with all its confirmed
    answers; the context is the document's text (``documents``, id → text, from the live index), or the answer
    alone for a document removed or changed since."""
    paragraphs: dict[str, dict] = {}
    questions: dict[tuple[str, str], dict] = {}
    for f in confirmed:
        context = documents.get(f.document_id)
        if context is None or f.answer not in context:
            context, start = f.answer, 0
        else:
            start = f.start if context[f.start:f.end] == f.answer else context.find(f.answer)
        paragraph = paragraphs.setdefault(f"{f.document_id}\n{context}", {"context": context, "qas": []})
        qa = questions.get((f.query, f"{f.document_id}\n{context}"))
        if qa is None:
            qa = questions[(f.query, f"{f.document_id}\n{context}")] = {"id": f"feedback-{f.id}",
                                                                        "question": f.query, "answers": []}
            paragraph["qas"].append(qa)
        qa["answers"].append({"text": f.answer, "answer_start": start})
    return {"version": "1.1", "data": [{"title": "Hỏi Đáp feedback", "paragraphs": list(paragraphs.values())}]}
