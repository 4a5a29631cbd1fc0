"""Where a question's time goes: the encoder alone, the search entry point, and the HTTP API.

    .venv/bin/python bench/latency.py [--backend onnx-int8] [--runs 20] [--block 80] [--workers 1]

For 30 fixed Vietnamese questions (about corpus/ and general ones), after a warm-up:
(a) the model encoding one question with the chosen backend: the floor every path pays;
(b) ``Engine.search`` on an index of corpus/ and the XQuAD-vi paragraphs (from ../shared, when it is
    there), built in a temporary folder;
(c) POST /api/v1/search on a real ``hoidap serve`` (uvicorn, one worker unless ``--workers``) over
    that index, from one client with a keep-alive connection (:class:`Client`);
(d) the same server under load from 1 and from 8 concurrent clients (threads with a keep-alive
    connection each): p50, p95, requests/s and errors.
Every p50/p95 is also shown as a ratio to (a)'s p50.

Timings on a shared 2-core machine drift by 10-20 % from minute to minute, so no path is measured
in one phase: (a), (b) and (c) take turns, each answering the 30 questions in a row, ``--runs``
times; the 1- and 8-client loads of (d) alternate in blocks (1, 8, 8, 1, 1, 8), and their
requests/s are the medians of the blocks. Each path is timed in its steady state, as a client that
keeps asking sees it. (Taking the three paths question by question instead gave the same ratios:
each path then starts cold, the encoder too.) Twenty turns rather than ten average more of the drift into
each median (thirteen runs of twenty gave one-client ratios of 1.36-1.49, median 1.40, seven of them
with http.client; thirteen of ten had spread over 1.33-1.59); a run takes about 50 s.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httptools
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hoidap.index.build import build_index, load_files  # noqa: E402
from hoidap.index.embeddings import BACKENDS, Embedder, resolve_backend  # noqa: E402
from hoidap.index.evaluate import load_squad  # noqa: E402
from hoidap.index.search import Engine  # noqa: E402
from hoidap.index.store import Store  # noqa: E402
from hoidap.index.text import fold, normalize  # noqa: E402
from served import serve  # noqa: E402

QUESTIONS = [
    "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với bao nhiêu địa phương?",
    "Vốn FDI thu hút giai đoạn 2010 - 2015 là bao nhiêu?",
    "Tổng vốn FDI của Hải Phòng trong 5 năm qua đạt bao nhiêu tỷ USD?",
    "Kim ngạch xuất nhập khẩu của thành phố năm 2020 ước đạt bao nhiêu?",
    "Sản lượng hàng hóa qua cảng Hải Phòng năm 2020 là bao nhiêu?",
    "Giám đốc Sở Ngoại vụ Hải Phòng là ai?",
    "Những tập đoàn nước ngoài nào đầu tư vào Hải Phòng?",
    "Nguồn vốn ODA đã giúp xây dựng những công trình nào?",
    "Hải Phòng đã đón những đoàn cấp cao nào?",
    "Thành phố đã kết nối thương mại với bao nhiêu quốc gia và vùng lãnh thổ?",
    "Ba lĩnh vực kinh tế trụ cột của Hải Phòng là gì?",
    "Đại hội Đảng bộ thành phố lần thứ 15 đánh giá công tác đối ngoại thế nào?",
    "Cầu Tân Vũ - Lạch Huyện được xây dựng bằng nguồn vốn nào?",
    "Công tác đối ngoại nhân dân của Hải Phòng có kết quả gì?",
    "Tăng trưởng kim ngạch xuất nhập khẩu bình quân giai đoạn 2015-2020 là bao nhiêu phần trăm?",
    "Hải Phòng hợp tác với những quốc gia nào?",
    "Các tổ chức phi chính phủ nước ngoài hỗ trợ Hải Phòng ra sao?",
    "Thủ đô của Việt Nam là thành phố nào?",
    "Sông nào dài nhất Việt Nam?",
    "Ai là người viết Truyện Kiều?",
    "Việt Nam có bao nhiêu tỉnh thành?",
    "Vịnh Hạ Long nằm ở tỉnh nào?",
    "Chiến thắng Điện Biên Phủ diễn ra vào năm nào?",
    "Làm thế nào để nấu phở bò ngon?",
    "Dân số Thành phố Hồ Chí Minh là bao nhiêu?",
    "Tết Nguyên Đán thường rơi vào tháng mấy dương lịch?",
    "Đỉnh núi cao nhất Việt Nam là gì?",
    "Ngôn ngữ chính thức của Việt Nam là gì?",
    "Đồng bằng sông Cửu Long nổi tiếng với loại cây trồng nào?",
    "Cảng biển lớn nhất miền Bắc Việt Nam ở đâu?",
]
CLIENTS = 8
XQUAD = ROOT.parent / "shared" / "eval" / "xquad-vi" / "xquad.vi.json"


def in_turn(calls: list[Callable[[str], object]], runs: int) -> list[np.ndarray]:
    """Seconds of each call for every question, over ``runs`` passes in which the calls take turns,
    each answering all the questions in a row (after one untimed pass of each)."""
    for call in calls:
        for q in QUESTIONS:
            call(q)
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for call, spent in zip(calls, times):
            for q in QUESTIONS:
                started = time.perf_counter()
                call(q)
                spent.append(time.perf_counter() - started)
    return [np.array(t) for t in times]


class Client:
    """One keep-alive HTTP/1.1 connection on a plain socket, its responses parsed by ``httptools``
    (uvicorn's own C parser): as light as a client gets, so what is timed is the server and the
    network stack. ``http.client`` parses each response's headers in Python (``email.parser``),
    which cost about 0.3 ms a request here; ``httpx`` about 1.5 ms.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as browsers and HTTP libraries do
        self.parser = httptools.HttpResponseParser(self)
        self.complete = False

    def on_message_complete(self) -> None:  # called by the parser
        self.complete = True

    def search(self, question: str) -> bool:
        """POST one question; True if it was answered 200."""
        body = json.dumps({"query": question, "top_k": 5}).encode()
        self.sock.sendall(b"POST /api/v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.complete = False
        while not self.complete:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.parser.feed_data(data)
        return self.parser.get_status_code() == 200

    def close(self) -> None:
        self.sock.close()


def http_load(port: int, clients: int, requests_each: int) -> tuple[np.ndarray, float, int]:
    """Latencies, requests/s and errors of ``clients`` threads each sending ``requests_each`` searches
    over a kept-alive connection of its own (:class:`Client`)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(offset: int) -> None:
        nonlocal errors
        conn: Client | None = Client(port)
        conn.search(QUESTIONS[offset % len(QUESTIONS)])  # connected and warm, untimed
        start.wait()
        for i in range(requests_each):
            started = time.perf_counter()
            try:
                conn = conn or Client(port)
                ok = conn.search(QUESTIONS[(offset + i) % len(QUESTIONS)])
            except (OSError, httptools.HttpParserError):
                ok = False
                if conn:
                    conn.close()
                conn = None  # a new connection for the next request
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors += not ok
        if conn:
            conn.close()

    threads = [threading.Thread(target=client, args=(c * 7,)) for c in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return np.array(latencies), len(latencies) / wall, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: $HOIDAP_BACKEND, else Embedder's")
    parser.add_argument("--runs", type=int, default=20, help="timed passes over the 30 questions for (a), (b), (c)")
    parser.add_argument("--block", type=int, default=80, help="requests in each load block, shared by its clients")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of the server")
    parser.add_argument("--without-diacritics", action="store_true",
                        help="ask the questions with their marks removed, and time restoring them on its own")
    args = parser.parse_args()
    if args.without_diacritics:
        QUESTIONS[:] = [fold(q) for q in QUESTIONS]
    backend = resolve_backend(args.backend)
    embedder = Embedder(backend=backend)

    rows: list[tuple[str, np.ndarray, float, int | None]] = []
    with tempfile.TemporaryDirectory(prefix="hoidap-latency-") as tmp:
        data_dir = Path(tmp)
        documents = list(load_files([ROOT / "corpus"], []))
        if XQUAD.exists():
            documents += load_squad(XQUAD)[0]
        build_index(documents, data_dir, embedder)
        engine = Engine(Store.open(data_dir), embedder)
        env = {k: v for k, v in os.environ.items() if k not in ("HOIDAP_API_KEYS", "HOIDAP_API_KEYS_FILE")}
        server, port = serve(data_dir, env | {"HOIDAP_BACKEND": backend, "HOIDAP_RATE_LIMIT": "off"},
                             "--workers", str(args.workers))  # no keys, no rate limit
        try:
            http_load(port, 1, len(QUESTIONS))  # warm-up: the server loads its model on first search
            conn = Client(port)
            failed: list[str] = []
            encode, search, one = in_turn([lambda q: embedder.encode([q], "query"), lambda q: engine.search(q, 5),
                                           lambda q: conn.search(q) or failed.append(q)], args.runs)
            conn.close()
            for name, times, errors in (("(a) encode one question", encode, None), ("(b) Engine.search", search, None),
                                        ("(c) HTTP POST /search, 1 client", one, len(failed))):
                rows.append((name, times, len(times) / times.sum(), errors))
            if args.without_diacritics:  # the part of (b) that puts the marks back
                (restoring,) = in_turn([lambda q: engine.interpret(normalize(q))], args.runs)
                rows.append(("(b') restoring diacritics", restoring, len(restoring) / restoring.sum(), None))
            blocks: dict[int, list[tuple[np.ndarray, float, int]]] = {1: [], CLIENTS: []}
            for clients in (1, CLIENTS, CLIENTS, 1, 1, CLIENTS):
                blocks[clients].append(http_load(port, clients, max(1, args.block // clients)))
            for clients, measured in blocks.items():
                rows.append((f"(d) load blocks, {clients} client{'s' * (clients > 1)}",
                             np.concatenate([m[0] for m in measured]), float(np.median([m[1] for m in measured])),
                             sum(m[2] for m in measured)))
        finally:
            server.terminate()
            server.wait(timeout=30)

    floor = float(np.median(encode))
    threads = "torch's own" if backend == "torch" else os.environ.get("HOIDAP_THREADS", "1 (default)")
    print(f"backend {backend}, {len(QUESTIONS)} questions, {os.cpu_count()} cores, threads a call: {threads}; "
          f"{args.workers} server worker{'s' * (args.workers > 1)}; "
          f"index: {engine.store.info.documents} documents, {engine.store.info.passages} passages")
    print(f"{'path':<34} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p50/(a)':>8} {'p95/(a)':>8} {'req/s':>7} {'errors':>6}")
    for name, times, rate, errors in rows:
        p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
        print(f"{name:<34} {len(times):>5} {1000 * p50:>8.1f} {1000 * p95:>8.1f} {p50 / floor:>8.2f} {p95 / floor:>8.2f} "
              f"{rate:>7.1f} {'-' if errors is None else errors:>6}")
    one_rate, many_rate = rows[-2][2], rows[-1][2]
    print(f"HTTP p50 with one client is {np.median(one) / floor:.2f}x the encoder's; {CLIENTS} clients get "
          f"{many_rate / one_rate:.2f}x the requests/s of one (medians of 3 blocks each)")


if __name__ == "__main__":
    main()
