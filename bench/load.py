"""Load test: the real server on loopback, concurrent clients for a fixed time, an index swap midway.

    python bench/load.py --seconds 60 --clients 16

Indexes corpus/ into a temporary data directory, starts `hoidap serve` there, and runs clients
that mix questions (API and page), document reads and health checks. Halfway through, one document
is added through the API, which rebuilds the index and swaps it in while the clients keep going.
Prints requests, errors, latency percentiles, and the server's memory at the start and the end.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from served import HOIDAP, serve

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-load-key"
QUESTIONS = [
    "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với bao nhiêu địa phương?",
    "Vốn FDI thu hút giai đoạn 2010 - 2015 là bao nhiêu?",
    "hai phong hop tac voi bao nhieu dia phuong",
    "Kiều hối giai đoạn 2016-2020 đạt bao nhiêu?",
    "Sản lượng hàng hóa qua cảng năm 2020 là bao nhiêu?",
    "Vịnh Lan Hạ được công nhận là gì?",
    "Hải Phòng kết nghĩa với thành phố nào của Nhật Bản?",
    "Lễ hội Hoa Phượng đỏ có ý nghĩa gì?",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def client(base: str, deadline: float, latencies: list[float], errors: list[str], seed: int) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        doc_ids = [d["id"] for d in http.get("/api/v1/documents").json()["documents"]]
        while time.monotonic() < deadline:
            roll = rng.random()
            started = time.perf_counter()
            try:
                if roll < 0.6:
                    r = http.post("/api/v1/search", json={"query": rng.choice(QUESTIONS), "top_k": 5})
                elif roll < 0.75:
                    r = http.get("/search", params={"q": rng.choice(QUESTIONS)})
                elif roll < 0.9:
                    r = http.get(f"/api/v1/documents/{rng.choice(doc_ids)}")
                else:
                    r = http.get("/api/v1/health")
                if r.status_code != 200:
                    errors.append(f"{r.request.method} {r.request.url.path}: {r.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append((time.perf_counter() - started) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hoidap-load-"))
    data = tmp / "data"
    subprocess.run([HOIDAP, "index", ROOT / "corpus", "--data-dir", data], check=True, capture_output=True)
    server, port = serve(data, {"HOIDAP_API_KEYS": KEY, "HOIDAP_RATE_LIMIT": "off", "PATH": str(HOIDAP.parent)})
    base = f"http://127.0.0.1:{port}"
    try:
        before = httpx.get(f"{base}/api/v1/health").json()
        latencies: list[float] = []
        errors: list[str] = []
        memory: list[tuple[float, float]] = []
        started = time.monotonic()
        deadline = started + args.seconds
        threads = [threading.Thread(target=client, args=(base, deadline, latencies, errors, n))
                   for n in range(args.clients)]
        for t in threads:
            t.start()
        swapped_at = None
        while time.monotonic() < deadline:
            memory.append((time.monotonic() - started, rss_mb(server.pid)))
            if swapped_at is None and time.monotonic() - started > args.seconds / 2:
                r = httpx.post(f"{base}/api/v1/documents", headers={"Authorization": f"Bearer {KEY}"}, timeout=300,
                               json={"title": "Bản tin mới", "source": "bench:load",
                                     "text": "Hải Phòng khánh thành cầu Hoàng Văn Thụ dài 1,5 km vào năm 2020."})
                swapped_at = time.monotonic() - started
                if r.status_code != 201:
                    errors.append(f"document update: {r.status_code} {r.text[:200]}")
            time.sleep(1)
        for t in threads:
            t.join()
        after = httpx.get(f"{base}/api/v1/health").json()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)

    cut = lambda q: statistics.quantiles(latencies, n=100)[q - 1]  # noqa: E731
    window = max(1.0, args.seconds / 6)
    first = [m for t, m in memory if t <= window]
    last = [m for t, m in memory if t >= args.seconds - window]
    print(f"clients {args.clients}, {args.seconds:.0f} s, index update + swap done at {swapped_at:.0f} s "
          f"({before['documents']} → {after['documents']} documents, built {before['built_at']} → {after['built_at']})")
    print(f"requests {len(latencies)}, errors {len(errors)}, {len(latencies) / args.seconds:.1f} requests/s")
    print(f"latency ms: p50 {cut(50):.1f}, p95 {cut(95):.1f}, p99 {cut(99):.1f}, max {max(latencies):.1f}")
    print(f"server memory MB: first {window:.0f} s median {statistics.median(first):.0f}, "
          f"last {window:.0f} s median {statistics.median(last):.0f}")
    for line in sorted(set(errors))[:10]:
        print("  error:", line)


if __name__ == "__main__":
    main()
