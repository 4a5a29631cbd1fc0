"""The HTML pages, through the real app, the real model and a real index of corpus/."""

from __future__ import annotations

import html
import os
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from hoidap.index.build import build_index, load_files
from hoidap.index.documents import load_document
from hoidap.index.embeddings import Embedder
from hoidap.service.app import create_app

from .conftest import QUESTION_19, ROOT

XSS = "<script>alert(1)</script>"


class Page(HTMLParser):
    """The bits of a page the tests look at: ``<mark>`` elements, inputs and links, text unescaped."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.marks: list[tuple[dict[str, str | None], str]] = []
        self.inputs: list[dict[str, str | None]] = []
        self.links: list[tuple[str, str]] = []
        self._mark: list | None = None
        self._link: list | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "mark":
            self._mark = [attrs, ""]
        elif tag == "input":
            self.inputs.append(attrs)
        elif tag == "a":
            self._link = [attrs.get("href") or "", ""]

    def handle_endtag(self, tag):
        if tag == "mark" and self._mark is not None:
            self.marks.append((self._mark[0], self._mark[1]))
            self._mark = None
        elif tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1].strip()))
            self._link = None

    def handle_data(self, data):
        if self._mark is not None:
            self._mark[1] += data
        if self._link is not None:
            self._link[1] += data

    def search_box(self) -> dict[str, str | None]:
        return next(i for i in self.inputs if i.get("name") == "q")


@pytest.fixture(scope="module")
def client(corpus_data_dir: Path):
    with TestClient(create_app(corpus_data_dir)) as client:
        yield client


@pytest.fixture(scope="module")
def xss_client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder):
    """A one-document index whose file name, source and text all carry markup."""
    folder = tmp_path_factory.mktemp("xss-docs")
    path = folder / "x<img src=x onerror=alert(1)>.txt"
    path.write_text(f"Tài liệu thử nghiệm về an toàn.\n\nĐoạn văn có mã {XSS} nguy hiểm. Câu thứ hai nói về Hải Phòng.\n",
                    encoding="utf-8")
    doc = load_document(path, source=f"thu-muc/{XSS}.txt")
    data_dir = tmp_path_factory.mktemp("xss-index")
    build_index([doc], data_dir, embedder)
    with TestClient(create_app(data_dir)) as client:
        yield client, doc


def test_home_has_the_search_form(client: TestClient):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="vi">' in r.text
    assert '<form class="search" action="/search" method="get"' in r.text
    assert '<label for="q" class="visually-hidden">Câu hỏi</label>' in r.text and "<h1" in r.text
    box = Page(r.text).search_box()
    assert box["type"] == "search" and "autofocus" in box and box["value"] == ""
    assert "tài liệu" in r.text  # footer: index facts
    assert "multilingual-e5-small" in r.text


def test_search_marks_the_answer(client: TestClient):
    r = client.get("/search", params={"q": QUESTION_19})
    assert r.status_code == 200
    page = Page(r.text)
    best = [text for attrs, text in page.marks if "best" in (attrs.get("class") or "").split()]
    assert best and "19 địa phương" in best[0], page.marks
    assert page.search_box()["value"] == QUESTION_19  # the question stays in the box
    assert "<article" in r.text and "Xem toàn văn" in r.text


def test_result_link_opens_the_document_at_the_answer(client: TestClient):
    page = Page(client.get("/search", params={"q": QUESTION_19}).text)
    href = next(h for h, text in page.links if text == "Xem toàn văn")
    url = urlsplit(href)
    query = parse_qs(url.query)
    assert url.path.startswith("/documents/") and query["q"] == [QUESTION_19]
    assert url.fragment.startswith("s-") and url.fragment[2:] in query["s"]
    r = client.get(f"{url.path}?{url.query}")
    assert r.status_code == 200
    marks = Page(r.text).marks
    assert any(attrs.get("id") == url.fragment for attrs, _ in marks)
    assert any("19 địa phương" in text for _, text in marks)
    assert "← Quay lại kết quả" in r.text


def test_empty_question_gets_a_helpful_message(client: TestClient):
    for url in ("/search", "/search?q=", "/search?q=%20%20"):
        r = client.get(url)
        assert r.status_code == 200
        assert "Hãy nhập một câu hỏi" in r.text
        assert "<article" not in r.text


def test_query_is_escaped(client: TestClient):
    r = client.get("/search", params={"q": XSS})
    assert r.status_code == 200
    assert "<script>alert" not in r.text
    assert html.escape(XSS, quote=True) in r.text or "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert Page(r.text).search_box()["value"] == XSS


def test_document_page_marks_the_sentence(client: TestClient):
    answer = client.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]
    r = client.get(f"/documents/{answer['document_id']}", params={"s": answer["sentence_id"]})
    assert r.status_code == 200
    marks = Page(r.text).marks
    assert len(marks) == 1
    attrs, text = marks[0]
    assert attrs["id"] == f"s-{answer['sentence_id']}" and "19 địa phương" in text
    assert "Quay lại kết quả" not in r.text  # no question, no way back


def test_document_page_without_marks(client: TestClient):
    doc = client.get("/api/v1/documents").json()["documents"][0]
    r = client.get(f"/documents/{doc['id']}")
    assert r.status_code == 200
    assert "<mark" not in r.text and r.text.count("<p>") > 3


def test_unknown_document_is_a_404_page(client: TestClient):
    r = client.get("/documents/khong-co")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Không tìm thấy tài liệu này." in r.text and 'href="/"' in r.text
    r = client.get("/khong-co-trang-nay")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


def test_document_text_is_escaped(xss_client):
    client, doc = xss_client
    r = client.get(f"/documents/{doc.id}", params={"q": XSS})
    assert r.status_code == 200
    assert "<script>" not in r.text and "<img" not in r.text
    assert r.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # the text, the source and the search box
    assert "&lt;img src=x onerror=alert(1)&gt;" in r.text  # the title, from the file name
    r = client.get("/search", params={"q": "đoạn văn có mã nguy hiểm"})
    assert r.status_code == 200
    assert "<script>" not in r.text and "<img" not in r.text
    assert any("alert(1)" in text for _, text in Page(r.text).marks)


def test_stylesheet_is_served(client: TestClient):
    r = client.get("/static/style.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert "mark.best" in r.text


def test_pages_without_an_index_say_what_to_do(tmp_path: Path):
    with TestClient(create_app(tmp_path)) as client:
        r = client.get("/")
        assert r.status_code == 200 and "hoidap index" in r.text
        r = client.get("/search", params={"q": QUESTION_19})
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        assert "hoidap index" in r.text and "<article" not in r.text
        r = client.get("/documents/abc")
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        assert "hoidap index" in r.text


def test_a_question_typed_without_accents_is_answered_through_the_api(client: TestClient):
    question = "hai phong thiet lap quan he huu nghi hop tac voi bao nhieu dia phuong"
    by_post = client.post("/api/v1/search", json={"query": question, "top_k": 3})
    by_get = client.get("/api/v1/search", params={"q": question, "top_k": 3})
    assert by_post.status_code == by_get.status_code == 200
    assert "19 địa phương" in by_post.json()["answers"][0]["text"]
    assert by_get.json()["answers"][0] == by_post.json()["answers"][0]


def test_the_original_file_can_be_downloaded(client: TestClient):
    doc = client.get("/api/v1/documents").json()["documents"][0]
    detail = client.get(f"/api/v1/documents/{doc['id']}").json()
    assert detail["download_url"] == f"/documents/{doc['id']}/original"
    page = client.get(f"/documents/{doc['id']}")
    assert f'href="/documents/{doc["id"]}/original"' in page.text and "Tải tệp gốc" in page.text
    r = client.get(detail["download_url"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    name = doc["source"].rsplit("/", 1)[-1]
    assert r.headers["content-disposition"].startswith("attachment") and name in r.headers["content-disposition"]
    assert r.content == (ROOT / doc["source"]).read_bytes()
    assert "original" not in detail and str(ROOT) not in str(detail), "the server's paths stay private"
    for bad in ("khong-co", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"):
        r = client.get(f"/documents/{bad}/original")
        assert r.status_code == 404 and "root:" not in r.text


def test_a_file_changed_since_indexing_is_not_served_as_the_original(tmp_path: Path, embedder: Embedder):
    folder = tmp_path / "tai-lieu"
    folder.mkdir()
    (folder / "a.txt").write_text("Cầu Rồng dài 666 mét và có sáu làn xe.", encoding="utf-8")
    build_index(load_files([folder], []), tmp_path / "data", embedder)
    (folder / "a.txt").write_text("Nội dung đã khác.", encoding="utf-8")
    os.utime(folder / "a.txt", (time.time() + 60, time.time() + 60))
    with TestClient(create_app(tmp_path / "data")) as c:
        doc_id = c.get("/api/v1/documents").json()["documents"][0]["id"]
        r = c.get(f"/documents/{doc_id}/original")
        assert r.status_code == 410 and "đã thay đổi kể từ khi lập chỉ mục" in r.text
