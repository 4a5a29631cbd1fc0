"""The document-upload pages: sign in, upload files, remove documents. Plain HTML forms, no JavaScript.

Changes go through :func:`hoidap.service.admin.apply_change`, the same path as the write API, so the page and
the API can never disagree about what a change does. A change answers with the admin page itself, not a
redirect, so its messages need no storage between requests.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from hoidap.index.build import BuildReport

from . import sessions, uploads
from .admin import apply_change
from .api import MAX_DOCUMENT_OFFSET
from .pages import render

UPLOAD_PATH = "/admin/documents"
PAGE_SIZE = 20
NO_STORE = {"Cache-Control": "no-store"}  # the list and the form's token are for this moment and this person

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Notice:
    """A message after an action: ``kind`` is ``ok`` or ``problem``; ``items`` lists the files it is about."""

    kind: str
    text: str
    items: list[str] = field(default_factory=list)


def _login_page(request: Request, status: int = 200, error: str | None = None, next: str = "") -> HTMLResponse:
    enabled = sessions.enabled(request.app.state.settings)
    response = render(request, "login.html", status if enabled else 403, enabled=enabled, error=error,
                      disabled=sessions.DISABLED, next=_local(next))
    response.headers.update(NO_STORE)
    return response


@dataclass(frozen=True)
class ListView:
    """What the document list shows: a page of the documents holding ``find``, in ``sort`` order."""

    page: int = 1
    find: str = ""
    sort: str = "source"

    def query(self, **changes: object) -> str:
        fields = {"page": self.page, "find": self.find, "sort": self.sort} | changes
        return urlencode({k: v for k, v in fields.items() if v not in ("", None, 1, "source")})


SORTS = {"source": "nguồn", "title": "tiêu đề", "indexed": "mới lập chỉ mục", "modified": "mới sửa đổi"}


def _admin_page(request: Request, session: sessions.Session, notices: Sequence[Notice] = (), status: int = 200,
                view: ListView = ListView()) -> HTMLResponse:
    engine = request.app.state.engine
    total = engine.store.count_documents(view.find) if engine else 0
    documents = engine.store.documents((view.page - 1) * PAGE_SIZE, PAGE_SIZE, view.find, view.sort) if engine else []
    settings = request.app.state.settings
    response = render(request, "admin.html", status, csrf=session.csrf, notices=notices, documents=documents,
                      total=total, view=view, sorts=SORTS, pages=max(1, -(-total // PAGE_SIZE)),
                      accept=uploads.ACCEPT, accepted=uploads.ACCEPTED, max_mb=settings.max_upload_mb,
                      max_files=uploads.MAX_FILES, max_request_mb=settings.max_upload_mb * uploads.FILES_PER_REQUEST)
    response.headers.update(NO_STORE)
    return response


def _local(path: str) -> str:
    """``path`` when it is a page of this site ("/search?q=..."), else "": never a redirect elsewhere."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else ""


@router.get("/admin", response_class=HTMLResponse)
def admin_home(request: Request,
               page: Annotated[int, Query(ge=1, le=MAX_DOCUMENT_OFFSET // PAGE_SIZE)] = 1,
               find: Annotated[str, Query(max_length=200)] = "",
               sort: Literal["source", "title", "indexed", "modified"] = "source",
               next: Annotated[str, Query(max_length=2000)] = "") -> HTMLResponse:
    """The upload form and the document list (searched by title or source, sorted) when signed in; the sign-in
    form otherwise (``next``: the page to go back to after signing in)."""
    session = sessions.current(request)
    if session and _local(next):
        return RedirectResponse(_local(next), status_code=303)
    view = ListView(page, unicodedata.normalize("NFC", find.strip()), sort)
    return _admin_page(request, session, view=view) if session else _login_page(request, next=next)


@router.get(UPLOAD_PATH + "/{doc_id}/delete", response_class=HTMLResponse)
def confirm_delete(request: Request, doc_id: str) -> HTMLResponse:
    """Ask before removing: the list's "Xoá" leads here, and only this page's button removes."""
    session = sessions.signed_in(request)
    engine = request.app.state.engine
    doc = engine.store.document(doc_id) if engine else None
    if doc is None:
        return _admin_page(request, session, [Notice("problem", "Không tìm thấy tài liệu này: có thể đã được xoá.")],
                           404)
    response = render(request, "confirm_delete.html", csrf=session.csrf, doc=doc)
    response.headers.update(NO_STORE)
    return response


@router.post("/admin/login", response_class=HTMLResponse)
def login(request: Request, password: Annotated[str, Form(max_length=1000)] = "",
          next: Annotated[str, Form(max_length=2000)] = "") -> HTMLResponse:
    guard: sessions.SignInGuard = request.app.state.sign_ins
    address = request.client.host if request.client else "unknown"
    if wait := guard.wait(address):
        page = _login_page(request, 429, f"Đã nhập sai quá nhiều lần: hãy thử lại sau {wait} giây.")
        page.headers["Retry-After"] = str(wait)
        return page
    response = RedirectResponse(_local(next) or "/admin", status_code=303)
    if sessions.enabled(request.app.state.settings) and sessions.sign_in(request, response, password):
        return response
    guard.failed(address)
    return _login_page(request, 401, "Mật khẩu hoặc khoá không đúng.", next)


@router.post("/admin/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> RedirectResponse:
    session = sessions.signed_in(request)
    sessions.check_csrf(session, csrf)
    response = RedirectResponse("/admin", status_code=303)
    sessions.sign_out(request, response, session)
    return response


@router.post(UPLOAD_PATH, response_class=HTMLResponse)
async def upload(request: Request) -> HTMLResponse:
    """Index every readable file in one change; say what was added and what was skipped, and why."""
    session = sessions.signed_in(request)  # before the body is read: strangers cannot make us store files
    try:
        form = await request.form(max_files=uploads.MAX_FILES, max_fields=5)
    except StarletteHTTPException as exc:  # not a form, or too many files (Starlette says which, in English)
        why = f"gửi quá nhiều tệp một lần (tối đa {uploads.MAX_FILES})" if "Too many files" in str(exc.detail) \
            else "biểu mẫu gửi lên không hợp lệ"
        return _admin_page(request, session, [Notice("problem", f"Không đọc được các tệp gửi lên: {why}.")], 400)
    try:
        sessions.check_csrf(session, form.get("csrf"))
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and (f.filename or f.size)]
        documents, skipped = await run_in_threadpool(uploads.read_uploads, files,
                                                     request.app.state.settings.max_upload_mb,
                                                     request.app.state.data_dir)
    finally:
        await form.close()  # the spooled temporary files
    notices = [Notice("problem", f"Đã bỏ qua {len(skipped)} tệp:", skipped)] if skipped else []
    if not files:
        notices.append(Notice("problem", "Hãy chọn ít nhất một tệp để tải lên."))
    if not documents:
        return _admin_page(request, session, notices, 422)
    try:
        report = await run_in_threadpool(apply_change, request, documents, [])
    except HTTPException as exc:
        return _admin_page(request, session, [Notice("problem", f"Chưa cập nhật được chỉ mục: {said(exc)}"),
                                              *notices], exc.status_code)
    names = [f"{d.title} ({d.source.removeprefix(uploads.SOURCE_PREFIX)})" for d in documents]
    return _admin_page(request, session, [Notice("ok", _added(report, len(documents)), names), *notices])


def said(exc: HTTPException) -> str:
    """What went wrong, in Vietnamese where the error says it (:attr:`HoidapError.vi`)."""
    return getattr(exc.__cause__, "vi", None) or str(exc.detail)


def _added(report: BuildReport, count: int) -> str:
    counts = [f"{n} {what}" for n, what in ((report.added, "mới"), (report.updated, "thay bản cũ"),
                                            (report.unchanged, "không đổi")) if n]
    return f"Đã lập chỉ mục {count} tài liệu ({', '.join(counts)}); có thể tìm kiếm ngay:"


@router.post(UPLOAD_PATH + "/{doc_id}/delete", response_class=HTMLResponse)
async def delete(request: Request, doc_id: str, csrf: Annotated[str, Form(max_length=100)] = "") -> HTMLResponse:
    """Remove one document; gone from answers when the page comes back."""
    session = sessions.signed_in(request)
    sessions.check_csrf(session, csrf)
    engine = request.app.state.engine
    doc = engine.store.document(doc_id) if engine else None
    if doc is None:
        return _admin_page(request, session, [Notice("problem", "Không tìm thấy tài liệu này: có thể đã được xoá.")],
                           404)
    try:
        await run_in_threadpool(apply_change, request, [], [doc_id])
    except HTTPException as exc:
        return _admin_page(request, session, [Notice("problem", f"Chưa xoá được “{doc['title']}”: {said(exc)}")],
                           exc.status_code)
    return _admin_page(request, session, [Notice("ok", f"Đã xoá “{doc['title']}” khỏi chỉ mục.")])
