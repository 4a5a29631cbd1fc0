"""Saying when the documents do not answer (issue 14): the engine, the API, the page and the CLI agree.

Real model, real index of corpus/ (the fixtures of conftest.py), no mocks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hoidap.index import confidence
from hoidap.index.errors import HoidapError, QueryError
from hoidap.service.app import create_app
from hoidap.service.pages import PAGE_SIZE

from .conftest import QUESTION_19, QUESTION_FDI
from .test_pages import Page

HOIDAP = str(Path(sys.executable).parent / "hoidap")
UNANSWERABLE = ["Thủ đô của Pháp là gì?", "xyzzy qwerty"]
ANSWERABLE = [(QUESTION_19, "19 địa phương"), (QUESTION_FDI, "7,63 tỷ USD")]
SEVERAL = [QUESTION_19, QUESTION_FDI, "hai phong thiet lap quan he huu nghi hop tac voi bao nhieu dia phuong",
           "Cầu Hoàng Văn Thụ dài bao nhiêu km?", "Hoạt động ngoại giao văn hóa của Hải Phòng",
           "Hải Phòng đón những đoàn cấp cao nào?", "Thủ đô của Pháp là gì?"]


@pytest.fixture(scope="module")
def client(corpus_data_dir: Path):
    with TestClient(create_app(corpus_data_dir)) as client:
        yield client


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_the_engine_says_no_answer(engine, question):
    response = engine.search(question)
    assert response.answered is False
    assert response.answers and all(a.confidence < response.min_confidence for a in response.answers)
    assert not [h for r in response.results for h in r.highlights], "nothing is marked as an answer"


@pytest.mark.parametrize(("question", "needle"), ANSWERABLE)
def test_the_engine_answers_with_confidence(engine, question, needle):
    response = engine.search(question)
    assert response.answered is True and needle in response.answers[0].text
    assert response.answers[0].confidence >= response.min_confidence == confidence.DEFAULT_MIN_CONFIDENCE
    assert all(0.0 <= a.confidence <= 1.0 for a in response.answers)
    best = [h for r in response.results for h in r.highlights if h.best]
    assert len(best) == 1 and best[0].confidence == response.answers[0].confidence
    assert all(h.confidence >= response.min_confidence for r in response.results for h in r.highlights)


def test_the_threshold_can_be_set_per_search_and_by_environment(engine, corpus_data_dir, embedder, monkeypatch):
    assert engine.search(QUESTION_19, min_confidence=1.0).answered is False
    assert engine.search(UNANSWERABLE[0], min_confidence=0.0).answered is True
    with pytest.raises(QueryError):
        engine.search(QUESTION_19, min_confidence=1.5)
    monkeypatch.setenv("HOIDAP_MIN_CONFIDENCE", "0.999")
    assert confidence.threshold_from_env() == 0.999
    monkeypatch.setenv("HOIDAP_MIN_CONFIDENCE", "sure")
    with pytest.raises(HoidapError, match="HOIDAP_MIN_CONFIDENCE"):
        confidence.threshold_from_env()


@pytest.mark.parametrize("question", SEVERAL)
def test_the_best_answer_does_not_depend_on_top_k(engine, question):
    responses = [engine.search(question, top_k=k) for k in (1, 5, 50)]
    firsts = {(r.answers[0].sentence_id, r.answers[0].confidence, r.answered) for r in responses}
    assert len(firsts) == 1, firsts
    for r in responses:  # the best answer's passage is always shown
        assert r.answers[0].passage_id in [x.passage_id for x in r.results]


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_the_api_says_no_answer(client, question):
    for body in (client.post("/api/v1/search", json={"query": question}).json(),
                 client.get("/api/v1/search", params={"q": question}).json()):
        assert body["answered"] is False and body["answers"][0]["confidence"] < body["min_confidence"]
        assert not [h for r in body["results"] for h in r["highlights"]]


@pytest.mark.parametrize(("question", "needle"), ANSWERABLE)
def test_the_api_answers(client, question, needle):
    body = client.post("/api/v1/search", json={"query": question}).json()
    assert body["answered"] is True and needle in body["answers"][0]["text"]
    assert client.post("/api/v1/search", json={"query": question, "min_confidence": 1.0}).json()["answered"] is False
    assert client.get("/api/v1/search", params={"q": question, "min_confidence": 1}).json()["answered"] is False
    assert client.post("/api/v1/search", json={"query": question, "min_confidence": 2}).status_code == 422


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_the_page_says_no_answer(client, question):
    r = client.get("/search", params={"q": question})
    assert r.status_code == 200
    page = Page(r.text)
    assert "Không tìm thấy câu trả lời trong tài liệu" in r.text and "Các đoạn có thể liên quan" in r.text
    assert "Câu trả lời phù hợp nhất" not in r.text and "best-answer" not in r.text
    assert page.marks == [], "no sentence is marked as an answer"
    assert "<article" in r.text, "the closest passages are still shown"
    api = client.get("/api/v1/search", params={"q": question, "top_k": PAGE_SIZE}).json()  # the same response
    assert len([h for h, text in page.links if text == "Xem toàn văn"]) == len(api["results"])
    links = [h for h, text in page.links if text == "Xem toàn văn"]
    assert all("&s=" not in h and "s=" not in h.split("?")[1].replace("q=", "") for h in links), "no sentence marked"


@pytest.mark.parametrize(("question", "needle"), ANSWERABLE)
def test_the_page_answers(client, question, needle):
    r = client.get("/search", params={"q": question})
    page = Page(r.text)
    best = [text for attrs, text in page.marks if "best" in (attrs.get("class") or "").split()]
    assert best and needle in best[0] and "Câu trả lời phù hợp nhất" in r.text and "độ tin cậy" in r.text
    assert "Không tìm thấy câu trả lời" not in r.text


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HOIDAP, *args], capture_output=True, text=True, timeout=300)


def test_the_cli_says_no_answer_and_answers(corpus_data_dir):
    for question in UNANSWERABLE:
        proc = run("ask", question, "--data-dir", str(corpus_data_dir))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("Không tìm thấy câu trả lời trong tài liệu") and "Trả lời:" not in proc.stdout
        assert "Các đoạn có thể liên quan" in proc.stdout
        body = json.loads(run("ask", "--json", question, "--data-dir", str(corpus_data_dir)).stdout)
        assert body["answered"] is False and "confidence" in body["answers"][0]
    for question, needle in ANSWERABLE:
        proc = run("ask", question, "--data-dir", str(corpus_data_dir))
        head = "\n".join(proc.stdout.splitlines()[:2])  # the answer (its phrase first, where the reader finds one)
        assert proc.returncode == 0 and head.startswith("Trả lời:") and needle in head and "độ tin cậy" in head
        body = json.loads(run("ask", "--json", question, "--data-dir", str(corpus_data_dir)).stdout)
        assert body["answered"] is True and needle in body["answers"][0]["text"]
    proc = run("ask", "--json", "--min-confidence", "1", QUESTION_19, "--data-dir", str(corpus_data_dir))
    assert proc.returncode == 0 and json.loads(proc.stdout)["answered"] is False
