"""The JSON API for chatbots, versioned under ``/api/v1``.

Every route but ``/health`` needs an API key when keys are configured; ``/health`` stays open for
load balancers.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, Field, ValidationError

from hoidap.index.documents import iso_time
from hoidap.index.errors import NoIndexError
from hoidap.index.results import SearchResponse
from hoidap.index.search import ANSWERS, MAX_OFFSET, MAX_QUERY_CHARS, MAX_TOP_K, Engine, Filters

from .security import bearer, key_sender, read_access

router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Depends(read_access)])
health_router = APIRouter(prefix="/api/v1", tags=["api"])

Model = TypeVar("Model", bound=BaseModel)
MAX_DOCUMENT_OFFSET = 2**63 - 1  # SQLite integers are 64-bit: a larger offset would be a 500, not an empty page
EXAMPLE_QUESTION = "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với bao nhiêu địa phương?"


def _decodable(question: str) -> str:
    """U+FFFD is what undecodable bytes become (``?q=%FF``): refuse them rather than search for noise."""
    if "\ufffd" in question:
        raise ValueError("the question is not valid UTF-8 text")
    return question


Question = Annotated[str, AfterValidator(_decodable)]
EXACT = ("search the question as typed: a question typed without diacritics is otherwise searched with them "
         "restored when the collection reads them clearly (`interpreted_query`)")


def _listed(value: Any) -> Any:
    """``"pdf"`` as ``["pdf"]``: one format may be given as a string, as in the query string."""
    return [value] if isinstance(value, str) else value


DEPRECATED = "; the name `{}` is still accepted until version 2"
OFFSET = "the rank of the first passage returned, from 0: the next page is offset + top_k"
ANSWERS_K = "how many answer sentences to return (whatever top_k)"


class SearchRequest(BaseModel):
    """The question and its options; the filters have the names of ``GET /search``'s parameters."""

    query: Question = Field(max_length=MAX_QUERY_CHARS, description="the question, in Vietnamese",
                            examples=[EXAMPLE_QUESTION, "Vốn FDI thu hút giai đoạn 2010 - 2015 là bao nhiêu?"])
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="how many passages to return (a page)")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description=OFFSET)
    answers_k: int = Field(ANSWERS, ge=1, le=MAX_TOP_K, description=ANSWERS_K)
    source: str | None = Field(None, max_length=1000, description="only documents whose source starts so (a folder)"
                               + DEPRECATED.format("source_prefix"), examples=["corpus/"],
                               validation_alias=AliasChoices("source", "source_prefix"))
    format: Annotated[list[str], BeforeValidator(_listed)] = Field(
        [], max_length=10, description="only these formats (txt, md, html, htm, docx, pdf)"
        + DEPRECATED.format("formats"), examples=[["pdf", "docx"]], validation_alias=AliasChoices("format", "formats"))
    since: datetime | None = Field(None, description="only documents modified at or after this time (ISO 8601)"
                                   + DEPRECATED.format("modified_after"), examples=["2020-01-01"],
                                   validation_alias=AliasChoices("since", "modified_after"))
    until: datetime | None = Field(None, description="only documents modified at or before this time (ISO 8601)"
                                   + DEPRECATED.format("modified_before"),
                                   validation_alias=AliasChoices("until", "modified_before"))
    min_confidence: float | None = Field(None, ge=0.0, le=1.0, description="the confidence the best answer needs for "
                                         "`answered` (default: the server's HOIDAP_MIN_CONFIDENCE)")
    exact: bool = Field(False, description=EXACT)

    def options(self) -> dict[str, Any]:
        """What :meth:`Engine.search` takes besides the question (filters checked: an unknown format is a 422)."""
        return {"top_k": self.top_k, "offset": self.offset, "answers_k": self.answers_k,
                "filters": Filters.of(self.source, self.format, self.since, self.until),
                "min_confidence": self.min_confidence, "restore": not self.exact}

    # a field it does not know is a mistake to report (a misspelt filter would search everything)
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"query": EXAMPLE_QUESTION, "top_k": 5}]}}


Modified = Annotated[str | None, BeforeValidator(lambda v: iso_time(v) if isinstance(v, (int, float)) else v),
                     Field(description="when the file was last modified (ISO 8601, UTC), where known")]


class DocumentSummary(BaseModel):
    id: str
    title: str
    source: str
    format: str
    passages: int
    modified: Modified = None
    indexed_at: str = Field(description="when it was indexed (ISO 8601, UTC)")


class DocumentList(BaseModel):
    documents: list[DocumentSummary]
    total: int
    offset: int
    limit: int


class DocumentDetail(BaseModel):
    id: str
    title: str
    source: str
    format: str
    text: str
    content_hash: str
    modified: Modified
    indexed_at: str = Field(description="when it was indexed (ISO 8601, UTC)")
    passages: int
    download_url: str | None = Field(None, description="the original file (relative to the server); null for text "
                                                       "sent through the API")


class Health(BaseModel):
    status: str
    documents: int
    passages: int
    sentences: int
    model: str
    built_at: str


class ErrorBody(BaseModel):
    code: str
    message: str


class Error(BaseModel):
    error: ErrorBody


ERRORS = {401: {"model": Error, "description": "missing or wrong API key (only when keys are configured)"},
          422: {"model": Error, "description": "invalid question or parameters"},
          429: {"model": Error, "description": "too many requests: retry after `Retry-After` seconds"},
          503: {"model": Error, "description": "no index is loaded"}}


def engine_of(request: Request) -> Engine:
    """The loaded engine, or a 503 that says why there is none."""
    engine = request.app.state.engine
    if engine is None:
        raise NoIndexError(request.app.state.load_error or "no index is loaded")
    return engine


class SearchRoute(APIRoute):
    """``POST /search`` as FastAPI documents it, answered without FastAPI's per-request dependency solving.

    Solving the router's access dependency and the body parameter costs about 0.2 ms of an 8 ms search
    on 2 cores (timed in a live server). This route awaits the same :func:`read_access` itself and
    validates the body from its bytes with pydantic-core in one call; failures raise the exceptions
    FastAPI raises, so they are answered in the same JSON error shape.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if [d.dependency for d in self.dependencies] != [read_access]:  # a new one would be silently skipped
            raise RuntimeError(f"SearchRoute awaits read_access only, not {self.dependencies}")
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            await read_access(request, await bearer(request))
            return await endpoint(request, json_body(request.headers.get("content-type", ""), await request.body(),
                                                     SearchRequest))

        return handle


def json_body(content_type: str, body: bytes, model: type[Model]) -> Model:
    """``body`` validated as ``model``; a body that is not JSON, or not a valid one, is a 422 that says so."""
    media = content_type.partition(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestValidationError([{"type": "content_type", "loc": ("body",),
                                       "msg": "send the body as JSON, with Content-Type: application/json"}])
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) \
            from None


async def search(request: Request, body: SearchRequest) -> Response:
    """Answer a question: ranked answer sentences (best first, each with its confidence), the passages they come
    from, and `answered`: false when the documents do not answer (then hand over to a person)."""
    request.state.query = body.query  # for the access log, if HOIDAP_LOG_QUERIES allows
    return as_json(await run_search(request, engine_of(request), body.query, body.options()))


router.add_api_route("/search", search, methods=["POST"], response_model=SearchResponse, responses=ERRORS,
                     route_class_override=SearchRoute)


@router.get("/search", response_model=SearchResponse, responses=ERRORS)
async def search_get(
    request: Request,
    q: Annotated[Question, Query(max_length=MAX_QUERY_CHARS, description="the question",
                                 examples=[EXAMPLE_QUESTION])],
    top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K, description="how many passages to return (a page)")] = 5,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description=OFFSET)] = 0,
    answers_k: Annotated[int, Query(ge=1, le=MAX_TOP_K, description=ANSWERS_K)] = ANSWERS,
    source: Annotated[str | None, Query(max_length=1000, description="only documents whose source starts so")] = None,
    format: Annotated[list[str] | None, Query(max_length=10, description="only these formats (repeatable)")] = None,
    since: Annotated[datetime | None, Query(description="only documents modified at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="only documents modified at or before (ISO 8601)")] = None,
    min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0, description="the confidence the best answer "
                                                  "needs for `answered` (default: the server's)")] = None,
    exact: Annotated[bool, Query(description=EXACT)] = False,
) -> Response:
    """The same as ``POST /search``, for simple clients."""
    request.state.query = q
    body = SearchRequest(query=q, top_k=top_k, offset=offset, answers_k=answers_k, source=source, format=format or [],
                         since=since, until=until, min_confidence=min_confidence, exact=exact)
    return as_json(await run_search(request, engine_of(request), q, body.options()))


async def run_search(request: Request, engine: Engine, query: str, options: dict[str, Any]) -> SearchResponse:
    """``engine.search(query, **options)`` here on the event loop when this is the only request in the process,
    else on the search threads (:func:`search_threads`).

    Alone, handing the search to a thread and back costs two thread wake-ups, about 0.4 ms of an 8 ms
    search on 2 cores, for nothing: no other request is waiting. With others in progress, the
    threads let searches overlap (the encoder releases the GIL) and keep the loop answering. Yielding
    once first lets requests that arrived with this one be counted before it decides.
    """
    await asyncio.sleep(0)
    waiting = request.app.state.metrics.in_progress  # past HOIDAP_MAX_QUEUE, RequestLimits answered 503 already
    # alone, the spare core reads the likely best answer while the question is encoded (Engine._read_ahead)
    search = functools.partial(engine.search, query, **options, read_ahead=waiting <= 1)
    if waiting <= 1:
        response = search()
    else:
        response = await asyncio.get_running_loop().run_in_executor(request.app.state.search_threads, search)
    # for /admin/feedback's unanswered and most asked questions: once an asking, not again for each further page
    if request.app.state.settings.log_queries and not options.get("offset"):
        sender = key_sender(request) or (None if request.url.path.startswith("/api/") else "page")
        request.app.state.feedback.asked(query, response.answered, sender)
    return response


def search_threads() -> ThreadPoolExecutor:
    """One thread per core for searches, apart from the pool that serves the other endpoints.

    A plain executor rather than Starlette's ``run_in_threadpool``: about 0.2 ms less per search on
    2 cores (anyio's hop does more bookkeeping), and a burst of searches queues for the cores
    instead of 40 threads contending for the GIL (8 clients: about 6 % more requests/s).
    """
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="hoidap-search")


def as_json(response: SearchResponse) -> Response:
    """The response serialized by pydantic-core at once; returned as a model, FastAPI would first validate
    it again against ``response_model`` (which stays, for the schema), about a millisecond per search."""
    return Response(response.model_dump_json(), media_type="application/json")


@router.get("/documents", response_model=DocumentList, responses=ERRORS)
def documents(request: Request, offset: Annotated[int, Query(ge=0, le=MAX_DOCUMENT_OFFSET)] = 0,
              limit: Annotated[int, Query(ge=1, le=500)] = 50) -> DocumentList:
    """The indexed documents, a page at a time."""
    engine = engine_of(request)
    rows = engine.store.documents(offset, limit)
    return DocumentList(documents=[DocumentSummary(**{k: r[k] for k in DocumentSummary.model_fields}) for r in rows],
                        total=engine.store.info.documents, offset=offset, limit=limit)


@router.get("/documents/{doc_id}", response_model=DocumentDetail,
            responses=ERRORS | {404: {"model": Error, "description": "no such document"}})
def document(request: Request, doc_id: str) -> DocumentDetail:
    """One document's whole text and metadata."""
    engine = engine_of(request)
    row = engine.store.document(doc_id)
    if row is None:
        raise HTTPException(404, f"no document with id {doc_id!r}")
    return document_detail(engine, row)


def document_detail(engine: Engine, row: sqlite3.Row) -> DocumentDetail:
    """A stored document as the API and the MCP tool show it (never the original file's place on disk)."""
    passages = engine.store.query("SELECT count(*) FROM passages WHERE document_id = ?", (row["id"],))[0][0]
    fields = {k: row[k] for k in DocumentDetail.model_fields if k in row.keys()}
    return DocumentDetail(**fields, passages=passages,
                          download_url=f"/documents/{quote(row['id'], safe='')}/original" if row["original"] else None)


@health_router.get("/health", response_model=Health, responses={503: ERRORS[503]})
def health(request: Request) -> Health:
    """Ready when an index is loaded; 503 otherwise. Never needs a key."""
    return health_of(engine_of(request))


def health_of(engine: Engine) -> Health:
    info = engine.store.info
    return Health(status="ok", documents=info.documents, passages=info.passages, sentences=info.sentences,
                  model=info.model, built_at=info.built_at)
