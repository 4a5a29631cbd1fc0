"""Reading untrusted files within bounds of time, memory, characters and pages.

A crafted file can make a parser work for hours or expand to gigabytes: a .docx of a few hundred KB
holding millions of empty paragraphs (python-docx looks up a style per paragraph), a zip bomb of
whitespace, a PDF whose streams inflate a hundredfold, HTML nested 500,000 levels deep. The parsers
of .docx, .pdf and .html files therefore run in a child process that is killed past ``seconds`` and
cannot take more than ``memory_mb`` of memory; whatever they return must stay within ``chars``
characters and ``pages`` pages. Plain text and Markdown are read in place (linear in their size) and
held to ``chars`` too. A file past a bound is a :class:`DocumentError` that says which, in English
and Vietnamese: the other files still go in, and a server never stalls on one.

The bounds are settable: ``HOIDAP_MAX_DOCUMENT_SECONDS`` (60), ``HOIDAP_MAX_DOCUMENT_MB`` (1024),
``HOIDAP_MAX_DOCUMENT_CHARS`` (5,000,000) and ``HOIDAP_MAX_DOCUMENT_PAGES`` (5,000).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from .config import positive
from .errors import DocumentError
from .formats import Extracted

ISOLATED = frozenset({".docx", ".pdf", ".html", ".htm"})  # parsers a crafted file can make run away
# Imported once by the fork server, not by every child; "__main__" too, or each child would run the program's
# main module again (for `hoidap`, the whole command line's imports) before reading its file.
PRELOADED = ["__main__", "hoidap.index.bounded", "pypdf", "docx", "selectolax.lexbor"]


@dataclass(frozen=True)
class Bounds:
    seconds: float = 60.0
    memory_mb: int = 1024
    chars: int = 5_000_000
    pages: int = 5_000

    @classmethod
    @functools.cache
    def from_env(cls) -> "Bounds":
        """The ``HOIDAP_MAX_DOCUMENT_*`` settings, else the defaults."""
        env = os.environ.get
        return cls(positive(env("HOIDAP_MAX_DOCUMENT_SECONDS"), "HOIDAP_MAX_DOCUMENT_SECONDS", cls.seconds),
                   positive(env("HOIDAP_MAX_DOCUMENT_MB"), "HOIDAP_MAX_DOCUMENT_MB", cls.memory_mb, int),
                   positive(env("HOIDAP_MAX_DOCUMENT_CHARS"), "HOIDAP_MAX_DOCUMENT_CHARS", cls.chars, int),
                   positive(env("HOIDAP_MAX_DOCUMENT_PAGES"), "HOIDAP_MAX_DOCUMENT_PAGES", cls.pages, int))


def read_within(reader: Callable[[Path], Extracted], path: Path, bounds: Bounds | None = None) -> Extracted:
    """``reader(path)``, in a child process for the formats of :data:`ISOLATED`, held to ``bounds``
    (default: :meth:`Bounds.from_env`)."""
    bounds = bounds or Bounds.from_env()
    if path.suffix.lower() not in ISOLATED:
        return _checked(reader(path), path, bounds)
    context = _context()
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(reader, path, bounds, sending), daemon=True)
    child.start()
    sending.close()
    try:
        if not receiving.poll(bounds.seconds):
            raise DocumentError(f"{path}: took more than {bounds.seconds:g} s to read (HOIDAP_MAX_DOCUMENT_SECONDS)",
                                f"đọc tệp mất hơn {bounds.seconds:g} giây: tệp quá lớn hoặc quá phức tạp")
        try:
            kind, *payload = receiving.recv()
        except EOFError:  # killed: out of memory, most likely
            raise DocumentError(f"{path}: needs more than {bounds.memory_mb} MB to read (HOIDAP_MAX_DOCUMENT_MB)",
                                f"đọc tệp cần hơn {bounds.memory_mb} MB bộ nhớ: tệp quá lớn") from None
    finally:
        receiving.close()
        child.kill()
        child.join()
    if kind == "error":
        raise DocumentError(*payload)
    return payload[0]


@functools.cache
def _context() -> multiprocessing.context.BaseContext:
    """Children forked from a small server process rather than from this one (which may hold threads and a
    model), with the parsers already imported: about 10 ms a file, not the 0.3 s of importing them again."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


def _child(reader: Callable[[Path], Extracted], path: Path, bounds: Bounds, sending: Connection) -> None:
    limit = bounds.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        sending.send(("ok", _checked(reader(path), path, bounds)))
    except DocumentError as exc:
        sending.send(("error", str(exc), exc.vi))
    except MemoryError:
        sending.send(("error", f"{path}: needs more than {bounds.memory_mb} MB to read (HOIDAP_MAX_DOCUMENT_MB)",
                      f"đọc tệp cần hơn {bounds.memory_mb} MB bộ nhớ: tệp quá lớn"))


def _checked(extracted: Extracted, path: Path, bounds: Bounds) -> Extracted:
    """``extracted`` when within ``chars`` and ``pages``."""
    if len(extracted.text) > bounds.chars:
        raise DocumentError(f"{path}: over {bounds.chars:,} characters (HOIDAP_MAX_DOCUMENT_CHARS)",
                            f"tài liệu dài quá {bounds.chars:,} ký tự".replace(",", "."))
    if len(extracted.pages) > bounds.pages:
        raise DocumentError(f"{path}: over {bounds.pages:,} pages (HOIDAP_MAX_DOCUMENT_PAGES)",
                            f"tài liệu có quá {bounds.pages:,} trang".replace(",", "."))
    return extracted
