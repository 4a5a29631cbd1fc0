"""Changing the index through the API: add or replace a document, remove one, reload the live build.

Every route here needs an API key, even when reading is open (see :mod:`hoidap.service.security`). A change
runs a build in a worker thread and is served before the response is sent.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field

from hoidap.index.build import BuildReport
from hoidap.index.documents import Document, content_hash, document_id
from hoidap.index.errors import HoidapError, IndexBusyError
from hoidap.index.text import has_words, to_display

from .api import ERRORS, Error, Health, engine_of, health_of
from .security import write_access

MAX_TEXT_CHARS = 2_000_000

router = APIRouter(prefix="/api/v1", tags=["admin"], dependencies=[Depends(write_access)])


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty or only spaces")
    return text


def _has_words(text: str) -> str:
    if not has_words(text):
        raise ValueError("must hold some letters or digits, not only spaces or symbols")
    return text


class NewDocument(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_not_blank)]
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS, description="plain text"),
                    AfterValidator(_has_words)]
    source: Annotated[str | None, Field(max_length=1000, description="where the text comes from; the same source "
                                        "replaces the earlier document (default: a new `api:<uuid>`)")] = None

    # a field it does not know (``metadata``: not stored) is refused with a 422 rather than accepted and dropped
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [
        {"title": "Thông báo nghỉ Tết", "text": "Cơ quan nghỉ Tết Nguyên đán từ ngày 14 đến hết ngày 22 tháng 2.",
         "source": "thong-bao/nghi-tet.txt"}]}}


class DocumentCreated(BaseModel):
    id: str
    title: str
    source: str
    documents: int = Field(description="documents in the index now")


WRITE_ERRORS = {401: {"model": Error, "description": "missing or wrong API key"},
                403: {"model": Error, "description": "no API key is configured: writing is switched off"},
                409: {"model": Error, "description": "another build is running: retry later"},
                422: ERRORS[422]}


def apply_change(request: Request, upserts: list[Document], removals: list[str]) -> BuildReport:
    """Run the change and serve its result (blocking: call it in a worker thread); the admin pages use it too."""
    try:
        return request.app.state.reloader.update(upserts, removals)
    except IndexBusyError as exc:
        raise HTTPException(409, str(exc)) from exc
    except HoidapError as exc:  # e.g. removing the last document: an index is never empty
        raise HTTPException(422, str(exc)) from exc


@router.post("/documents", status_code=201, response_model=DocumentCreated, responses=WRITE_ERRORS)
async def add_document(request: Request, body: NewDocument) -> DocumentCreated:
    """Index a plain-text document (or replace the one with the same ``source``); searchable on return."""
    source = body.source.strip() if body.source and body.source.strip() else f"api:{uuid.uuid4()}"
    text = to_display(body.text)
    doc = Document(document_id(source), to_display(body.title).strip(), source, "txt", text, content_hash(text))
    report = await run_in_threadpool(apply_change, request, [doc], [])
    return DocumentCreated(id=doc.id, title=doc.title, source=doc.source, documents=report.documents)


@router.delete("/documents/{doc_id}", status_code=204, response_class=Response,
               responses=WRITE_ERRORS | {404: {"model": Error, "description": "no such document"},
                                         503: ERRORS[503]})
async def remove_document(request: Request, doc_id: str) -> Response:
    """Remove a document from the index; gone from answers on return."""
    if engine_of(request).store.document(doc_id) is None:
        raise HTTPException(404, f"no document with id {doc_id!r}")
    await run_in_threadpool(apply_change, request, [], [doc_id])
    return Response(status_code=204)


@router.post("/admin/reload", response_model=Health, responses=WRITE_ERRORS | {503: ERRORS[503]})
async def reload(request: Request) -> Health:
    """Load the live build now instead of waiting for the poller; answers the new health."""
    try:
        engine = await run_in_threadpool(request.app.state.reloader.reload)
    except HoidapError as exc:
        raise HTTPException(503, f"reload failed: {exc}") from exc
    return health_of(engine)
