"""One reader per file format, each giving display text with its title, page starts and section headings.

Every reader returns text with one paragraph per line, so that passages and sentences can be cut
the same way whatever the source, and every offset it reports points into that text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DocumentError
from .text import to_display


if TYPE_CHECKING:
    from docx.document import Document as WordDocument
    from docx.table import Table
    from selectolax.lexbor import LexborNode

# Each parser is imported by its reader: searching, which only needs the suffixes, starts without them.


@dataclass(frozen=True)
class Extracted:
    """What a reader found: ``text`` is display text, and ``pages``/``headings`` offsets point into it."""

    text: str
    title: str | None
    pages: tuple[int, ...] = ()
    headings: tuple[tuple[int, str], ...] = ()


Line = tuple[str, bool]
"""One paragraph of output and whether it is a heading."""

_SENTENCE_END = tuple(".!?:")
_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_HTML_NOISE = ("script, style, noscript, template, svg, iframe, form, button, nav, aside, menu, dialog, "
               "[role=navigation], [role=banner], [role=contentinfo], [role=search], [aria-hidden=true]")
_HTML_BLOCKS = frozenset(
    "address article blockquote body caption dd details dialog div dl dt fieldset figcaption figure footer "
    "h1 h2 h3 h4 h5 h6 header hr legend li main ol p pre section summary table tbody tfoot thead tr ul".split()
)
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_CELLS = frozenset({"td", "th"})


@contextmanager
def _reading(path: Path, kind: str) -> Iterator[None]:
    """Turn whatever a parser raises on a damaged file into one line that names the file.

    Parsers of untrusted files fail in many ways (pypdf alone raises ValueError, KeyError,
    struct and zlib errors...), and one bad file must not stop a whole folder from indexing.
    """
    try:
        yield
    except (DocumentError, MemoryError):  # out of memory is not damage: index.bounded says so
        raise
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read ({exc.strerror or exc})",
                            f"không đọc được tệp ({exc.strerror or exc})") from exc
    except Exception as exc:  # noqa: BLE001 - see the docstring
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DocumentError(f"{path}: damaged or not a {kind} file ({detail})",
                            f"tệp bị hỏng hoặc không phải tệp {kind}") from exc


def _decode(data: bytes, path: Path) -> str:
    from .documents import decode  # imported here: documents imports this module for READERS

    return decode(data, str(path))


def _one_line(text: str | None) -> str:
    """Collapse runs of whitespace (line breaks included): each output line is one paragraph."""
    return " ".join(to_display(text or "").split())


def _title(text: str | None) -> str | None:
    return _one_line(text) or None


def _assemble(lines: Iterable[Line]) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Join paragraphs with newlines, recording where each heading starts in the joined text."""
    parts: list[str] = []
    headings: list[tuple[int, str]] = []
    offset = 0
    for line, is_heading in lines:
        if is_heading and line:
            headings.append((offset, line))
        parts.append(line)
        offset += len(line) + 1
    return "\n".join(parts), tuple(headings)


def _from_lines(lines: Iterable[Line], title: str | None = None) -> Extracted:
    """An ``Extracted`` whose title, when the file has none, is its first heading."""
    text, headings = _assemble(lines)
    return Extracted(text, title or (headings[0][1] if headings else None), headings=headings)


HEADING_MAX_CHARS = 120  # a first line longer than this is a paragraph, not a title


def _reads_as_heading(line: str) -> bool:
    """A line that reads as a heading: short, starting with a capital, not a list item and not ending a
    sentence ("Sáng tạo trong thu hút ngoại lực", not "Năm 2015, thành phố đạt ... tỷ USD.")."""
    return (0 < len(line) <= HEADING_MAX_CHARS and line[-1] not in ".!?…:;," and (line[0].isupper() or line[0].isdigit())
            and any(ch.isalpha() for ch in line))


def _first_line_title(text: str) -> str | None:
    """The first non-empty line when it reads as a heading and text follows it."""
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    rest = text[text.find(first) + len(first):]
    return _title(first) if _reads_as_heading(first) and rest.strip() else None


def _line_headings(text: str) -> tuple[tuple[int, str], ...]:
    """The lines of plain text that read as headings (:func:`_reads_as_heading`) with a paragraph after them
    that does not: a run of short lines is a list, not headings."""
    lines = [(m.start() + len(m.group()) - len(m.group().lstrip()), m.group().strip())
             for m in re.finditer(r"[^\n]+", text) if m.group().strip()]
    return tuple((offset, line) for (offset, line), (_, after) in zip(lines, lines[1:])
                 if _reads_as_heading(line) and not _reads_as_heading(after))


def read_txt(path: Path) -> Extracted:
    """Plain text; a first line that reads as a heading is the title, and such lines are its headings."""
    with _reading(path, "text"):
        text = to_display(_decode(path.read_bytes(), path))
        return Extracted(text, _first_line_title(text), headings=_line_headings(text))


def read_md(path: Path) -> Extracted:
    """Markdown kept as written except heading lines, which lose their ``#`` or underline markup."""
    with _reading(path, "Markdown"):
        text = to_display(_decode(path.read_bytes(), path))
        lines = list(_markdown_lines(text))
        return _from_lines(lines, _first_line_title("\n".join(line for line, _ in lines)))


def _markdown_lines(text: str) -> Iterator[Line]:
    """The source lines, with each heading (ATX or setext) replaced by its bare text.

    The parser is used, not a regex, so that ``#`` comments in code blocks are not taken for headings.
    """
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    headings = {tok.map[0]: (tok.map[1], tokens[i + 1].content.strip())
                for i, tok in enumerate(tokens) if tok.type == "heading_open" and tok.map}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if i in headings:
            end, heading = headings[i]
            yield heading, True
            i = end
        else:
            yield lines[i], False
            i += 1


def read_html(path: Path) -> Extracted:
    """The page's main content: menus, scripts, styles and page-wide header and footer are dropped."""
    from selectolax.lexbor import LexborHTMLParser

    with _reading(path, "HTML"):
        tree = LexborHTMLParser(_decode_html(path.read_bytes(), path))
        title = _title(_node_text(tree.css_first("title")) or _node_text(tree.css_first("h1")))
        for node in tree.css(_HTML_NOISE):
            node.decompose()
        for node in tree.css("header, footer"):
            if not _inside(node, {"article", "main"}):
                node.decompose()
        root = tree.css_first("main, [role=main]") or tree.body
        return _from_lines(_html_lines(root) if root else (), title)


def _decode_html(data: bytes, path: Path) -> str:
    """A BOM wins, then ``<meta charset>``; otherwise UTF-8 with the same fallback as plain text."""
    match = _HTML_CHARSET.search(data[:2048])
    if match and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode(match.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration: guess as for plain text
    return _decode(data, path)


def _node_text(node: LexborNode | None) -> str | None:
    return node.text(deep=True) if node else None


def _inside(node: LexborNode, tags: set[str]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def _html_lines(root: LexborNode) -> Iterator[Line]:
    """Depth-first walk, without recursion so deep nesting cannot overflow the stack.

    A block element starts and ends a line; ``<br>`` ends one; cells of a table row share
    one line, separated by " | ", as in Word tables.
    """
    buffer: list[str] = []
    stack: list[tuple[LexborNode, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving or node.tag == "br":
            if line := _one_line("".join(buffer)):
                yield line, leaving and node.tag in _HTML_HEADINGS
            buffer.clear()
        elif node.is_text_node:
            buffer.append(node.text_content or "")
        elif node.is_element_node:
            if node.tag in _HTML_BLOCKS:
                if line := _one_line("".join(buffer)):
                    yield line, False
                buffer.clear()
                stack.append((node, True))
            elif node.tag in _HTML_CELLS and _one_line("".join(buffer)):
                buffer.append(" | ")
            stack.extend((child, False) for child in reversed(list(node.iter(include_text=True))))


def read_docx(path: Path) -> Extracted:
    """Paragraphs and tables in document order; a table row is one line with its cells joined by " | "."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    with _reading(path, "Word (.docx)"):
        try:
            document = docx.Document(str(path))
        except PackageNotFoundError as exc:  # its own message says "not found" of a file that is there
            raise DocumentError(f"{path}: damaged or not a Word (.docx) file (not a ZIP package)",
                                "tệp bị hỏng hoặc không phải tệp Word (.docx)") from exc
        return _from_lines(_docx_lines(document), _title(document.core_properties.title))


def _docx_lines(document: WordDocument) -> Iterator[Line]:
    """Non-empty paragraphs and table rows; Word users space paragraphs with empty ones."""
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            yield from ((row, False) for row in _table_rows(block))
        elif text := _one_line(block.text):
            style = (block.style.name if block.style is not None else None) or ""
            yield text, style.startswith(("Heading", "Title"))


def _table_rows(table: Table) -> Iterator[str]:
    """Rows as text; python-docx repeats a merged cell (the same object) for each column it spans: keep it once."""
    for row in table.rows:
        if cells := [text for cell in dict.fromkeys(row.cells) if (text := _one_line(cell.text))]:
            yield " | ".join(cells)


def read_pdf(path: Path) -> Extracted:
    """The text layer page by page; a PDF without any (a scan) is refused rather than indexed as empty."""
    from pypdf import PdfReader

    with _reading(path, "PDF"):
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{path}: encrypted PDF (remove the password first)",
                                "PDF có mật khẩu: hãy gỡ mật khẩu rồi tải lên lại")
        pages = [_unwrap(to_display(page.extract_text() or "")) for page in reader.pages]
        if pages and not any(page.strip() for page in pages):
            raise DocumentError(f"{path}: scanned PDF with no text layer (run OCR first)",
                                "PDF quét (ảnh) không có lớp chữ: hãy nhận dạng chữ (OCR) trước")
        starts, offset = [], 0
        for page in pages:
            starts.append(offset)
            offset += len(page) + 1
        title = _title(reader.metadata.title) if reader.metadata else None
        return Extracted("\n".join(pages), title, pages=tuple(starts))


def _unwrap(page: str) -> str:
    """Rejoin lines that the PDF broke mid-sentence, and words it hyphenated at a line end.

    A line continues on the next when it does not end a sentence and the next starts in lower case.
    """
    out: list[str] = []
    for line in (line.strip() for line in page.split("\n")):
        if out and out[-1] and line[:1].islower() and not out[-1].endswith(_SENTENCE_END):
            previous = out.pop()
            if previous.endswith(("-", "\u00ad")) and previous[-2:-1].isalpha():
                out.append(previous[:-1] + line)
            else:
                out.append(f"{previous} {line}")
        else:
            out.append(line)
    return "\n".join(out)


READERS: dict[str, Callable[[Path], Extracted]] = {
    ".txt": read_txt,
    ".md": read_md,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
    ".pdf": read_pdf,
}
SUPPORTED_SUFFIXES = frozenset(READERS)
