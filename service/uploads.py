"""Uploaded files to documents: supported types only, within the size limit, read by the indexer's own readers.

Each file is judged on its own, so one bad file is reported and the others still go in. The source is
``upload:<file name>``, so uploading a file of the same name again replaces the earlier document.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import unicodedata
from dataclasses import replace
from pathlib import Path

from starlette.datastructures import UploadFile

from hoidap.index.documents import ORIGINALS, Document, load_document
from hoidap.index.errors import DocumentError
from hoidap.index.formats import SUPPORTED_SUFFIXES

SOURCE_PREFIX = "upload:"
MAX_FILES = 50  # per upload
FILES_PER_REQUEST = 5  # one upload may carry this many files at the size limit
MAX_NAME_BYTES = 200  # file systems allow 255; Vietnamese letters take up to 3 bytes each
ACCEPT = ",".join(sorted(SUPPORTED_SUFFIXES))  # for <input type=file accept=...>
ACCEPTED = ", ".join(sorted(SUPPORTED_SUFFIXES))
_CHUNK = 2**20
TEMP_PREFIX = "hoidap-upload-"
LEFTOVER_SECONDS = 3600  # an upload folder this old belongs to no upload still running, in any process


def remove_leftovers() -> None:
    """Upload folders left in the temp folder by a server killed mid-upload (called at start)."""
    for folder in Path(tempfile.gettempdir()).glob(TEMP_PREFIX + "*"):
        try:
            if time.time() - folder.stat().st_mtime > LEFTOVER_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # gone meanwhile, or not ours to look at
            pass


def request_limit(max_mb: float) -> int:
    """The largest upload request body: a few files at the limit, plus room for the form around them."""
    return int(FILES_PER_REQUEST * max_mb * 2**20) + _CHUNK


def safe_name(filename: str) -> str:
    """The file's own name: no folder part (some browsers send one), no control characters, NFC."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    return unicodedata.normalize("NFC", name).strip()


def read_uploads(files: list[UploadFile], max_mb: float, data_dir: Path) -> tuple[list[Document], list[str]]:
    """The readable documents, and one ``"name: why"`` line per file skipped; each readable file is kept in
    ``data_dir``'s :data:`ORIGINALS` folder for download. Blocking: run it in a thread."""
    documents: list[Document] = []
    skipped: list[str] = []
    seen: set[str] = set()
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as folder:
        for upload in files:
            name = safe_name(upload.filename or "")
            try:
                if name in seen:
                    raise DocumentError("trùng tên với một tệp khác trong cùng lần tải lên")
                seen.add(name)
                documents.append(_kept(_read(upload, name, Path(folder), max_mb), Path(folder) / name, data_dir))
            except DocumentError as exc:
                skipped.append(f"{name or '(không tên)'}: {exc.vi or exc}")
    return documents, skipped


def _read(upload: UploadFile, name: str, folder: Path, max_mb: float) -> Document:
    """Check the name and size, then let the format's reader check the content (a .pdf must be a PDF)."""
    if name in {"", ".", ".."} or len(name.encode()) > MAX_NAME_BYTES:
        raise DocumentError(f"tên tệp trống hoặc dài quá {MAX_NAME_BYTES} byte")
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"định dạng “{suffix or 'không có đuôi'}” không được hỗ trợ (chỉ nhận {ACCEPTED})")
    path = folder / name  # the reader names untitled documents after the file
    try:
        _copy(upload, path, max_mb)
        source = SOURCE_PREFIX + name
        try:
            return load_document(path, source=source)
        except DocumentError as exc:  # its message names the temporary path: name the upload instead
            raise DocumentError(str(exc).removeprefix(f"{path}: ").removeprefix(f"{source}: "), exc.vi) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _kept(doc: Document, path: Path, data_dir: Path) -> Document:
    """The document with its file kept under ``data_dir/originals``, named by its bytes' hash (the same file
    uploaded twice is kept once), so that the document page can offer it for download."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    kept = Path(ORIGINALS) / f"{digest}{path.suffix.lower()}"
    (data_dir / ORIGINALS).mkdir(parents=True, exist_ok=True)
    shutil.move(path, data_dir / kept)
    return replace(doc, original=kept.as_posix())


def _copy(upload: UploadFile, path: Path, max_mb: float) -> None:
    """Copy without trusting any declared size; stop as soon as the file is over the limit."""
    max_bytes = int(max_mb * 2**20)
    upload.file.seek(0)
    copied = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(_CHUNK):
            copied += len(chunk)
            if copied > max_bytes:
                raise DocumentError(f"tệp lớn hơn giới hạn {max_mb:g} MB mỗi tệp")
            out.write(chunk)
