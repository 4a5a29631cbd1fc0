"""From files on disk to documents: discovery, decoding, titles, and where an offset falls (page, section)."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .bounded import read_within
from .errors import DocumentError
from .formats import READERS, SUPPORTED_SUFFIXES
from .text import has_words

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


@dataclass(frozen=True)
class Document:
    """A document as stored: ``text`` is what is shown, and every offset points into it.

    ``pages`` holds where each PDF page starts (page n at ``pages[n - 1]``); ``headings`` holds
    ``(offset, heading)`` for each section the format marks, in text order.
    """

    id: str
    title: str
    source: str
    format: str
    text: str
    content_hash: str
    modified: float | None = None
    pages: tuple[int, ...] = ()
    headings: tuple[tuple[int, str], ...] = ()
    original: str | None = None  # the file to download: an indexed file's location, or an upload's kept copy
    # (a path relative to the data dir, :data:`ORIGINALS`); None for text sent through the API


NOT_FILES = ("upload:", "api:")  # sources of documents that were never files to index again
ORIGINALS = "originals"  # the data dir's folder of uploaded files as they were sent, for download


def document_id(identity: str) -> str:
    """Stable across runs, so links to a document survive re-indexing. ``identity`` is a file's
    :func:`location`, or the source of a document that is no file (``upload:NAME``, ``api:...``)."""
    return hashlib.sha1(identity.encode("utf-8")).hexdigest()[:12]


def location(path: Path) -> str:
    """A file's one name however it was typed: its absolute path with symlinks and ``..`` resolved."""
    return str(Path(path).resolve())


@dataclass(frozen=True)
class Found:
    """A file to index: ``path`` as found, and ``source``, the name people are shown for it."""

    path: Path
    source: str


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode(data: bytes, name: str = "input") -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; else Windows-1258, the legacy Vietnamese code page."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise DocumentError(f"{name}: not valid {codec} text", f"không phải văn bản {codec} hợp lệ") from exc
    if b"\x00" in data:
        raise DocumentError(f"{name}: binary file, not text", "tệp nhị phân, không phải văn bản")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1258", errors="strict")


def load_document(path: Path, source: str | None = None, identity: str | None = None) -> Document:
    """Read one file through the reader for its suffix; raises ``DocumentError`` for unreadable or empty files.

    ``source`` is what people are shown (default: the path as given); the id comes from ``identity``,
    else from ``source`` when one is given (an upload's ``upload:NAME``), else from the file's
    :func:`location`. The title is the file's own (metadata or first heading), else the file name.
    """
    identity = identity or source or location(path)
    source = source or str(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise _unsupported(source)
    try:
        modified = path.stat().st_mtime
    except OSError as exc:
        raise DocumentError(f"{source}: cannot read ({exc.strerror or exc})",
                            f"không đọc được tệp ({exc.strerror or exc})") from exc
    extracted = read_within(READERS[suffix], path)  # a crafted file cannot stall or exhaust the process
    if not has_words(extracted.text):
        raise DocumentError(f"{source}: empty document (no letters or digits)", "tài liệu trống (không có chữ hay số)")
    return Document(document_id(identity), extracted.title or path.stem, source, suffix.lstrip("."), extracted.text,
                    content_hash(extracted.text), modified, extracted.pages, extracted.headings, str(location(path)))


def iso_time(seconds: float | None) -> str | None:
    """Unix seconds (a file's modification time) as ISO 8601 in UTC, the one time format shown anywhere."""
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def page_of(pages: Sequence[int], offset: int) -> int | None:
    """The 1-based page holding ``offset`` (``pages`` are the pages' start offsets), or None without pages."""
    return bisect_right(pages, offset) or None


def section_of(headings: Sequence[Sequence], offset: int) -> str | None:
    """The heading of the section holding ``offset``: the last ``(offset, heading)`` at or before it."""
    index = bisect_right(headings, offset, key=lambda heading: heading[0])
    return headings[index - 1][1] if index else None


def discover(paths: Iterable[Path]) -> Iterator[Found]:
    """Supported files under the given files and folders, in a stable order; hidden files are skipped.

    A file is shown by its path from the folder given, that folder's own name first (``docs/2020/a.pdf``
    for ``/srv/docs``, however the folder was typed), or by its name when given alone: never by
    where it lies on this machine.
    """
    for path in paths:
        if not path.exists():
            raise DocumentError(f"{path}: no such file or folder")
        if path.is_dir():
            top = Path(path).resolve().name
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES \
                        and not any(part.startswith(".") for part in rel.parts):
                    yield Found(child, (Path(top) / rel).as_posix())
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield Found(path, path.name)
        else:
            raise _unsupported(path)


def _unsupported(name: str | Path) -> DocumentError:
    return DocumentError(f"{name}: unsupported file type (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})")
