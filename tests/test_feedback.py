"""Feedback on answers (``POST /api/v1/feedback``): kept apart from the index, exported as a question set that
``hoidap eval`` runs on. Real app, real index, real SQLite file, the real command line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hoidap.service.app import create_app
from hoidap.service.settings import Settings

from .conftest import QUESTION_19, ROOT

KEY = "khoa-phan-hoi-thu-nghiem"
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
