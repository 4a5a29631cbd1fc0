"""The API on a real uvicorn server under concurrent clients: every search answers, and answers alike.

A search runs on the event loop when it is the only request in progress, and on the search threads
when others are (``hoidap.service.api.run_search``); one client and eight at once exercise both. Several
worker processes share what a signed-in session needs.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from .conftest import QUESTION_19, ROOT, free_port, wait_until_serving

QUESTIONS = [QUESTION_19, "Vốn FDI thu hút giai đoạn 2010 - 2015 là bao nhiêu?", "hai phong hop tac voi bao nhieu dia phuong"]


def first_answers(url: str, question: str) -> list[str]:
    response = httpx.post(f"{url}/api/v1/search", json={"query": question, "top_k": 3}, timeout=60)
    assert response.status_code == 200, response.text
    return [a["text"] for a in response.json()["answers"]]


def test_eight_clients_at_once_get_what_one_gets(live_url: str):
    alone = {q: first_answers(live_url, q) for q in QUESTIONS}
    assert "19 địa phương" in alone[QUESTION_19][0] and "7,63 tỷ USD" in alone[QUESTIONS[1]][0]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda n: (QUESTIONS[n % 3], first_answers(live_url, QUESTIONS[n % 3])), range(48)))
    assert all(answers == alone[q] for q, answers in together)


def test_requests_in_progress_are_counted_and_released(live_url: str):
    """Each scrape sees itself in progress and nothing else: a count that leaked would route searches wrongly."""
    for _ in range(2):
        first_answers(live_url, QUESTION_19)
        text = httpx.get(f"{live_url}/metrics", timeout=10).text
        assert "hoidap_http_requests_in_progress 1.0" in text.splitlines()


def test_a_session_works_on_every_worker(corpus_data_dir: Path, tmp_path: Path):
    """``hoidap serve --workers 2`` without HOIDAP_SECRET_KEY shares one made-up key between its workers, so a
    signed-in administrator stays signed in whichever worker a new connection reaches."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOIDAP_")} | {
        "HOIDAP_ADMIN_PASSWORD": "mật khẩu đủ dài cho thử nghiệm", "HOIDAP_RATE_LIMIT": "off"}
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "hoidap"), "serve", "--port", str(port), "--workers", "2",
                               "--data-dir", str(corpus_data_dir)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, lambda: server.poll() is None)
        # a new connection for each request ("Connection: close"): the workers take turns accepting them
        with httpx.Client(base_url=url, follow_redirects=True, headers={"Connection": "close"}) as browser:
            signed_in = browser.post("/admin/login", data={"password": env["HOIDAP_ADMIN_PASSWORD"]})
            assert signed_in.status_code == 200 and 'name="csrf"' in signed_in.text
            for _ in range(12):
                page = browser.get("/admin")
                assert page.status_code == 200 and 'name="csrf"' in page.text, "signed out on another worker"
    finally:
        server.terminate()
        server.wait(timeout=30)

