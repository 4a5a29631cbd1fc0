"""The search page for office staff: plain HTML forms, no JavaScript needed, every text escaped.

Each page renders the same :class:`SearchResponse` the API returns; these helpers only cut text into
marked and unmarked segments so the templates never build HTML from strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BeforeValidator

from hoidap.index.errors import NoIndexError, QueryError
from hoidap.index.question import Expected
from hoidap.index.results import Highlight, SearchResponse
from hoidap.index.search import FORMATS, MAX_OFFSET, Filters
from hoidap.index.sentences import paragraphs
from hoidap.index.store import ShownSentence
from hoidap.index.text import fold_normalized, normalize, syllables, word_spans

from . import sessions
from .api import Question, run_search
from .feedback_routes import form_token

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True))
router = APIRouter(include_in_schema=False, dependencies=[Depends(sessions.pages_access)])


def _in_local_time(moment: str | float) -> datetime:
    """A stored time (ISO 8601 text or Unix seconds) in the server's time zone: the office's."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else datetime.fromtimestamp(moment, timezone.utc)
    return when.astimezone()


def day(moment: str | float | None) -> str:
    """A stored time as a Vietnamese date, 01/12/2026; "–" when unknown."""
    return "–" if moment is None or moment == "" else f"{_in_local_time(moment):%d/%m/%Y}"


def day_and_time(moment: str) -> str:
    """A stored time as a Vietnamese date and the hour, 01/12/2026 14:05."""
    return f"{_in_local_time(moment):%d/%m/%Y %H:%M}"


templates.env.filters["day"] = day
templates.env.filters["day_and_time"] = day_and_time
PAGE_SIZE = 10  # passages a results page shows


@dataclass(frozen=True)
class SearchForm:
    """What the search form asked, kept through every link of the results: paging, documents and back."""

    q: str = ""
    source: str = ""
    format: str = ""
    since: date | None = None
    until: date | None = None
    exact: bool = False

    @property
    def filtered(self) -> bool:
        return bool(self.source or self.format or self.since or self.until)

    def filters(self) -> Filters | None:
        """The filters to search with; ``until`` holds its whole day."""
        return Filters.of(self.source, [self.format], self.since and datetime.combine(self.since, time.min),
                          self.until and datetime.combine(self.until, time.max))

    def query(self, **changes: object) -> str:
        """The form as a query string, with ``changes`` (``offset=10``, ``source=""`` to drop a filter)."""
        fields = {"q": self.q, "source": self.source, "format": self.format, "since": self.since,
                  "until": self.until, "exact": 1 if self.exact else ""} | changes
        return urlencode({k: v for k, v in fields.items() if v not in ("", None, 0)})

    def link(self, url: str) -> str:
        """A document ``url`` of the response (``/documents/ID?s=N#s-N``) that also carries the form, for the
        document page's way back to these results."""
        path, hash_, fragment = url.partition("#")
        return f"{path}{'&' if '?' in path else '?'}{self.query()}{hash_}{fragment}"


FormDate = Annotated[date | None, BeforeValidator(lambda value: value or None)]  # a date field left empty: ""


def search_form(q: Question = "", source: Annotated[str, Query(max_length=1000)] = "",
                format: Annotated[str, Query(max_length=10)] = "", since: FormDate = None,
                until: FormDate = None, exact: bool = False) -> SearchForm:
    """The form's fields from the query string (``exact``: as typed, without restoring diacritics)."""
    return SearchForm(q, source, format, since, until, exact)


Form = Annotated[SearchForm, Depends(search_form)]


@dataclass(frozen=True)
class Segment:
    """A run of text; ``sentence_id`` is set for a sentence, ``marked`` for an answer, ``best`` for the best one.
    ``pieces`` cut it further into plain text and the question's words (``(text, is_question_word)``)."""

    text: str
    marked: bool = False
    best: bool = False
    sentence_id: int | None = None
    pieces: tuple[tuple[str, bool], ...] = field(default=())


def question_words(question: str) -> tuple[frozenset[str], bool]:
    """The content words of a question (no question or function words) to mark in passages, and whether to
    match them folded: only a question typed without diacritics is, or "hai" would mark every "Hải"."""
    text = normalize(question).lower()
    expected = Expected.of(text)
    words = syllables(fold_normalized(text) if expected.plain else text)
    return frozenset(w for w in words if fold_normalized(w) in expected.terms), expected.plain


def _pieces(text: str, start: int, end: int, words: list[tuple[int, int]]) -> tuple[tuple[str, bool], ...]:
    """``text[start:end]`` cut at the question's words (offsets in ``words``, sorted)."""
    out: list[tuple[str, bool]] = []
    at = start
    for a, b in words:
        if b <= start or a >= end:
            continue
        if a > at:
            out.append((text[at:a], False))
        out.append((text[a:b], True))
        at = b
    if at < end:
        out.append((text[at:end], False))
    return tuple(out)


def passage_segments(text: str, highlights: list[Highlight],
                     words: tuple[frozenset[str], bool] = (frozenset(), False)) -> list[Segment]:
    """Cut a passage into plain and marked runs, in order, the question's words (:func:`question_words`)
    marked inside them."""
    terms, folded = words
    spans = [(a, b) for a, b in word_spans(text)
             if (fold_normalized(text[a:b]) if folded else normalize(text[a:b]).lower()) in terms]
    out: list[Segment] = []
    at = 0
    for h in sorted(highlights, key=lambda h: h.start):
        if h.start > at:
            out.append(Segment(text[at:h.start], pieces=_pieces(text, at, h.start, spans)))
        out.append(Segment(text[h.start:h.end], marked=True, best=h.best, sentence_id=h.sentence_id,
                           pieces=_pieces(text, h.start, h.end, spans)))
        at = h.end
    if at < len(text):
        out.append(Segment(text[at:], pieces=_pieces(text, at, len(text), spans)))
    return out


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of the document page: a heading, or text whose sentences can be linked to and marked."""

    heading: bool
    segments: list[Segment]


def document_paragraphs(text: str, sentences: list[ShownSentence], marked: set[int],
                        headings: set[int]) -> list[Paragraph]:
    """The whole document as paragraphs of segments; every sentence is a segment of its own (a link target),
    those in ``marked`` highlighted; paragraphs starting at an offset in ``headings`` are headings."""
    spans = sorted(sentences, key=lambda s: s.start)
    out = []
    for para in paragraphs(text):
        segs: list[Segment] = []
        at = para.start
        for s in spans:
            if s.start < para.start or s.end > para.end:
                continue
            if s.start > at:
                segs.append(Segment(text[at:s.start]))
            segs.append(Segment(text[s.start:s.end], marked=s.id in marked, sentence_id=s.id))
            at = s.end
        if at < para.end:
            segs.append(Segment(text[at:para.end]))
        out.append(Paragraph(para.start in headings, segs))
    return out


def no_index(request: Request) -> str:
    """Why there is no index to search, said to staff."""
    return request.app.state.load_error_vi or NoIndexError.VI


def render(request: Request, name: str, http_status: int = 200, **context) -> HTMLResponse:
    """A template with the index facts every page shows in its footer."""
    engine = request.app.state.engine
    context |= {"info": engine.store.info if engine else None, "no_index": no_index(request),
                "formats": sorted(FORMATS)}
    context.setdefault("form", SearchForm())
    return templates.TemplateResponse(request, name, context, status_code=http_status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page; a page that needs signing in (``HOIDAP_PAGES_AUTH``) comes back after it."""
    back = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "") \
        if request.method == "GET" and not request.url.path.startswith("/admin") else ""
    return render(request, "error.html", status, status=status, message=message, back=back)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "index.html")


@router.get("/search", response_class=HTMLResponse)
async def search_page(request: Request, form: Form,
                      offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0, phan_hoi: bool = False) -> HTMLResponse:
    """Results for the form's question, a page of :data:`PAGE_SIZE` passages from ``offset``; an empty, too long
    or unanswerable question gets a message, not an error page. ``phan_hoi``: feedback was just recorded."""
    request.state.query = form.q  # for the access log, if HOIDAP_LOG_QUERIES allows
    engine = request.app.state.engine
    response: SearchResponse | None = None
    message, status = None, 200
    if not form.q.strip():
        message = "Hãy nhập một câu hỏi, ví dụ: “Hải Phòng đã hợp tác với bao nhiêu địa phương?”"
    elif engine is None:
        message, status = no_index(request), 503
    else:
        try:
            response = await run_search(request, engine, form.q, {
                "top_k": PAGE_SIZE, "offset": offset, "filters": form.filters(), "restore": not form.exact})
        except QueryError as exc:
            message, status = exc.vi or "Câu hỏi hoặc bộ lọc không hợp lệ.", 422
    # the page is made on a worker thread: a results page takes milliseconds to render, which on the event loop
    # would hold up every other request (a busy server's fast 503s included)
    return await run_in_threadpool(results_page, request, form, response, message, status, phan_hoi)


def results_page(request: Request, form: SearchForm, response: SearchResponse | None, message: str | None,
                 status: int, thanked: bool = False) -> HTMLResponse:
    """The page of ``response`` (None: ``message`` alone), the question's words marked in its passages, and a
    signed feedback form for each answer it shows (the best one, each card's marked one), or one to report the
    question when the documents did not answer it."""
    words = question_words(response.interpreted_query or form.q) if response else (frozenset(), False)
    segments = {r.passage_id: passage_segments(r.text, r.highlights, words) for r in response.results} \
        if response else {}
    shown = [a for a in response.answers if a.confidence >= response.min_confidence] if response else []
    tokens = {a.sentence_id: form_token(request, response.query, a.document_id, a.sentence_id) for a in shown}
    report = form_token(request, response.query) if response and not response.answered else None
    return render(request, "results.html", status, form=form, response=response, segments=segments,
                  message=message, page_size=PAGE_SIZE, feedback_tokens=tokens, report_token=report, thanked=thanked)


@router.get("/documents/{doc_id}", response_class=HTMLResponse)
def document_page(request: Request, doc_id: str, form: Form,
                  s: Annotated[list[int] | None, Query(description="sentence ids to highlight")] = None,
                  chon: bool = False, phan_hoi: bool = False) -> HTMLResponse:
    """The whole document, paragraphs and headings intact, with the sentences that answered the question
    highlighted; the form it came from (``q`` and filters) gives the way back to the results. ``chon``: each
    sentence gets a button that marks it as the answer to ``q`` (feedback); ``phan_hoi``: that was just done."""
    engine = request.app.state.engine
    if engine is None:
        raise HTTPException(503, no_index(request))
    doc = engine.store.document(doc_id)
    if doc is None:
        raise HTTPException(404, "Không tìm thấy tài liệu này.")
    sentences = [s for p in engine.store.passages_of(doc_id) for s in p.sentences.values()]
    headings = {offset for offset, _ in json.loads(doc["headings"])}
    paras = document_paragraphs(doc["text"], sentences, set(s or []), headings)
    first = next((seg.sentence_id for para in paras for seg in para.segments if seg.marked), None)
    token = form_token(request, form.q, doc_id) if form.q else None
    return render(request, "document.html", form=form, doc=doc, paragraphs=paras, first=first, token=token,
                  choosing=chon and token is not None, thanked=phan_hoi)


CONTENT_TYPES = {"txt": "text/plain", "md": "text/markdown", "html": "text/html", "htm": "text/html", "pdf": "application/pdf",
                 "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


@router.get("/documents/{doc_id}/original")
def original_file(request: Request, doc_id: str) -> FileResponse:
    """The file a document was read from, as an attachment (an uploaded HTML file is never shown as a page of
    this site). Only the file the index names is served: an indexed file where it was found, if unchanged
    since, or the copy of an upload kept in the data dir; never any other path."""
    engine = request.app.state.engine
    if engine is None:
        raise HTTPException(503, no_index(request))
    doc = engine.store.document(doc_id)
    if doc is None or not doc["original"]:
        raise HTTPException(404, "Tài liệu này không có tệp gốc để tải về." if doc else "Không tìm thấy tài liệu này.")
    path = Path(doc["original"])
    kept = not path.is_absolute()  # an upload's copy, in the data dir
    path = request.app.state.data_dir / path if kept else path
    try:
        changed = not kept and abs(path.stat().st_mtime - (doc["modified"] or 0)) > 1
    except OSError:
        raise HTTPException(410, "Tệp gốc không còn ở nơi đã lập chỉ mục.") from None
    if changed or not path.is_file():
        raise HTTPException(410, "Tệp gốc đã thay đổi kể từ khi lập chỉ mục: hãy lập chỉ mục lại để tải bản mới.")
    name = doc["source"].removeprefix("upload:").rsplit("/", 1)[-1]
    return FileResponse(path, media_type=CONTENT_TYPES.get(doc["format"], "application/octet-stream"), filename=name)
