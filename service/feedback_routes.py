"""The ways feedback comes in: ``POST /api/v1/feedback`` for chatbots, and the pages' plain forms for staff
("Đúng / Không đúng" under an answer, "Đây là câu trả lời" on a sentence of the document page, "Báo câu hỏi
chưa có câu trả lời" when the documents did not answer). Kept by :class:`hoidap.service.feedback.FeedbackStore`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, Field, model_validator

from hoidap.index.search import MAX_QUERY_CHARS

from . import sessions
from .api import ERRORS, Error, Question, engine_of
from .feedback import MAX_COMMENT_CHARS, FeedbackStore, NotInIndex, Verdict, answer_row
from .security import key_sender, read_access

router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Depends(read_access)])


class FeedbackRequest(BaseModel):
    """One verdict on one answer of a search: the sentence (``sentence_id``, as the search gave it) or a phrase
    of the document (``start``/``end``, offsets into its text)."""

    query: Question = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question that was asked")
    document_id: str = Field(max_length=100)
    sentence_id: int | None = Field(None, ge=0, description="the answer's `sentence_id`, as the search gave it")
    start: int | None = Field(None, ge=0, description="or the answer's offsets in the document's text: start")
    end: int | None = Field(None, ge=1, description="and end (exclusive)")
    verdict: Verdict = Field(description="`right` or `wrong`: does this answer the question? `answer`: this "
                                         "sentence or phrase is the answer (the search did not give it)")
    comment: Annotated[str, Field(max_length=MAX_COMMENT_CHARS)] = ""

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [
        {"query": "Hải Phòng đã hợp tác với bao nhiêu địa phương?", "document_id": "fedf65871ac4", "sentence_id": 6,
         "verdict": "right", "comment": ""}]}}

    @model_validator(mode="after")
    def _one_answer(self) -> "FeedbackRequest":
        if (self.sentence_id is None) == (self.start is None or self.end is None):
            raise ValueError("give the answer as `sentence_id`, or as `start` and `end`, not both")
        return self


class FeedbackCreated(BaseModel):
    id: int


def store_of(request: Request) -> FeedbackStore:
    return request.app.state.feedback


def recorded(request: Request, query: str, document_id: str, verdict: str, comment: str, sender: str | None,
             sentence_id: int | None = None, span: tuple[int, int] | None = None) -> int:
    """Keep feedback on an answer of the live index; 404 when the index has no such sentence or text."""
    try:
        row = answer_row(engine_of(request), query, document_id, verdict, comment, sender, sentence_id, span)
    except NotInIndex as exc:
        raise HTTPException(404, str(exc)) from None
    return store_of(request).record(row)


@router.post("/feedback", status_code=201, response_model=FeedbackCreated,
             responses=ERRORS | {404: {"model": Error, "description": "no such document, sentence or text"}})
def give_feedback(request: Request, body: FeedbackRequest) -> FeedbackCreated:
    """Say whether an answer answered the question, or which sentence does (what a chatbot's user said). Kept
    apart from the index, so rebuilds and removals keep it; confirmed answers become an evaluation set
    (`hoidap feedback export`)."""
    span = (body.start, body.end) if body.sentence_id is None else None
    return FeedbackCreated(id=recorded(request, body.query, body.document_id, body.verdict, body.comment,
                                       key_sender(request), body.sentence_id, span))


FORM_SALT = "hoidap-feedback-form"
FORM_MAX_AGE = 24 * 3600  # a results page left open a day may still be answered
page_router = APIRouter(include_in_schema=False, dependencies=[Depends(sessions.pages_access)])


def _signer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.secret_key, salt=FORM_SALT)


def form_token(request: Request, query: str, document_id: str | None = None, sentence_id: int | None = None) -> str:
    """What a page's feedback form carries, signed: the question, and the answer it is about (a sentence: "Đúng /
    Không đúng"), or the document whose sentences may be marked as the answer (no sentence), or nothing (a
    question the documents did not answer). Another site cannot read the page, so cannot post feedback in a
    visitor's name (the admin forms' CSRF token, without a session: the search pages have none)."""
    return _signer(request).dumps([query, document_id, sentence_id])


ALLOWED = {"sentence": ("right", "wrong"), "document": ("answer",), "question": ("unanswered",)}


@page_router.post("/feedback")
def feedback_form(request: Request, token: Annotated[str, Form(max_length=2000)],
                  verdict: Annotated[str, Form(max_length=20)],
                  comment: Annotated[str, Form(max_length=MAX_COMMENT_CHARS)] = "",
                  sentence_id: Annotated[int | None, Form(ge=0)] = None,
                  back: Annotated[str, Form(max_length=3000)] = "/") -> RedirectResponse:
    """The pages' feedback forms: recorded, then back to the page it came from with a thank-you."""
    try:
        query, document_id, token_sentence = _signer(request).loads(token, max_age=FORM_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        raise HTTPException(403, "Biểu mẫu phản hồi đã cũ hoặc không hợp lệ: hãy tải lại trang rồi thử lại.") from None
    kind = "question" if document_id is None else "document" if token_sentence is None else "sentence"
    if verdict not in ALLOWED[kind] or (kind == "document" and sentence_id is None):
        raise HTTPException(422, "Phản hồi không hợp lệ cho biểu mẫu này.")
    session = sessions.current(request)
    sender = f"admin:{session.id[:12]}" if session else "page"  # which sign-in, not who: nothing more is known
    local = back if back.startswith(("/search?", "/documents/")) else "/"
    fragment = ""
    if kind == "question":
        store_of(request).asked(query, answered=False, sender=sender, reported=True)
    else:
        chosen = token_sentence if kind == "sentence" else sentence_id
        recorded(request, query, document_id, verdict, comment, sender, chosen)
        if kind == "document":  # back to the document with the chosen sentence marked
            local, fragment = f"/documents/{quote(document_id, safe='')}?{local.partition('?')[2]}&s={chosen}", \
                f"#s-{chosen}"
    if local == "/":  # sent from elsewhere: home, no thank-you to show
        return RedirectResponse(local, status_code=303)
    return RedirectResponse(f"{local}{'&' if '?' in local else '?'}phan_hoi=1{fragment}", status_code=303)
