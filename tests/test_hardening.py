"""Reliability and security of the web service: bad input, keys, limits, headers, logs, metrics, reloads.

Apps that need no model run on an empty or damaged data directory, so most of this costs no model load.
Tests that change the index work on a copy of the session's corpus index, never on it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
import unicodedata
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from limits import parse

from hoidap.index.build import build_index, update_index
from hoidap.index.documents import Document, content_hash, document_id
from hoidap.index.embeddings import Embedder
from hoidap.service.app import create_app
from hoidap.service.security import CONTENT_SECURITY_POLICY
from hoidap.service.settings import ConfigError, Settings

from .conftest import QUESTION_19, ROOT

KEY, OTHER_KEY = "khoa-thu-nghiem-1", "khoa-thu-nghiem-2"
AUTH = {"Authorization": f"Bearer {KEY}"}
FACT = "Con mèo tên Mimi của phòng hành chính thích ăn cá thu vào thứ Sáu."


def copy_index(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def assert_error(r, status: int, code: str | None = None) -> dict:
    """The API's error shape, with the expected status."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    error = r.json()["error"]
    assert error["message"] and (code is None or error["code"] == code), error
    return error


def assert_answers_question_19(client: TestClient) -> None:
    r = client.get("/api/v1/search", params={"q": QUESTION_19})
    assert r.status_code == 200 and "19 địa phương" in r.json()["answers"][0]["text"]


@pytest.fixture(scope="module")
def data_copy(corpus_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_index(corpus_data_dir, tmp_path_factory.mktemp("hardening") / "data")


@pytest.fixture(scope="module")
def client(data_copy: Path):
    """Keys configured, so reading needs one too; the poller checks often."""
    app = create_app(data_copy, settings=Settings(api_keys=(KEY, OTHER_KEY), reload_interval=0.1))
    with TestClient(app, headers=AUTH) as client:
        yield client


@pytest.fixture()
def no_index(tmp_path: Path):
    """An app on an empty data directory, with no keys: no model is loaded."""
    with TestClient(create_app(tmp_path, settings=Settings(reload_interval=0))) as client:
        yield client


# --- every bad input gets a 4xx and a message, never a 500 -------------------------------------------------

LONG = "a" * 60_000  # the longest a URL gets through the test client (and most proxies): the body takes 100,000
BAD_QUESTIONS = [
    ("", "invalid_query"), ("   \t ", "invalid_query"), (LONG, "invalid_request"),
    ("\x00\x01\x07\x1b", "invalid_query"), ("\u200b\ufeff", "invalid_query"),
]


@pytest.mark.parametrize("q, code", BAD_QUESTIONS, ids=["empty", "spaces", "long", "control", "invisible"])
def test_bad_questions(client: TestClient, q: str, code: str):
    assert_error(client.get("/api/v1/search", params={"q": q}), 422, code)
    assert_error(client.post("/api/v1/search", json={"query": q}), 422, code)


def test_100k_question(client: TestClient):
    error = assert_error(client.post("/api/v1/search", json={"query": "a" * 100_000}), 422, "invalid_request")
    assert "1000" in error["message"]


def test_invalid_utf8(client: TestClient):
    assert_error(client.get("/api/v1/search?q=%FF"), 422)
    assert_error(client.get("/api/v1/search?q=H%E1i%FF%FE"), 422)
    r = client.post("/api/v1/search", content=b'{"query": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert_error(r, r.status_code)


@pytest.mark.parametrize("body", [
    {"query": 5}, {"query": ["a"]}, {"query": None}, {"query": {"a": 1}}, {"top_k": 3},
    {"query": "x", "top_k": "x"}, {"query": "x", "top_k": 0}, {"query": "x", "top_k": -1},
    {"query": "x", "top_k": 10**9}, {"query": "x", "top_k": 2.5},
    [QUESTION_19], "a string", 42, None,
], ids=lambda b: json.dumps(b)[:30])
def test_wrong_json_types(client: TestClient, body):
    assert_error(client.post("/api/v1/search", json=body), 422, "invalid_request")


@pytest.mark.parametrize("content, content_type", [
    (b"not json at all", "application/json"), (b'{"query": ', "application/json"), (b"", "application/json"),
    (b"query=abc", "application/x-www-form-urlencoded"), (b"\x00\x01\x02", None),
])
def test_non_json_bodies(client: TestClient, content: bytes, content_type: str | None):
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/api/v1/search", content=content, headers=headers)
    assert 400 <= r.status_code < 500
    assert_error(r, r.status_code)


@pytest.mark.parametrize("top_k", ["0", "-1", str(10**9), "x", "1e3", ""])
def test_bad_top_k(client: TestClient, top_k: str):
    assert_error(client.get("/api/v1/search", params={"q": QUESTION_19, "top_k": top_k}), 422, "invalid_request")


@pytest.mark.parametrize("params", [{"offset": -1}, {"offset": 2**63}, {"limit": 0}, {"limit": 501}, {"offset": "x"}])
def test_bad_document_list_pages(client: TestClient, params: dict):
    assert_error(client.get("/api/v1/documents", params=params), 422, "invalid_request")


def test_document_list_past_the_end(client: TestClient):
    r = client.get("/api/v1/documents", params={"offset": 2**63 - 1})
    assert r.status_code == 200 and r.json()["documents"] == []


@pytest.mark.parametrize("q", [
    "🙂🔥 Hải Phòng 🚢", "<script>alert(1)</script>", "'; DROP TABLE documents; --", "\" OR 1=1 --",
    "Hải\x00 Phòng\x07 hợp tác", "%00%FF../../etc/passwd", "a" * 1000,
], ids=["emoji", "script", "sql", "sql2", "control-inside", "path", "max-length"])
def test_odd_but_valid_questions_are_answered(client: TestClient, q: str):
    for r in (client.get("/api/v1/search", params={"q": q}), client.post("/api/v1/search", json={"query": q})):
        assert r.status_code == 200, r.text[:300]
        assert r.json()["query"] == q and isinstance(r.json()["answers"], list)


def test_nfd_question_finds_the_same_answer(client: TestClient):
    r = client.post("/api/v1/search", json={"query": unicodedata.normalize("NFD", QUESTION_19)})
    assert r.status_code == 200 and "19 địa phương" in r.json()["answers"][0]["text"]


def test_unknown_routes_and_methods(client: TestClient):
    assert_error(client.get("/api/v1/khong-co"), 404, "not_found")
    assert_error(client.get("/api/v2/search"), 404, "not_found")
    assert_error(client.get("/api/v1/documents/khong-co"), 404, "not_found")
    r = client.put("/api/v1/search", json={"query": "x"})
    assert_error(r, 405, "method_not_allowed")
    assert "allow" in r.headers
    assert_error(client.delete("/api/v1/health"), 405, "method_not_allowed")
    assert_error(client.patch("/api/v1/documents"), 405, "method_not_allowed")
    r = client.get("/khong-co-trang-nay")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("url, status, text", [
    ("/search?q=%FF", 422, "không hợp lệ"),
    ("/search?q=" + LONG, 422, "Câu hỏi quá dài"),
    ("/search?q=%00%01", 422, "Hãy nhập một câu hỏi"),
    ("/search?q=abc&offset=x", 422, "không hợp lệ: offset"),
    ("/search?q=abc&offset=-1", 422, "không hợp lệ: offset"),
    ("/search?q=abc&offset=1000000000", 422, "không hợp lệ: offset"),
    ("/search?q=abc&since=2020-13-01", 422, "không hợp lệ: since"),
    ("/search?q=abc&since=0001-01-01", 422, "nằm ngoài khoảng"),
    ("/search?q=abc&format=doc", 422, "Không có định dạng doc"),
    ("/documents/x?s=abc", 422, "không hợp lệ"),
    ("/documents/%FF%FE", 404, "Không tìm thấy"),
    ("/documents/'%3B%20DROP%20TABLE%20documents%3B--", 404, "Không tìm thấy"),
])
def test_pages_answer_bad_input_with_a_page(client: TestClient, url: str, status: int, text: str):
    r = client.get(url)
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    assert text in r.text and 'href="/"' in r.text


def test_the_index_still_answers_after_all_that(client: TestClient):
    assert_answers_question_19(client)
    r = client.get("/search", params={"q": QUESTION_19})
    assert r.status_code == 200 and "19 địa phương" in r.text


def test_oversized_body_is_refused_before_reading(client: TestClient):
    body = b'{"query": "' + b"a" * (9 * 2**20) + b'"}'
    assert_error(client.post("/api/v1/search", content=body, headers={"content-type": "application/json"}),
                 413, "content_too_large")


# --- keys -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [None, "Bearer sai-khoa", "Bearer ", "Basic " + KEY, KEY,
                                           f"Bearer {KEY}x", "Bearer ключ".encode("utf-8")],
                         ids=["none", "wrong", "empty", "basic", "no-scheme", "longer", "non-ascii"])
def test_reading_needs_a_key_when_keys_are_configured(client: TestClient, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    keyless = TestClient(client.app)  # without the module client's key
    for r in (keyless.get("/api/v1/search?q=abc", headers=headers), keyless.get("/api/v1/documents", headers=headers),
              keyless.post("/api/v1/search", json={"query": "abc"}, headers=headers)):  # POST checks keys itself
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"


def test_any_configured_key_works(client: TestClient):
    for key in (KEY, OTHER_KEY):
        r = TestClient(client.app).get("/api/v1/documents", headers={"Authorization": f"bearer {key}"})
        assert r.status_code == 200 and r.json()["total"] >= 2


def test_health_pages_and_metrics_stay_open(client: TestClient):
    bare = TestClient(client.app)
    assert bare.get("/api/v1/health").json()["status"] == "ok"
    assert bare.get("/").status_code == 200
    assert bare.get("/metrics").status_code == 200


def test_writing_is_switched_off_without_keys(no_index: TestClient):
    for r in (no_index.post("/api/v1/documents", json={"title": "a", "text": "b"}, headers=AUTH),
              no_index.delete("/api/v1/documents/abc", headers=AUTH),
              no_index.post("/api/v1/admin/reload", headers=AUTH)):
        error = assert_error(r, 403, "forbidden")
        assert "HOIDAP_API_KEYS" in error["message"]


def test_writing_needs_a_key(client: TestClient):
    bare = TestClient(client.app)
    assert_error(bare.post("/api/v1/documents", json={"title": "a", "text": "b"}), 401, "unauthorized")
    assert_error(bare.delete("/api/v1/documents/abc", headers={"Authorization": "Bearer sai"}), 401, "unauthorized")
    assert_error(bare.post("/api/v1/admin/reload"), 401, "unauthorized")


def test_keys_from_a_file(tmp_path: Path):
    keys = tmp_path / "keys"
    keys.write_text("# các khoá của chatbot\nmot\n\n  hai  # khoá thứ hai\n", encoding="utf-8")
    settings = Settings.from_env({"HOIDAP_API_KEYS": "ba, mot", "HOIDAP_API_KEYS_FILE": str(keys)})
    assert settings.api_keys == ("ba", "mot", "hai")
    with pytest.raises(ConfigError, match="HOIDAP_API_KEYS_FILE"):
        Settings.from_env({"HOIDAP_API_KEYS_FILE": str(tmp_path / "missing")})


def test_settings_from_the_environment():
    default = Settings.from_env({})
    assert default.api_keys == () and default.rate_limit is None and default.reload_interval == 1.0
    assert default.max_queue == 16 and Settings.from_env({"HOIDAP_MAX_QUEUE": "8"}).max_queue == 8
    assert Settings.from_env({"HOIDAP_RATE_LIMIT": "60/minute"}).rate_limit == parse("60/minute")
    assert not default.log_queries and default.cors_origins == ()
    assert Settings.from_env({"HOIDAP_RATE_LIMIT": "off"}).rate_limit is None
    assert Settings.from_env({"HOIDAP_RATE_LIMIT": "0"}).rate_limit is None
    assert Settings.from_env({"HOIDAP_RELOAD_INTERVAL": "0.5"}).reload_interval == 0.5
    for name, value in (("HOIDAP_RATE_LIMIT", "nhanh"), ("HOIDAP_RELOAD_INTERVAL", "-1"),
                        ("HOIDAP_RELOAD_INTERVAL", "nan"), ("HOIDAP_MAX_QUEUE", "0"), ("HOIDAP_MAX_QUEUE", "nhiều")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})


# --- limits -----------------------------------------------------------------------------------------------

def test_rate_limit_per_key_and_per_address(tmp_path: Path):
    settings = Settings(api_keys=("a", "b"), rate_limit=parse("3/minute"), reload_interval=0)
    with TestClient(create_app(tmp_path, settings=settings)) as c:
        for _ in range(3):
            assert_error(c.get("/api/v1/documents", headers={"Authorization": "Bearer a"}), 503, "no_index")
        r = c.get("/api/v1/documents", headers={"Authorization": "Bearer a"})
        assert_error(r, 429, "too_many_requests")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert_error(c.get("/api/v1/documents", headers={"Authorization": "Bearer b"}), 503)  # its own budget
        for _ in range(3):
            assert_error(c.get("/api/v1/documents"), 401)
        assert_error(c.get("/api/v1/documents"), 429)
        # A made-up key counts against the address, so rotating them gains nothing.
        assert_error(c.get("/api/v1/documents", headers={"Authorization": "Bearer moi"}), 429)
        assert_error(c.get("/"), 429)
        for _ in range(5):  # monitoring and assets are never limited
            assert_error(c.get("/api/v1/health"), 503)
            assert c.get("/metrics").status_code == 200
            assert c.get("/static/style.css").status_code == 200


# --- headers, CORS, docs ----------------------------------------------------------------------------------

def test_security_headers_on_every_response(client: TestClient):
    bare = TestClient(client.app)
    for r in (client.get("/"), client.get("/search", params={"q": QUESTION_19}), client.get("/static/style.css"),
              client.get("/api/v1/search", params={"q": QUESTION_19}), client.get("/khong-co"),
              client.get("/api/v1/khong-co"), bare.get("/api/v1/documents"), client.get("/metrics"),
              client.get("/docs"), client.get("/openapi.json"), client.put("/api/v1/search")):
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"


def test_templates_have_no_inline_script_or_style():
    """What the CSP would block: inline scripts, event handler attributes, style attributes and elements."""
    for page in (ROOT / "templates").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), page
        assert not re.search(r"\son[a-z]+\s*=", text), page
        assert not re.search(r"<style|\sstyle\s*=|javascript:", text), page


def test_docs_are_served_locally(client: TestClient):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    scripts = re.findall(r'<script src="([^"]+)"', r.text)
    assert scripts and all(s.startswith("/") for s in scripts)  # nothing from another host
    for asset in scripts + re.findall(r'<link rel="stylesheet" href="([^"]+)"', r.text):
        assert client.get(asset).status_code == 200, asset
    schema = client.get("/openapi.json").json()
    assert "/api/v1/search" in schema["paths"] and "HTTPBearer" in schema["components"]["securitySchemes"]
    assert client.get("/redoc").status_code == 404


def test_cors_is_off_by_default(client: TestClient):
    r = client.get("/api/v1/health", headers={"Origin": "https://chat.example"})
    assert "access-control-allow-origin" not in r.headers
    r = client.options("/api/v1/search", headers={"Origin": "https://chat.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_for_configured_origins(tmp_path: Path):
    settings = Settings(cors_origins=("https://chat.example",), reload_interval=0)
    with TestClient(create_app(tmp_path, settings=settings)) as c:
        r = c.options("/api/v1/search", headers={"Origin": "https://chat.example",
                                                 "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://chat.example"
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = c.get("/api/v1/health", headers={"Origin": "https://chat.example"})
        assert r.headers["access-control-allow-origin"] == "https://chat.example"
        r = c.get("/api/v1/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


# --- observability ----------------------------------------------------------------------------------------

def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "hoidap.access"]


def test_one_access_line_per_request_without_the_question(client: TestClient, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="hoidap.access")
    secret = "câu hỏi riêng tư của tôi"
    client.get("/api/v1/search", params={"q": secret})
    client.post("/api/v1/search", json={"query": secret})
    client.get("/search", params={"q": secret})
    client.get("/api/v1/documents/khong-co")
    client.get("/khong-co/" + secret)
    lines = access_lines(caplog)
    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("GET", "/api/v1/search", 200), ("POST", "/api/v1/search", 200), ("GET", "/search", 200),
        ("GET", "/api/v1/documents/{doc_id}", 404), ("GET", "<unmatched>", 404)]
    assert all(line["duration_ms"] >= 0 and line["client"] == "testclient" for line in lines)
    assert secret not in caplog.text and "riêng" not in caplog.text


def test_questions_are_logged_only_when_asked(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="hoidap.access")
    with TestClient(create_app(tmp_path, settings=Settings(log_queries=True, reload_interval=0))) as c:
        c.get("/api/v1/search", params={"q": "câu hỏi\nthứ nhất"})
        c.post("/api/v1/search", json={"query": "câu hỏi thứ hai"})
    assert [line.get("query") for line in access_lines(caplog)] == ["câu hỏi\nthứ nhất", "câu hỏi thứ hai"]
    assert all("\n" not in r.getMessage() for r in caplog.records)  # one line each, whatever was asked


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    raise AssertionError(f"no {name}{labels} in metrics")


def test_metrics(client: TestClient):
    before = client.get("/metrics").text
    was = metric(before, "hoidap_http_requests_total", method="GET", route="/api/v1/search", status="200") \
        if 'route="/api/v1/search",status="200"' in before else 0
    client.get("/api/v1/search", params={"q": QUESTION_19})
    client.get("/khong-co")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric(text, "hoidap_http_requests_total", method="GET", route="/api/v1/search", status="200") == was + 1
    assert metric(text, "hoidap_http_requests_total", method="GET", route="<unmatched>", status="404") >= 1
    assert metric(text, "hoidap_http_request_duration_seconds_count", route="/api/v1/search") >= 1
    health = client.get("/api/v1/health").json()
    assert metric(text, "hoidap_index_documents") == health["documents"]
    assert metric(text, "hoidap_index_passages") == health["passages"]
    assert time.time() - 3600 < metric(text, "hoidap_index_loaded_timestamp_seconds") <= time.time()


# --- a damaged index, a first index, a new build ----------------------------------------------------------

def test_damaged_index_starts_and_recovers(corpus_data_dir: Path, tmp_path: Path, embedder: Embedder):
    data_dir = copy_index(corpus_data_dir, tmp_path / "data")
    (data_dir / "current" / "index.sqlite3").write_bytes(b"")
    with TestClient(create_app(data_dir, settings=Settings(reload_interval=0.1))) as c:
        error = assert_error(c.get("/api/v1/health"), 503, "no_index")
        assert "damaged" in error["message"] and "hoidap index" in error["message"]
        r = c.get("/")
        assert r.status_code == 200 and "hoidap index" in r.text and "Chỉ mục bị hỏng" in r.text
        r = c.get("/search", params={"q": QUESTION_19})
        assert r.status_code == 503 and "hoidap index" in r.text
        assert_error(c.get("/api/v1/search", params={"q": QUESTION_19}), 503, "no_index")
        # A good build appears: served within moments, with no restart.
        doc = Document(document_id("phuc-hoi"), "Phục hồi", "phuc-hoi", "txt", FACT, content_hash(FACT))
        build_index([doc], data_dir, embedder)
        wait_for(lambda: c.get("/api/v1/health").status_code == 200)
        assert c.get("/api/v1/health").json()["documents"] == 1
        assert "Mimi" in c.get("/api/v1/search", params={"q": "Con mèo của phòng hành chính tên gì?"}).text


def test_new_build_is_served_without_a_failed_request(client: TestClient, data_copy: Path, embedder: Embedder):
    """Two clients keep asking while a build commits and the poller swaps it in: every answer is a 200."""
    documents = client.get("/api/v1/health").json()["documents"]
    text = "Phòng họp tầng ba được sơn lại màu xanh lá cây vào mùa hè năm ngoái."
    doc = Document(document_id("hot-reload"), "Nạp nóng", "hot-reload", "txt", text, content_hash(text))
    swapped = threading.Event()
    statuses: list[int] = []

    def ask() -> None:
        while not swapped.is_set() and len(statuses) < 2000:
            statuses.append(client.get("/api/v1/search", params={"q": QUESTION_19, "top_k": 1}).status_code)

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for t in askers:
        t.start()
    update_index(data_copy, embedder, [doc], [])
    wait_for(lambda: client.get("/api/v1/health").json()["documents"] == documents + 1)
    time.sleep(0.2)  # and a few requests on the new build
    swapped.set()
    for t in askers:
        t.join()
    assert set(statuses) == {200} and len(statuses) > 4
    assert client.get(f"/api/v1/documents/{doc.id}").status_code == 200
    assert_answers_question_19(client)


def point_current_at(data_dir: Path, target: str) -> None:
    """What a build's commit does: replace the ``current`` link atomically."""
    link = data_dir / ".current-test"
    link.symlink_to(target)
    os.replace(link, data_dir / "current")


def test_build_for_another_model_is_refused_and_the_old_one_kept(client: TestClient, data_copy: Path,
                                                                 caplog: pytest.LogCaptureFixture):
    served = os.readlink(data_copy / "current")
    before = client.get("/api/v1/health").json()
    foreign = data_copy / "builds" / "another-model"
    shutil.copytree(data_copy / "current", foreign)
    with sqlite3.connect(foreign / "index.sqlite3") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'model'", (json.dumps("another/model"),))
    try:
        point_current_at(data_copy, "builds/another-model")
        wait_for(lambda: "another/model" in caplog.text)
        assert "still serving the previous one" in caplog.text
        assert client.get("/api/v1/health").json() == before
        assert_answers_question_19(client)
        assert "another/model" in assert_error(client.post("/api/v1/admin/reload"), 503)["message"]
    finally:
        point_current_at(data_copy, served)
        assert client.post("/api/v1/admin/reload").json() == before
        shutil.rmtree(foreign)


# --- writing through the API (index.build.update_index) ---------------------------------------------------

def test_add_search_replace_and_remove_a_document(client: TestClient):
    before = client.get("/api/v1/health").json()["documents"]
    r = client.post("/api/v1/documents", json={"title": "Thú cưng", "text": FACT, "source": "noi-bo/meo.txt"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] == document_id("noi-bo/meo.txt") and created["documents"] == before + 1
    answer = client.post("/api/v1/search", json={"query": "Con mèo Mimi thích ăn gì?"}).json()["answers"][0]
    assert answer["document_id"] == created["id"] and "cá thu" in answer["text"]

    replaced = FACT.replace("cá thu", "cá ngừ")
    r = client.post("/api/v1/documents", json={"title": "Thú cưng", "text": replaced, "source": "noi-bo/meo.txt"})
    assert r.status_code == 201 and r.json()["documents"] == before + 1
    assert client.get(f"/api/v1/documents/{created['id']}").json()["text"] == replaced

    assert client.delete(f"/api/v1/documents/{created['id']}").status_code == 204
    assert_error(client.get(f"/api/v1/documents/{created['id']}"), 404)
    assert_error(client.delete(f"/api/v1/documents/{created['id']}"), 404, "not_found")
    assert client.get("/api/v1/health").json()["documents"] == before
    assert_answers_question_19(client)


def test_document_without_source_gets_a_new_one(client: TestClient):
    text = unicodedata.normalize("NFD", "Tài liệu thử nghiệm không có nguồn.\r\nDòng thứ hai.")
    r = client.post("/api/v1/documents", json={"title": "Không nguồn", "text": text})
    assert r.status_code == 201
    doc = client.get(f"/api/v1/documents/{r.json()['id']}").json()
    assert doc["source"].startswith("api:") and doc["format"] == "txt"
    assert doc["text"] == unicodedata.normalize("NFC", text).replace("\r\n", "\n")  # stored as displayed
    assert client.delete(f"/api/v1/documents/{doc['id']}").status_code == 204


@pytest.mark.parametrize("body", [
    {"title": "a", "text": ""}, {"title": "a", "text": " \n\t "}, {"title": "a", "text": "***"}, {"title": "", "text": "b"},
    {"title": " ", "text": "b"}, {"text": "b"}, {"title": "a"}, {"title": "a", "text": 5},
    {"title": "a", "text": "b", "metadata": [1]}, {"title": "a", "text": "x" * 2_000_001}, ["a", "b"],
], ids=["empty", "spaces", "symbols", "no-title", "blank-title", "title-missing", "text-missing", "number", "metadata-list",
        "too-long", "array"])
def test_bad_documents_are_refused(client: TestClient, body):
    assert_error(client.post("/api/v1/documents", json=body), 422, "invalid_request")


def test_first_document_creates_the_index(tmp_path: Path):
    """An app started with no index serves the one its first API document creates (loading the model then)."""
    with TestClient(create_app(tmp_path, settings=Settings(api_keys=(KEY,), reload_interval=0)), headers=AUTH) as c:
        assert_error(c.get("/api/v1/health"), 503, "no_index")
        assert_error(c.delete("/api/v1/documents/abc"), 503, "no_index")
        r = c.post("/api/v1/documents", json={"title": "Thú cưng", "text": FACT})
        assert r.status_code == 201 and r.json()["documents"] == 1
        assert c.get("/api/v1/health").json()["documents"] == 1
        assert "Mimi" in c.get("/api/v1/search", params={"q": "Con mèo tên gì?"}).json()["answers"][0]["text"]
        assert c.get("/").status_code == 200 and "Chưa có tài liệu" not in c.get("/").text


def test_admin_reload_answers_the_health(client: TestClient):
    r = client.post("/api/v1/admin/reload")
    assert r.status_code == 200
    assert r.json() == client.get("/api/v1/health").json()


def test_a_date_no_clock_can_express_is_a_422_not_a_500(client: TestClient):
    for r in (client.post("/api/v1/search", json={"query": "FDI", "modified_after": "0001-01-01T00:00:00"}),
              client.get("/api/v1/search", params={"q": "FDI", "since": "0001-01-01"})):
        assert r.status_code == 422 and "out of range" in r.json()["error"]["message"]
    assert client.get("/api/v1/search", params={"q": "FDI", "since": "2000-01-01"}).json()["answers"]
    assert not client.get("/api/v1/search", params={"q": "FDI", "since": "2999-01-01"}).json()["answers"]


def test_a_change_is_visible_on_every_worker_when_it_returns(corpus_data_dir: Path, tmp_path: Path):
    """Two apps on one data dir, as two workers, with no poller: what one adds or removes, the other
    answers with at once (it loads the new build on its next request)."""
    data = copy_index(corpus_data_dir, tmp_path / "data")
    settings = Settings(api_keys=(KEY,), reload_interval=0)
    with TestClient(create_app(data, settings=settings), headers=AUTH) as one, \
            TestClient(create_app(data, settings=settings), headers=AUTH) as other:
        added = one.post("/api/v1/documents", json={"title": "Cầu", "text": "Cầu Hoàng Văn Thụ dài 1.400 mét."})
        assert added.status_code == 201
        doc_id = added.json()["id"]
        assert other.get(f"/api/v1/documents/{doc_id}").status_code == 200
        best = other.get("/api/v1/search", params={"q": "Cầu Hoàng Văn Thụ dài bao nhiêu mét?"}).json()["answers"][0]
        assert best["document_id"] == doc_id
        assert one.delete(f"/api/v1/documents/{doc_id}").status_code == 204
        assert other.get(f"/api/v1/documents/{doc_id}").status_code == 404


def test_search_filters_have_one_set_of_names_and_mistakes_are_422(client: TestClient):
    """POST takes the query string's filter names too; a field it does not know, or a format no document can
    have, is a 422 rather than a silently unfiltered (or empty) answer."""
    by_post = client.post("/api/v1/search", json={"query": "FDI", "source": "upload:"})
    assert by_post.status_code == 200 and by_post.json()["results"] == []
    assert client.post("/api/v1/search", json={"query": "FDI", "format": ["txt"], "since": "2000-01-01T00:00:00"}
                       ).json()["answers"]
    assert_error(client.post("/api/v1/search", json={"query": "FDI", "sauce": "corpus/"}), 422, "invalid_request")
    for r in (client.post("/api/v1/search", json={"query": "FDI", "formats": ["doc"]}),
              client.get("/api/v1/search", params={"q": "FDI", "format": "doc"})):
        assert_error(r, 422, "invalid_query")
        assert "docx, htm, html, md, pdf, txt" in r.json()["error"]["message"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_is_a_507_that_says_so(corpus_data_dir: Path):
    """Whatever route meets a full disk (an upload's copy, a build): the API answers a JSON 507 and a browser a
    page in Vietnamese, never a bare 500. The write is real: /dev/full answers every write with ENOSPC."""
    app = create_app(corpus_data_dir)

    def write_to_a_full_disk() -> None:
        Path("/dev/full").write_bytes(b"x")

    app.add_api_route("/api/v1/full-disk", write_to_a_full_disk)
    app.add_api_route("/full-disk", write_to_a_full_disk)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert_error(c.get("/api/v1/full-disk"), 507, "disk_full")
        page = c.get("/full-disk")
        assert page.status_code == 507 and page.headers["content-type"].startswith("text/html")
        assert "Ổ đĩa của máy chủ đã đầy" in page.text and "content-security-policy" in page.headers
        assert "19 địa phương" in c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]["text"]
