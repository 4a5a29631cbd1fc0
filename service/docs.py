"""The interactive API documentation at ``/docs``, served from a packaged Swagger UI.

FastAPI's own page loads Swagger UI from a CDN with an inline script: blocked by the pages' CSP
and unreachable offline. This one needs neither.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

PAGE = Path(__file__).resolve().parent.parent / "templates" / "docs.html"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")


def add_docs(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/docs/assets", StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")
