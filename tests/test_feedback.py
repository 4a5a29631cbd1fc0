"""Feedback on answers (``POST /api/v1/feedback``, the pages' forms, the MCP tool elsewhere): kept apart from the
index, listed on /admin/feedback, exported as a question set that ``hoidap eval`` runs on. Real app, real index,
real SQLite file, the real command line."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hoidap.service.app import create_app
from hoidap.service.feedback import FeedbackStore
from hoidap.service.settings import Settings

from .conftest import QUESTION_19, ROOT

KEY = "khoa-phan-hoi-thu-nghiem"
PASSWORD = "mat-khau-quan-tri-phan-hoi"
HOIDAP = ROOT / ".venv" / "bin" / "hoidap"


@pytest.fixture()
def data(corpus_data_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"  # without the feedback other tests gave on the shared index (the browser test's)
    shutil.copytree(corpus_data_dir, target, symlinks=True, ignore=shutil.ignore_patterns("feedback.sqlite3*"))
    return target


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(HOIDAP), *args], capture_output=True, text=True, timeout=300)


def test_feedback_is_kept_through_rebuilds_and_removals_and_becomes_an_eval_set(data: Path, tmp_path: Path):
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(create_app(data, settings=Settings(api_keys=(KEY,), reload_interval=0)), headers=auth) as c:
        best = c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]
        given = {"query": QUESTION_19, "document_id": best["document_id"], "sentence_id": best["sentence_id"],
                 "verdict": "right", "comment": "Đúng, <b>19</b> địa phương."}
        assert c.post("/api/v1/feedback", json=given, headers={"Authorization": ""}).status_code == 401
        assert c.post("/api/v1/feedback", json=given).status_code == 201
        other = c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][1]
        assert c.post("/api/v1/feedback", json=given | {"sentence_id": other["sentence_id"],
                                                          "document_id": other["document_id"],
                                                          "verdict": "wrong"}).status_code == 201
        for bad, status in (({"verdict": "maybe"}, 422), ({"sentence_id": 10**6}, 404), ({"colour": "x"}, 422),
                            ({"comment": "x" * 1001}, 422), ({"query": ""}, 422)):
            r = c.post("/api/v1/feedback", json=given | bad)
            assert r.status_code == status and "error" in r.json(), (bad, r.text)
        # a rebuild (a new document) and the removal of the answered document keep the feedback
        assert c.post("/api/v1/documents", json={"title": "Cầu", "text": "Cầu Rồng dài 666 mét."}).status_code == 201
        assert c.delete(f"/api/v1/documents/{best['document_id']}").status_code == 204

    listed = cli("feedback", "list", "--json", "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["verdict"] for r in rows] == ["wrong", "right"] and rows[1]["answer"] == best["text"]
    assert rows[1]["sender"].startswith("key:") and KEY not in listed.stdout, "a fingerprint, never the key"
    assert rows[1]["comment"] == "Đúng, <b>19</b> địa phương."

    exported = tmp_path / "phan-hoi.json"
    result = cli("feedback", "export", str(exported), "--data-dir", str(data))
    assert result.returncode == 0 and "wrote 1 confirmed questions" in result.stdout, result.stderr
    squad = json.loads(exported.read_text(encoding="utf-8"))
    qa = squad["data"][0]["paragraphs"][0]["qas"][0]
    assert qa["question"] == QUESTION_19 and qa["answers"][0]["text"] == best["text"]
    evaluated = cli("eval", str(exported), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)
    assert metrics["questions"] == 1 and metrics["answer_at_1"] == 1.0


def test_feedback_is_rate_limited_like_searches(data: Path):
    from limits import parse

    with TestClient(create_app(data, settings=Settings(reload_interval=0, rate_limit=parse("3/minute")))) as c:
        best = c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]
        given = {"query": QUESTION_19, "document_id": best["document_id"], "sentence_id": best["sentence_id"],
                 "verdict": "wrong"}
        statuses = [c.post("/api/v1/feedback", json=given).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]  # the search was the first of three
        assert c.post("/feedback", data={"token": "x", "verdict": "wrong"}).status_code == 429


def test_feedback_needs_no_key_when_reading_needs_none(data: Path):
    with TestClient(create_app(data, settings=Settings(reload_interval=0))) as c:
        best = c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]
        r = c.post("/api/v1/feedback", json={"query": QUESTION_19, "document_id": best["document_id"],
                                             "sentence_id": best["sentence_id"], "verdict": "wrong"})
        assert r.status_code == 201 and r.json()["id"] >= 1
        assert c.post("/api/v1/feedback", content=b"{not json", headers={"content-type": "application/json"}
                      ).status_code == 422
    assert (data / "feedback.sqlite3").exists() and not any((data / "builds").glob("*/feedback.sqlite3"))


def test_the_page_form_records_only_what_its_signed_token_names(data: Path):
    with TestClient(create_app(data, settings=Settings(reload_interval=0))) as c:
        page = c.get("/search", params={"q": QUESTION_19})
        token = page.text.split('name="token" value="')[1].split('"')[0]
        back = f"/search?q={QUESTION_19}"
        r = c.post("/feedback", data={"token": token, "verdict": "right", "back": back}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("&phan_hoi=1")
        assert "phản hồi của bạn đã được ghi nhận" in c.get(r.headers["location"]).text
        for forged in ("", token[:-2] + "xx", "abc"):
            r = c.post("/feedback", data={"token": forged, "verdict": "wrong", "back": back})
            assert r.status_code in (403, 422) and r.headers["content-type"].startswith("text/html")
        elsewhere = c.post("/feedback", data={"token": token, "verdict": "wrong", "back": "https://evil.example/"},
                           follow_redirects=False)
        assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/"
    listed = json.loads(cli("feedback", "list", "--json", "--data-dir", str(data)).stdout)
    assert [r["verdict"] for r in listed] == ["wrong", "right"] and all(r["query"] == QUESTION_19 for r in listed)


def token_of(html: str, after: str = "<body") -> str:
    """The first feedback form's token on a page, after the text ``after``."""
    return html.split(after, 1)[1].split('name="token" value="')[1].split('"')[0]


def test_a_phrase_named_by_offsets_is_the_answer(data: Path):
    with TestClient(create_app(data, settings=Settings(reload_interval=0))) as c:
        best = c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]
        text = c.get(f"/api/v1/documents/{best['document_id']}").json()["text"]
        start = text.index("19 địa phương")
        given = {"query": QUESTION_19, "document_id": best["document_id"], "verdict": "answer"}
        r = c.post("/api/v1/feedback", json=given | {"start": start, "end": start + len("19 địa phương")})
        assert r.status_code == 201, r.text
        for bad, status in (({}, 422), ({"start": start, "end": start + 2, "sentence_id": 1}, 422),
                            ({"start": start}, 422), ({"start": start + 5, "end": start}, 404),
                            ({"start": 0, "end": len(text) + 1}, 404), ({"start": 0, "end": 5000}, 404)):
            r = c.post("/api/v1/feedback", json=given | bad)
            assert r.status_code == status and "error" in r.json(), (bad, r.text)
    row = FeedbackStore(data).latest(1)[0]
    assert (row.answer, row.verdict, row.sentence_id) == ("19 địa phương", "answer", best["sentence_id"])
    squad = run_export(data)
    assert squad["data"][0]["paragraphs"][0]["qas"][0]["answers"] == [{"text": "19 địa phương",
                                                                       "answer_start": start}]


def run_export(data: Path) -> dict:
    out = data.parent / "export.json"
    result = cli("feedback", "export", str(out), "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text(encoding="utf-8"))


def test_the_latest_verdict_decides_what_is_confirmed(data: Path):
    with TestClient(create_app(data, settings=Settings(reload_interval=0))) as c:
        best = c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]
        given = {"query": QUESTION_19, "document_id": best["document_id"], "sentence_id": best["sentence_id"]}
        for verdict in ("right", "wrong"):
            assert c.post("/api/v1/feedback", json=given | {"verdict": verdict}).status_code == 201
    assert FeedbackStore(data).confirmed() == []
    assert run_export(data)["data"][0]["paragraphs"] == []


def test_questions_are_kept_only_when_logging_is_on(data: Path):
    unanswerable = "Giá vé máy bay từ Hà Nội đi Paris tháng sau là bao nhiêu?"
    with TestClient(create_app(data, settings=Settings(reload_interval=0))) as c:
        assert c.get("/api/v1/search", params={"q": unanswerable}).json()["answered"] is False
        assert c.get("/search", params={"q": QUESTION_19}).status_code == 200
    assert not (data / "feedback.sqlite3").exists(), "nothing said, nothing logged: no file"

    with TestClient(create_app(data, settings=Settings(reload_interval=0, log_queries=True))) as c:
        for question in (unanswerable, unanswerable.upper() + "  ", QUESTION_19):
            assert c.get("/api/v1/search", params={"q": question}).status_code == 200
        assert c.post("/api/v1/search", json={"query": QUESTION_19}).status_code == 200
        assert c.get("/api/v1/search", params={"q": QUESTION_19, "offset": 5}).status_code == 200  # a next page
        page = c.get("/search", params={"q": unanswerable})
        assert "Báo cho người quản trị" in page.text  # the documents did not answer: staff may report it
        report = c.post("/feedback", data={"token": token_of(page.text, "Báo câu hỏi"), "verdict": "unanswered",
                                           "back": f"/search?q={unanswerable}"}, follow_redirects=False)
        assert report.status_code == 303 and report.headers["location"].endswith("&phan_hoi=1")
        answered_page = c.get("/search", params={"q": QUESTION_19}).text
        assert "Báo cho người quản trị" not in answered_page
    store = FeedbackStore(data)
    unanswered = store.unanswered()
    assert [(a.count, a.reported) for a in unanswered] == [(3, 1)], unanswered  # 2 API + page, and a report
    most = {a.query: (a.count, a.answered) for a in store.most_asked()}
    assert most == {unanswerable: (3, 0), QUESTION_19: (3, 3)}, most


def test_the_admin_page_lists_filters_and_downloads_the_feedback(data: Path):
    settings = Settings(reload_interval=0, admin_password=PASSWORD, api_keys=(KEY,))
    with TestClient(create_app(data, settings=settings), headers={"Authorization": f"Bearer {KEY}"}) as c:
        answers = c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"]
        for answer, verdict, comment in ((answers[0], "right", ""), (answers[1], "wrong", "<script>x</script>")):
            assert c.post("/api/v1/feedback", json={"query": QUESTION_19, "document_id": answer["document_id"],
                                                    "sentence_id": answer["sentence_id"], "verdict": verdict,
                                                    "comment": comment}).status_code == 201
        r = c.get("/admin/feedback", params={"verdict": "wrong"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/admin?next=")
        assert c.get("/admin/feedback.csv").status_code == 401
        assert c.post("/admin/login", data={"password": PASSWORD}).status_code == 200

        page = c.get("/admin/feedback")
        assert page.status_code == 200 and "Phản hồi mới nhất (2)" in page.text
        assert "&lt;script&gt;x&lt;/script&gt;" in page.text and "<script>x" not in page.text
        assert "Câu hỏi bị trả lời sai" in page.text and "HOIDAP_LOG_QUERIES=1" in page.text
        assert f"/documents/{answers[1]['document_id']}?" in page.text
        assert "Phản hồi mới nhất (1)" in c.get("/admin/feedback", params={"verdict": "wrong"}).text
        assert "Phản hồi mới nhất (0)" in c.get("/admin/feedback", params={"until": "2020-01-01"}).text
        assert c.get("/admin/feedback", params={"verdict": "maybe"}).status_code == 422

        download = c.get("/admin/feedback.csv", params={"verdict": "right"})
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert [(r["verdict"], r["query"], r["removed"]) for r in rows] == [("right", QUESTION_19, "0")]

        # removed from the index since: kept, and marked
        assert c.delete(f"/api/v1/documents/{answers[0]['document_id']}").status_code == 204
        assert "tài liệu đã bị xoá khỏi chỉ mục" in c.get("/admin/feedback").text
        rows = list(csv.DictReader(io.StringIO(c.get("/admin/feedback.csv").content.decode("utf-8-sig"))))
        assert {r["removed"] for r in rows if r["document_id"] == answers[0]["document_id"]} == {"1"}


def test_the_document_page_marks_another_sentence_as_the_answer(data: Path):
    with TestClient(create_app(data, settings=Settings(reload_interval=0))) as c:
        best = c.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]
        url = f"/documents/{best['document_id']}"
        assert "Chọn câu trả lời" not in c.get(url).text  # no question: nothing to mark
        offer = c.get(url, params={"q": QUESTION_19}).text
        assert "Chọn câu trả lời" in offer and "Đây là câu trả lời" not in offer
        choosing = c.get(url, params={"q": QUESTION_19, "chon": 1}).text
        assert choosing.count('name="sentence_id"') > 5
        token = token_of(choosing)
        back = f"{url}?q={QUESTION_19}"
        r = c.post("/feedback", data={"token": token, "verdict": "answer", "sentence_id": 2, "back": back},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("&s=2&phan_hoi=1#s-2")
        thanked = c.get(r.headers["location"])
        assert 'mark id="s-2"' in thanked.text and "đã được ghi nhận là câu trả lời" in thanked.text
        for bad in ({"verdict": "right", "sentence_id": 2}, {"verdict": "answer"}):  # not what this form gives
            assert c.post("/feedback", data={"token": token, "back": back} | bad).status_code == 422
        assert c.post("/feedback", data={"token": token, "verdict": "answer", "sentence_id": 10**6,
                                         "back": back}).status_code == 404
    row = FeedbackStore(data).latest(1)[0]
    assert (row.verdict, row.sentence_id, row.sender, row.query) == ("answer", 2, "page", QUESTION_19)


def test_a_first_version_database_is_kept_and_gains_the_new_verdict(data: Path):
    old = sqlite3.connect(data / "feedback.sqlite3")
    old.execute("""CREATE TABLE feedback (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, query TEXT NOT NULL, document_id TEXT NOT NULL,
        sentence_id INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, answer TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('right', 'wrong')), comment TEXT NOT NULL DEFAULT '', sender TEXT)""")
    old.execute("INSERT INTO feedback VALUES (1, '2026-11-30T10:00:00+00:00', 'q', 'd', 0, 0, 3, 'abc', 'right', '', "
                "NULL)")
    old.commit()
    old.close()
    store = FeedbackStore(data)
    assert [r.answer for r in store.latest()] == ["abc"]
    store.record({"at": "2026-12-01T10:00:00+00:00", "query": "q", "document_id": "d", "sentence_id": 1, "start": 3,
                  "end": 5, "answer": "de", "verdict": "answer", "comment": "", "sender": None})
    assert [(r.id, r.verdict) for r in store.latest()] == [(2, "answer"), (1, "right")]
    assert [r.answer for r in store.confirmed()] == ["abc", "de"]


WRITER = """
import sys
from pathlib import Path
from hoidap.service.feedback import FeedbackStore
store = FeedbackStore(Path(sys.argv[1]))
for i in range(1_000_000):
    n = store.record({"at": "2026-12-05T10:00:00+00:00", "query": f"câu hỏi {i}", "document_id": "d",
                      "sentence_id": 0, "start": 0, "end": 1, "answer": "x", "verdict": "wrong", "comment": "",
                      "sender": None})
    print(n, flush=True)
"""


def test_feedback_survives_kill_9_in_the_middle_of_writing(tmp_path: Path):
    import os
    import signal
    import sys

    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    acknowledged = 0
    while acknowledged < 300:
        acknowledged = int(writer.stdout.readline())
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    store = FeedbackStore(tmp_path)
    assert store.count() >= acknowledged, "every row the writer was told is kept is there"
    with sqlite3.connect(tmp_path / "feedback.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.record(store.latest(1)[0].model_dump(exclude={"id"}))  # and it takes new rows
