"""The API on a real uvicorn server under concurrent clients: every search answers, and answers alike.

A search runs on the event loop when it is the only request in progress, and on the search threads
when others are (``hoidap.service.api.run_search``); one client and eight at once exercise both. Several
worker processes share what a signed-in session needs.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import threading
import time
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



def _rss_mb() -> float:
    """This process's resident memory (the live server runs in a thread of it)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def _stream_chunked(url: str, path: str, most_mb: int) -> tuple[bytes, int]:
    """POST an endless chunked body, 1 MB a chunk, until the server answers (or ``most_mb`` are sent):
    its first bytes, and how many MB went before they came."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"%x\r\n" % 2**20 + b"a" * 2**20 + b"\r\n"
        sent = 0
        while sent < most_mb:
            try:
                sock.sendall(chunk)
            except (OSError, TimeoutError):  # the server stopped reading: its answer is waiting
                break
            sent += 1
            if select.select([sock], [], [], 0)[0]:
                break
        return sock.recv(4096), sent


def test_a_chunked_body_is_cut_off_at_the_limit(live_url: str):
    """A body that declares no length is counted as it arrives: 413 once past 8 MB, whatever the route and
    with no key, and the server's memory does not grow with what is sent."""
    before = _rss_mb()
    for path in ("/api/v1/search", "/api/v1/documents"):
        answer, sent = _stream_chunked(live_url, path, 200)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"content_too_large" in answer and sent < 40, f"{sent} MB sent before the answer"
    assert _rss_mb() - before < 50
    assert "19 địa phương" in first_answers(live_url, QUESTION_19)[0]


def test_overload_is_shed_with_a_fast_503(corpus_data_dir: Path):
    """Past HOIDAP_MAX_QUEUE requests in progress a search is answered 503 with Retry-After at once; every
    other answer is a 200, and once the burst is over every search is answered again. No rate limit is set."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOIDAP_")} | {"HOIDAP_MAX_QUEUE": "4"}
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "hoidap"), "serve", "--port", str(port),
                               "--data-dir", str(corpus_data_dir)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, lambda: server.poll() is None)
        first_answers(url, QUESTION_19)  # the model loaded

        clients = threading.local()  # one keep-alive connection per thread: a new client each time is too slow

        def ask(_: int) -> httpx.Response:
            clients.client = getattr(clients, "client", None) or httpx.Client(timeout=60)
            return clients.client.post(f"{url}/api/v1/search", json={"query": QUESTION_19})

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(ask, range(320)))
        statuses = {r.status_code for r in answers}
        assert statuses <= {200, 503} and 503 in statuses and 200 in statuses, statuses
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and busy.json()["error"]["code"] == "service_unavailable"
        assert all("19 địa phương" in first_answers(url, QUESTION_19)[0] for _ in range(3))
    finally:
        server.terminate()
        server.wait(timeout=30)


def _serve(data_dir: Path, env: dict[str, str], cwd: Path | None = None) -> tuple[subprocess.Popen, str]:
    """A real ``hoidap serve`` over ``data_dir`` (relative to ``cwd``, if given) with only ``env``'s HOIDAP_*
    settings, and its URL once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOIDAP_")} | env
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "hoidap"), "serve", "--port", str(port),
                               "--data-dir", str(data_dir)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, lambda: server.poll() is None)
    return server, url


def test_a_rate_limit_applies_to_the_real_client_and_cannot_be_dodged(corpus_data_dir: Path):
    """With HOIDAP_RATE_LIMIT set, a client is limited whatever X-Forwarded-For it sends; behind a trusted proxy
    (HOIDAP_TRUSTED_PROXIES) the header names the real client, and another client keeps its own budget."""
    for trusted in ("", "127.0.0.1"):
        server, url = _serve(corpus_data_dir, {"HOIDAP_RATE_LIMIT": "3/minute", "HOIDAP_TRUSTED_PROXIES": trusted})
        try:
            with httpx.Client(base_url=url) as client:
                def get(address: str) -> int:
                    return client.get("/api/v1/documents", headers={"X-Forwarded-For": address}).status_code

                statuses = [get(f"10.0.0.{n}") for n in range(5)]  # a new made-up address each time
                if trusted:
                    assert statuses == [200] * 5, "each address, as the trusted proxy says, has its own budget"
                    assert [get("10.1.1.1") for _ in range(4)] == [200, 200, 200, 429]
                    assert get("10.2.2.2") == 200, "another client is unaffected"
                else:
                    assert statuses == [200, 200, 200, 429, 429], "a spoofed header changes nothing"
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_a_stalled_body_is_not_waited_for(corpus_data_dir: Path):
    """A client that starts a body and stops sending (or trickles it) is answered 408 after
    HOIDAP_BODY_TIMEOUT seconds without a byte, and the server goes on answering others."""
    server, url = _serve(corpus_data_dir, {"HOIDAP_BODY_TIMEOUT": "1"})
    try:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(f"POST /api/v1/search HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                         "Content-Length: 100\r\n\r\n{\"query\": ".encode())
            started = time.monotonic()
            answer = sock.recv(4096)
            waited = time.monotonic() - started
            while b"request_timeout" not in answer and (more := sock.recv(4096)):  # headers and body may come apart
                answer += more
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer, answer[:200]
        assert 0.5 < waited < 10
        assert "19 địa phương" in first_answers(url, QUESTION_19)[0]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_two_servers_on_one_data_dir_under_writes(corpus_data_dir: Path, tmp_path: Path):
    """Two servers share a data dir while documents are added and removed through either: 4 clients reading
    from both get no error, and each change is visible on both servers once its response has come."""
    data = tmp_path / "data"
    shutil.copytree(corpus_data_dir, data, symlinks=True)
    key = "khoa-hai-may-chu"
    auth = {"Authorization": f"Bearer {key}"}
    servers = [_serve(data, {"HOIDAP_API_KEYS": key}) for _ in range(2)]
    try:
        urls = [url for _, url in servers]
        errors: list[str] = []
        reads = [0]
        stop = threading.Event()

        def read(n: int) -> None:
            with httpx.Client(headers=auth, timeout=60) as http:
                while not stop.is_set():
                    url = urls[n % 2]
                    n += 1
                    for r in (http.post(f"{url}/api/v1/search", json={"query": QUESTIONS[n % 3]}),
                              http.get(f"{url}/search", params={"q": QUESTIONS[n % 3]})):
                        reads[0] += 1
                        if r.status_code != 200:
                            errors.append(f"{r.request.url}: {r.status_code} {r.text[:200]}")

        readers = [threading.Thread(target=read, args=(n,)) for n in range(4)]
        for t in readers:
            t.start()
        try:
            with httpx.Client(headers=auth, timeout=120) as http:
                for n in range(4):  # add through one server, check on the other, remove through the other
                    writer, other = urls[n % 2], urls[(n + 1) % 2]
                    added = http.post(f"{writer}/api/v1/documents",
                                      json={"title": f"Tin {n}", "text": f"Cầu số {n} dài {100 + n} mét.",
                                            "source": f"tin/{n}.txt"})
                    assert added.status_code == 201, added.text
                    doc_id = added.json()["id"]
                    assert http.get(f"{other}/api/v1/documents/{doc_id}").status_code == 200
                    assert http.delete(f"{other}/api/v1/documents/{doc_id}").status_code == 204
                    assert http.get(f"{writer}/api/v1/documents/{doc_id}").status_code == 404
        finally:
            stop.set()
            for t in readers:
                t.join()
        assert reads[0] > 20 and errors == [], errors[:5]
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(timeout=30)


def test_slow_headers_are_not_waited_for(corpus_data_dir: Path):
    """A client that trickles its headers (one every half second, never the end) or opens a connection and
    sends nothing is answered 408 and disconnected after HOIDAP_HEADER_TIMEOUT seconds; a normal request on a
    kept-alive connection is unaffected, and the server goes on answering."""
    server, url = _serve(corpus_data_dir, {"HOIDAP_HEADER_TIMEOUT": "2"})
    try:
        host, port = url.removeprefix("http://").split(":")
        for first in (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n", b""):
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(first)
                started = time.monotonic()
                answer = b""
                while time.monotonic() - started < 20:
                    try:
                        sock.sendall(b"X-Slow: 1\r\n" if first else b"")
                    except OSError:
                        break
                    if select.select([sock], [], [], 0.5)[0]:
                        answer = sock.recv(4096)
                        break
                waited = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408") and 1.5 < waited < 6, (answer[:80], waited)
        with httpx.Client(timeout=30) as http:  # a kept-alive connection idle between requests past the deadline
            assert http.get(f"{url}/api/v1/health").status_code == 200
            time.sleep(3)  # longer than the header deadline, shorter than uvicorn's keep-alive (5 s)
            assert http.get(f"{url}/api/v1/health").status_code == 200
        assert "19 địa phương" in first_answers(url, QUESTION_19)[0]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_sixteen_clients_and_a_new_build_with_the_default_settings(corpus_data_dir: Path, tmp_path: Path):
    """The default settings (no keys, no rate limit, HOIDAP_MAX_QUEUE 16) serve 16 clients without a single
    429, 503, other error or dropped connection while `hoidap index` commits a new build (bench/load.py
    runs it for 60 s and at 64 clients)."""
    data = tmp_path / "data"
    shutil.copytree(corpus_data_dir, data, symlinks=True)
    extra = tmp_path / "ban-tin"
    extra.mkdir()
    (extra / "cau.txt").write_text("Cầu Hoàng Văn Thụ dài 1,5 km, khánh thành năm 2020.", encoding="utf-8")
    server, url = _serve(data, {})
    try:
        answers: list[int] = []
        stop = threading.Event()

        def ask(n: int) -> None:
            with httpx.Client(timeout=60) as http:
                while not stop.is_set():
                    n += 1
                    try:
                        r = http.post(f"{url}/api/v1/search", json={"query": QUESTIONS[n % 3]}) if n % 4 \
                            else http.get(f"{url}/search", params={"q": QUESTIONS[n % 3]})
                        answers.append(r.status_code)
                    except httpx.HTTPError:
                        answers.append(0)

        clients = [threading.Thread(target=ask, args=(n,)) for n in range(16)]
        for t in clients:
            t.start()
        time.sleep(3)
        built = subprocess.run([str(ROOT / ".venv" / "bin" / "hoidap"), "index", str(ROOT / "corpus"), str(extra),
                                "--data-dir", str(data)], capture_output=True, text=True)
        time.sleep(3)
        stop.set()
        for t in clients:
            t.join()
        assert built.returncode == 0, built.stderr
        assert len(answers) > 100 and set(answers) == {200}, {code: answers.count(code) for code in set(answers)}
        assert httpx.get(f"{url}/api/v1/health").json()["documents"] == 3  # the new build is served
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_builds_committed_by_another_process_under_a_relative_data_dir(corpus_data_dir: Path, tmp_path: Path):
    """`make serve`'s relative data dir, no poller: `hoidap index` commits two builds from another process while 4
    clients search and read documents; no request fails (the build being served was once deleted under it) and
    the last build is served."""
    shutil.copytree(corpus_data_dir, tmp_path / "data", symlinks=True)
    extra = tmp_path / "ban-tin"
    extra.mkdir()
    server, url = _serve(Path("data"), {"HOIDAP_RELOAD_INTERVAL": "off"}, cwd=tmp_path)
    try:
        codes: list[int] = []
        stop = threading.Event()
        doc_id = httpx.get(f"{url}/api/v1/documents").json()["documents"][0]["id"]

        def use(n: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                while not stop.is_set():
                    n += 1
                    for r in (http.post("/api/v1/search", json={"query": QUESTIONS[n % 3]}),
                              http.get(f"/documents/{doc_id}"), http.get("/api/v1/documents")):
                        codes.append(r.status_code)

        clients = [threading.Thread(target=use, args=(n,)) for n in range(4)]
        for t in clients:
            t.start()
        try:
            for n in range(2):
                (extra / f"tin-{n}.txt").write_text(f"Cầu số {n} dài {100 + n} mét.", encoding="utf-8")
                built = subprocess.run([str(ROOT / ".venv" / "bin" / "hoidap"), "index", str(ROOT / "corpus"), "ban-tin",
                                        "--data-dir", "data"], cwd=tmp_path, capture_output=True, text=True)
                assert built.returncode == 0, built.stderr
                time.sleep(1)
        finally:
            stop.set()
            for t in clients:
                t.join()
        assert len(codes) > 30 and set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
        assert httpx.get(f"{url}/api/v1/health").json()["documents"] == 4
    finally:
        server.terminate()
        server.wait(timeout=30)
