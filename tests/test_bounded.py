"""Crafted documents are read within bounds of time, memory, characters and pages (``hoidap.index.bounded``):
each is generated here, small on disk, and refused with its reason while the process goes on."""

from __future__ import annotations

import shutil
import threading
import time
import zipfile
from pathlib import Path

import docx
import httpx
import pytest

from hoidap.index.bounded import Bounds, read_within
from hoidap.index.documents import load_document
from hoidap.index.errors import DocumentError
from hoidap.index.formats import READERS

from .conftest import QUESTION_19
from .test_formats import write_pdf
from .test_serving import _serve, first_answers


def small_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Quy định", 1)
    document.add_paragraph("Cầu Rồng dài 666 mét.")
    document.save(path)
    return path


def docx_with_body(path: Path, write_body) -> Path:  # noqa: ANN001
    """A real .docx whose document.xml body is streamed by ``write_body(out)`` into the ZIP (never held whole)."""
    template = zipfile.ZipFile(small_docx(path.with_suffix(".template.docx")))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in template.infolist():
            data = template.read(item.filename)
            if item.filename != "word/document.xml":
                out.writestr(item.filename, data)
                continue
            head, _, tail = data.decode().partition("<w:body>")
            with out.open("word/document.xml", "w") as xml:
                xml.write((head + "<w:body>").encode())
                write_body(xml)
                xml.write(tail.encode())
    return path


def many_paragraphs(path: Path, count: int) -> Path:
    return docx_with_body(path, lambda xml: [xml.write(b"<w:p><w:r><w:t>a</w:t></w:r></w:p>" * 10_000)
                                             for _ in range(count // 10_000)])


def whitespace_bomb(path: Path, megabytes: int) -> Path:
    def body(xml) -> None:  # noqa: ANN001
        xml.write(b"<w:p><w:r><w:t>")
        for _ in range(megabytes):
            xml.write(b" " * 2**20)
        xml.write(b"a</w:t></w:r></w:p>")
    return docx_with_body(path, body)


def refused(path: Path, bounds: Bounds) -> tuple[DocumentError, float]:
    started = time.monotonic()
    with pytest.raises(DocumentError) as caught:
        read_within(READERS[path.suffix], path, bounds)
    return caught.value, time.monotonic() - started


def test_a_document_of_a_million_paragraphs_is_stopped_in_time(tmp_path: Path):
    path = many_paragraphs(tmp_path / "nhieu-doan.docx", 1_000_000)
    assert path.stat().st_size < 300_000
    error, seconds = refused(path, Bounds(seconds=2))
    assert seconds < 5 and "took more than 2 s" in str(error) and "giây" in error.vi


def test_a_zip_bomb_is_stopped_by_the_memory_bound(tmp_path: Path):
    path = whitespace_bomb(tmp_path / "bom.docx", 800)
    assert path.stat().st_size < 2_000_000
    error, seconds = refused(path, Bounds(memory_mb=600))
    assert "needs more than 600 MB" in str(error) and "bộ nhớ" in error.vi and seconds < 30


def test_deeply_nested_html_is_stopped_in_time(tmp_path: Path):
    path = tmp_path / "long.html"
    path.write_text("<div>" * 200_000 + "chữ" + "</div>" * 200_000, encoding="utf-8")
    error, seconds = refused(path, Bounds(seconds=1))
    assert seconds < 4 and "took more than 1 s" in str(error)


def test_characters_and_pages_are_bounded(tmp_path: Path):
    text = tmp_path / "dai.txt"
    text.write_text("Một câu văn tiếng Việt. " * 100, encoding="utf-8")
    error, _ = refused(text, Bounds(chars=1000))
    assert "over 1,000 characters" in str(error) and "1.000 ký tự" in error.vi
    pdf = write_pdf(tmp_path / "nhieu-trang.pdf", [f"Trang số {n}." for n in range(5)])
    error, _ = refused(pdf, Bounds(pages=3))
    assert "over 3 pages" in str(error)
    assert read_within(READERS[".pdf"], pdf, Bounds(pages=5)).pages  # at the bound: read


def test_ordinary_documents_are_read_as_before(tmp_path: Path):
    path = small_docx(tmp_path / "quy-dinh.docx")
    doc = load_document(path)
    assert "Cầu Rồng dài 666 mét." in doc.text and doc.headings == ((0, "Quy định"),)


def test_the_server_keeps_answering_while_a_crafted_upload_is_read(corpus_data_dir: Path, tmp_path: Path):
    """An upload of a million paragraphs is refused after HOIDAP_MAX_DOCUMENT_SECONDS with its reason in
    Vietnamese, and searches meanwhile are answered as usual."""
    data = tmp_path / "data"
    shutil.copytree(corpus_data_dir, data, symlinks=True)
    bomb = many_paragraphs(tmp_path / "nhieu-doan.docx", 1_000_000).read_bytes()
    password = "mat-khau-thu-nghiem-du-dai"
    server, url = _serve(data, {"HOIDAP_ADMIN_PASSWORD": password, "HOIDAP_MAX_DOCUMENT_SECONDS": "4"})
    try:
        with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as browser:
            page = browser.post("/admin/login", data={"password": password})
            csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
            result: list[httpx.Response] = []
            upload = threading.Thread(target=lambda: result.append(browser.post(
                "/admin/documents", data={"csrf": csrf}, files=[("files", ("nhieu-doan.docx", bomb))])))
            upload.start()
            started, answered = time.monotonic(), []
            while upload.is_alive():
                ask_started = time.monotonic()
                assert "19 địa phương" in first_answers(url, QUESTION_19)[0]
                answered.append(time.monotonic() - ask_started)
            upload.join()
        assert time.monotonic() - started < 15
        assert len(answered) >= 3 and max(answered) < 2, answered
        assert result[0].status_code == 422 and "nhieu-doan.docx: đọc tệp mất hơn 4 giây" in result[0].text
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "inf", "2.5"])
def test_a_bound_that_is_not_a_positive_number_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, value: str):
    from hoidap.index.config import ConfigError

    Bounds.from_env.cache_clear()  # read once a process: read again here, and again after
    try:
        monkeypatch.setenv("HOIDAP_MAX_DOCUMENT_PAGES", value)  # a whole number: 2.5 pages is not one either
        with pytest.raises(ConfigError, match="HOIDAP_MAX_DOCUMENT_PAGES"):
            Bounds.from_env()
        monkeypatch.setenv("HOIDAP_MAX_DOCUMENT_PAGES", "12")
        assert Bounds.from_env().pages == 12
    finally:
        Bounds.from_env.cache_clear()
