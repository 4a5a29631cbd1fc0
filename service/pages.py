"""The search page for office staff: plain HTML forms, no JavaScript needed, every text escaped.

Each page renders the same :class:`SearchResponse` the API returns; these helpers only cut text into
marked and unmarked segments so the templates never build HTML from strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import jinja2
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from hoidap.index.errors import QueryError
from hoidap.index.results import Highlight, SearchResponse
from hoidap.index.search import MAX_TOP_K, Filters
from hoidap.index.sentences import paragraphs
from hoidap.index.store import ShownSentence

from .api import Overloaded, Question, run_search

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True))
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Segment:
    """A run of text; ``sentence_id`` is set for a marked sentence, ``best`` for the best answer."""

    text: str
    marked: bool = False
    best: bool = False
    sentence_id: int | None = None


def passage_segments(text: str, highlights: list[Highlight]) -> list[Segment]:
    """Cut a passage into plain and marked runs, in order."""
    out: list[Segment] = []
    at = 0
    for h in sorted(highlights, key=lambda h: h.start):
        if h.start > at:
            out.append(Segment(text[at:h.start]))
        out.append(Segment(text[h.start:h.end], marked=True, best=h.best))
        at = h.end
    if at < len(text):
        out.append(Segment(text[at:]))
    return out


def document_paragraphs(text: str, sentences: list[ShownSentence], marked: set[int]) -> list[list[Segment]]:
    """The whole document as paragraphs of segments; sentences in ``marked`` are highlighted."""
    spans = sorted(sentences, key=lambda s: s.start)
    out = []
    for para in paragraphs(text):
        segs: list[Segment] = []
        at = para.start
        for s in spans:
            if s.start < para.start or s.end > para.end or s.id not in marked:
                continue
            if s.start > at:
                segs.append(Segment(text[at:s.start]))
            segs.append(Segment(text[s.start:s.end], marked=True, sentence_id=s.id))
            at = s.end
        if at < para.end:
            segs.append(Segment(text[at:para.end]))
        out.append(segs)
    return out


def render(request: Request, name: str, http_status: int = 200, **context) -> HTMLResponse:
    """A template with the index facts every page shows in its footer."""
    engine = request.app.state.engine
    context |= {"info": engine.store.info if engine else None, "load_error": request.app.state.load_error}
    return templates.TemplateResponse(request, name, context, status_code=http_status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status, status=status, message=message, q="")


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "index.html", q="")


@router.get("/search", response_class=HTMLResponse)
async def search_page(request: Request, q: Question = "",
                      top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 5,
                      source: Annotated[str, Query(max_length=1000)] = "",
                      format: Annotated[str, Query(max_length=10)] = "",
                      exact: bool = False) -> HTMLResponse:
    """Results for ``q``; an empty, too long or unanswerable question gets a message, not an error page.
    ``exact``: as typed, without restoring diacritics (the "Tìm chính xác" link)."""
    request.state.query = q  # for the access log, if HOIDAP_LOG_QUERIES allows
    engine = request.app.state.engine
    response: SearchResponse | None = None
    message, status = None, 200
    if not q.strip():
        message = "Hãy nhập một câu hỏi, ví dụ: “Hải Phòng đã hợp tác với bao nhiêu địa phương?”"
    elif engine is None:
        message, status = f"Chưa có chỉ mục để tìm kiếm ({request.app.state.load_error}).", 503
    else:
        try:
            response = await run_search(request, engine, q, top_k, Filters.of(source, [format]), restore=not exact)
        except QueryError as exc:
            message, status = f"Câu hỏi không hợp lệ: {exc}.", 422
        except Overloaded:
            message, status = "Máy chủ đang bận: hãy thử lại sau giây lát.", 503
        else:
            if not response.answers:
                message = "Không tìm thấy câu trả lời trong tài liệu. Hãy thử diễn đạt câu hỏi theo cách khác."
    segments = {r.passage_id: passage_segments(r.text, r.highlights) for r in response.results} if response else {}
    return render(request, "results.html", status, q=q, response=response, segments=segments, message=message,
                  source=source, format=format)


@router.get("/documents/{doc_id}", response_class=HTMLResponse)
def document_page(request: Request, doc_id: str, q: str = "",
                  s: Annotated[list[int] | None, Query(description="sentence ids to highlight")] = None) -> HTMLResponse:
    """The whole document, paragraphs intact, with the sentences that answered the question highlighted."""
    engine = request.app.state.engine
    if engine is None:
        raise HTTPException(503, request.app.state.load_error or "no index is loaded")
    doc = engine.store.document(doc_id)
    if doc is None:
        raise HTTPException(404, "Không tìm thấy tài liệu này.")
    sentences = [s for p in engine.store.passages_of(doc_id) for s in p.sentences.values()]
    marked = set(s or [])
    paras = document_paragraphs(doc["text"], sentences, marked)
    first = next((seg.sentence_id for para in paras for seg in para if seg.marked), None)
    return render(request, "document.html", q=q, doc=doc, paragraphs=paras, first=first)

