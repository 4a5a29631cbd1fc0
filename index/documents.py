"""From files on disk to documents: discovery, decoding and titles."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import DocumentError
from .text import to_display

SUPPORTED_SUFFIXES = frozenset({".txt", ".md"})
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    """A document as stored: ``text`` is what is shown, and every offset points into it."""

    id: str
    title: str
    source: str
    format: str
    text: str
    content_hash: str
    modified: float | None = None


def document_id(source: str) -> str:
    """Stable across runs, so links to a document survive re-indexing."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode(data: bytes, name: str = "input") -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; else Windows-1258, the legacy Vietnamese code page."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise DocumentError(f"{name}: not valid {codec} text") from exc
    if b"\x00" in data:
        raise DocumentError(f"{name}: binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1258", errors="strict")


def title_for(text: str, path: Path) -> str:
    """The first Markdown heading, else the file name: a first line is often a whole paragraph."""
    if path.suffix.lower() == ".md" and (m := _HEADING.search(text)):
        return m.group(1)
    return path.stem


def load_document(path: Path, source: str | None = None) -> Document:
    """Read one file; raises ``DocumentError`` for unreadable, binary or empty files."""
    source = source or str(path)
    try:
        data = path.read_bytes()
        modified = path.stat().st_mtime
    except OSError as exc:
        raise DocumentError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    text = to_display(decode(data, source))
    if not text.strip():
        raise DocumentError(f"{source}: empty document")
    fmt = path.suffix.lower().lstrip(".")
    return Document(document_id(source), title_for(text, path), source, fmt, text, content_hash(text), modified)


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Supported files under the given files and folders, in a stable order; hidden files are skipped."""
    for path in paths:
        if not path.exists():
            raise DocumentError(f"{path}: no such file or folder")
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES \
                        and not any(part.startswith(".") for part in rel.parts):
                    yield child
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield path
        else:
            raise DocumentError(f"{path}: unsupported file type (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})")
