"""What people say of the answers they got: kept in the data dir's ``feedback.sqlite3``, outside the builds.

Rebuilds, uploads and removals never touch it: each row keeps the answer sentence's text as it was, so
feedback on a document removed since still says what was answered. WAL and one transaction per row, so
a ``kill -9`` loses at most the row being written. Confirmed answers ("right") export as a SQuAD-format
question set that ``hoidap eval`` measures the live collection with: an evaluation set from real use.
Nothing about the person is kept beyond who sent it: a key's fingerprint, never the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, Field

from hoidap.index.search import MAX_QUERY_CHARS

from . import sessions
from .api import ERRORS, Error, Question, engine_of
from .security import bearer_token, read_access

FEEDBACK_DB = "feedback.sqlite3"
MAX_COMMENT_CHARS = 1000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, query TEXT NOT NULL, document_id TEXT NOT NULL,
    sentence_id INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, answer TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('right', 'wrong')), comment TEXT NOT NULL DEFAULT '', sender TEXT)
"""

router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Depends(read_access)])


class FeedbackRequest(BaseModel):
    """One verdict on one answer sentence of a search (its ``document_id`` and ``sentence_id``)."""

    query: Question = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question that was asked")
    document_id: str = Field(max_length=100)
    sentence_id: int = Field(ge=0, description="the answer's `sentence_id`, as the search gave it")
    verdict: Literal["right", "wrong"] = Field(description="does this sentence answer the question?")
    comment: Annotated[str, Field(max_length=MAX_COMMENT_CHARS)] = ""

    model_config = {"extra": "forbid"}


class FeedbackCreated(BaseModel):
    id: int


class Feedback(BaseModel):
    """A row as kept: ``answer`` is the sentence's text when the feedback was given."""

    id: int
    at: str = Field(description="when (ISO 8601, UTC)")
    query: str
    document_id: str
    sentence_id: int
    start: int = Field(description="the sentence's offsets in the document's text, when the feedback was given")
    end: int
    answer: str
    verdict: str
    comment: str
    sender: str | None = Field(description="a fingerprint of the API key that sent it, when keys are set")


@contextlib.contextmanager
def _db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The feedback database, made on first use; one transaction per ``with``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(data_dir / FEEDBACK_DB, timeout=10)) as db:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_SCHEMA)
        with db:
            yield db


def record(data_dir: Path, row: dict) -> int:
    """Keep one row of :class:`Feedback` (without ``id``); its new id."""
    with _db(data_dir) as db:
        return db.execute("INSERT INTO feedback (at, query, document_id, sentence_id, start, \"end\", answer, "
                          "verdict, comment, sender) VALUES (:at, :query, :document_id, :sentence_id, :start, :end, "
                          ":answer, :verdict, :comment, :sender)", row).lastrowid


def latest(data_dir: Path, limit: int = 50) -> list[Feedback]:
    """The newest rows first."""
    if not (data_dir / FEEDBACK_DB).exists():
        return []
    with _db(data_dir) as db:
        return [Feedback(**dict(r)) for r in db.execute("SELECT * FROM feedback ORDER BY id DESC LIMIT ?", (limit,))]


def confirmed(data_dir: Path) -> list[Feedback]:
    """Every answer someone said was right, oldest first, one per question and sentence."""
    if not (data_dir / FEEDBACK_DB).exists():
        return []
    with _db(data_dir) as db:
        return [Feedback(**dict(r)) for r in db.execute(
            "SELECT * FROM feedback WHERE verdict = 'right' AND id IN "
            "(SELECT min(id) FROM feedback GROUP BY query, document_id, sentence_id) ORDER BY id")]


def sentence_row(request: Request, query: str, document_id: str, sentence_id: int, verdict: str, comment: str,
                 sender: str | None) -> dict:
    """A row for :func:`record` about a sentence of the live index; 404 when the index has no such sentence."""
    engine = engine_of(request)
    passages = engine.store.passages_of(document_id)
    sentence = next((s for p in passages for s in p.sentences.values() if s.id == sentence_id), None)
    if sentence is None:
        raise HTTPException(404, f"no sentence {sentence_id} in document {document_id!r}")
    text = engine.store.document(document_id)["text"][sentence.start:sentence.end]
    return {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "query": query,
            "document_id": document_id, "sentence_id": sentence_id, "start": sentence.start, "end": sentence.end,
            "answer": text, "verdict": verdict, "comment": comment, "sender": sender}


@router.post("/feedback", status_code=201, response_model=FeedbackCreated,
             responses=ERRORS | {404: {"model": Error, "description": "no such document or sentence"}})
def give_feedback(request: Request, body: FeedbackRequest) -> FeedbackCreated:
    """Say whether an answer sentence answered the question (what a chatbot's user said). Kept apart from the
    index, so rebuilds and removals keep it; confirmed answers become an evaluation set
    (`hoidap feedback export`)."""
    token = bearer_token(request.scope)
    sender = "key:" + hashlib.sha256(token.encode()).hexdigest()[:16] if token and request.app.state.settings.api_keys \
        else None
    row = sentence_row(request, body.query, body.document_id, body.sentence_id, body.verdict, body.comment, sender)
    return FeedbackCreated(id=record(request.app.state.data_dir, row))


def export(data_dir: Path, documents: dict[str, str]) -> dict:
    """The confirmed answers as SQuAD v1.1: each question's context is its document's text (``documents``,
    id → text, from the live index), or the answer sentence alone for a document removed since."""
    paragraphs: dict[str, dict] = {}
    for f in confirmed(data_dir):
        context = documents.get(f.document_id)
        if context is None or f.answer not in context:  # removed or changed since: the sentence stands alone
            context, start = f.answer, 0
        else:
            start = f.start if context[f.start:f.end] == f.answer else context.find(f.answer)
        paragraph = paragraphs.setdefault(f"{f.document_id}\n{context}", {"context": context, "qas": []})
        paragraph["qas"].append({"id": f"feedback-{f.id}", "question": f.query,
                                 "answers": [{"text": f.answer, "answer_start": start}]})
    return {"version": "1.1", "data": [{"title": "Hỏi Đáp feedback", "paragraphs": list(paragraphs.values())}]}


FORM_SALT = "hoidap-feedback-form"
FORM_MAX_AGE = 24 * 3600  # a results page left open a day may still be answered
page_router = APIRouter(include_in_schema=False, dependencies=[Depends(sessions.pages_access)])


def _form_signer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.secret_key, salt=FORM_SALT)


def form_token(request: Request, query: str, document_id: str, sentence_id: int) -> str:
    """What a results page's "Đúng / Không đúng" form carries: the answer it is about, signed. Another site
    cannot read the page, so cannot post feedback in a visitor's name (the admin forms' CSRF token, without a
    session: the search pages have none)."""
    return _form_signer(request).dumps([query, document_id, sentence_id])


@page_router.post("/feedback")
def feedback_form(request: Request, token: Annotated[str, Form(max_length=2000)],
                  verdict: Annotated[Literal["right", "wrong"], Form()],
                  comment: Annotated[str, Form(max_length=MAX_COMMENT_CHARS)] = "",
                  back: Annotated[str, Form(max_length=3000)] = "/") -> RedirectResponse:
    """The page's feedback form: recorded, then back to the results with a thank-you."""
    try:
        query, document_id, sentence_id = _form_signer(request).loads(token, max_age=FORM_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        raise HTTPException(403, "Biểu mẫu phản hồi đã cũ hoặc không hợp lệ: hãy tải lại trang rồi thử lại.") from None
    sender = "page" if sessions.current(request) is None else "admin"
    record(request.app.state.data_dir, sentence_row(request, query, document_id, sentence_id, verdict, comment, sender))
    local = back if back.startswith("/search?") else "/"
    return RedirectResponse(f"{local}&phan_hoi=1" if "?" in local else local, status_code=303)
