"""``/admin/feedback``: what staff said of the answers, the questions answered wrongly, the questions the
documents did not answer and the most asked ones, filtered by date and verdict; the rows as CSV.

Signed-in admins only (the sign-in of ``/admin``): questions can be personal.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from . import sessions
from .admin_pages import NO_STORE
from .feedback import Feedback, Period
from .feedback_routes import store_of
from .pages import FormDate, render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
VERDICTS = {"": "tất cả", "right": "Đúng", "wrong": "Không đúng", "answer": "Câu được chọn"}  # "answer": marked


@dataclass(frozen=True)
class FeedbackView:
    """The page's filters and page, kept through its links."""

    since: date | None = None
    until: date | None = None
    verdict: str = ""
    page: int = 1

    @property
    def period(self) -> Period:
        return Period(self.since, self.until, self.verdict)

    def query(self, **changes: object) -> str:
        fields = {"since": self.since, "until": self.until, "verdict": self.verdict, "page": self.page} | changes
        return urlencode({k: v for k, v in fields.items() if v not in ("", None, 1)})


def feedback_view(since: FormDate = None, until: FormDate = None,
                  verdict: Literal["", "right", "wrong", "answer"] = "",
                  page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> FeedbackView:
    return FeedbackView(since, until, verdict, page)


View = Annotated[FeedbackView, Depends(feedback_view)]


@router.get("/admin/feedback", response_class=HTMLResponse)
def feedback_page(request: Request, view: View) -> Response:
    """The feedback and question lists, newest first; signing in comes back here."""
    if sessions.current(request) is None:
        return RedirectResponse("/admin?" + urlencode({"next": str(request.url.path) + "?" + view.query()}), 303)
    store = store_of(request)
    rows = store.latest(PAGE_SIZE, view.period, (view.page - 1) * PAGE_SIZE)
    total = store.count(view.period)
    engine = request.app.state.engine
    removed = {r.document_id for r in rows if engine is None or engine.store.document(r.document_id) is None}
    response = render(request, "admin_feedback.html", view=view, rows=rows, total=total, removed=removed,
                      pages=max(1, -(-total // PAGE_SIZE)), verdicts=VERDICTS,
                      wrong=store.wrongly_answered(view.period), unanswered=store.unanswered(view.period),
                      most_asked=store.most_asked(view.period),
                      log_queries=request.app.state.settings.log_queries)
    response.headers.update(NO_STORE)
    return response


CSV_FIELDS = [*Feedback.model_fields, "removed"]


@router.get("/admin/feedback.csv")
def feedback_csv(request: Request, view: View) -> Response:
    """Every feedback row the filters keep, as CSV (UTF-8 with a BOM, so spreadsheet programs read the marks)."""
    sessions.signed_in(request)
    store = store_of(request)
    engine = request.app.state.engine
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS)
    writer.writeheader()
    gone: dict[str, bool] = {}
    for row in store.latest(1_000_000, view.period):
        if row.document_id not in gone:
            gone[row.document_id] = engine is None or engine.store.document(row.document_id) is None
        writer.writerow(row.model_dump() | {"removed": int(gone[row.document_id])})
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="phan-hoi.csv"'} | NO_STORE)
