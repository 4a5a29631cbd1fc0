"""Load test: the real server with its default settings on loopback, concurrent clients for a fixed time, a
new build committed midway by another process.

    python bench/load.py --seconds 60 --clients 16
    python bench/load.py --seconds 60 --clients 64

Indexes corpus/ into a temporary data directory and starts `hoidap serve` there with no HOIDAP_* setting
(no keys, no rate limit, the default HOIDAP_MAX_QUEUE). Of the ``--clients``, one is a light client in a
process of its own (below); each of the others, threads of this process, keeps one connection and mixes
questions (API and page), document reads and health checks, and after a 503 waits the Retry-After it was
given, as HTTP clients with retries do (``--ignore-retry-after``: asks again at once, the worst case).
Halfway through, `hoidap index` adds a folder in a separate process, whose build the server swaps in
while the clients keep going.

A 503 with Retry-After is overload shed on purpose (``HOIDAP_MAX_QUEUE``): counted apart, with its
latency (it must be fast). Anything else that is not a 200 (a 429, another 5xx, a connection error)
is an error. Prints requests, errors, shed requests, latency percentiles, and the server's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from served import HOIDAP, serve

ROOT = Path(__file__).resolve().parent.parent
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


def client(base: str, deadline: float, latencies: list[float], shed: list[float], errors: list[str],
           seed: int, honour_retry_after: bool) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=30) as http:
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
                took = (time.perf_counter() - started) * 1000
                if r.status_code == 503 and "retry-after" in r.headers:
                    shed.append(took)
                    if honour_retry_after:  # as a chatbot's HTTP client with retries does (urllib3, tenacity)
                        time.sleep(min(float(r.headers["retry-after"]), max(0.0, deadline - time.monotonic())))
                    continue
                if r.status_code != 200:
                    errors.append(f"{r.request.method} {r.request.url.path}: {r.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                took = (time.perf_counter() - started) * 1000
            latencies.append(took)


PROBE = """
import json, socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
body = json.dumps({"query": "Vốn FDI thu hút giai đoạn 2010 - 2015 là bao nhiêu?"}).encode()
request = (f"POST /api/v1/search HTTP/1.1\\r\\nHost: {host}\\r\\nContent-Type: application/json\\r\\n"
           f"Content-Length: {len(body)}\\r\\n\\r\\n").encode() + body
seen = {}
deadline = time.monotonic() + seconds
with socket.create_connection((host, port)) as sock:
    while time.monotonic() < deadline:
        started = time.perf_counter()
        sock.sendall(request)
        answer = b""
        while b"\\r\\n\\r\\n" not in answer:
            answer += sock.recv(65536)
        head, _, rest = answer.partition(b"\\r\\n\\r\\n")
        length = int(next(l.split(b":")[1] for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += sock.recv(65536)
        seen.setdefault(head.split()[1].decode(), []).append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
print(json.dumps(seen))
"""


def probe(base: str, seconds: float) -> subprocess.Popen:
    """A process of its own asking one question every 10 ms over one kept-alive raw socket: the latency a
    light client sees, apart from the load's client threads and their GIL."""
    host, port = base.removeprefix("http://").split(":")
    return subprocess.Popen([sys.executable, "-c", PROBE, host, port, str(seconds)], stdout=subprocess.PIPE, text=True)


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cut = statistics.quantiles(values, n=100)
    return f"p50 {cut[49]:.1f}, p95 {cut[94]:.1f}, p99 {cut[98]:.1f}, max {max(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-queue", type=int, help="HOIDAP_MAX_QUEUE for this run (not the default: to choose it)")
    parser.add_argument("--ignore-retry-after", action="store_true",
                        help="clients ask again at once after a 503 instead of waiting Retry-After seconds")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hoidap-load-"))
    data = tmp / "data"
    subprocess.run([HOIDAP, "index", ROOT / "corpus", "--data-dir", data], check=True, capture_output=True)
    extra = tmp / "ban-tin"
    extra.mkdir()
    (extra / "cau.txt").write_text("Hải Phòng khánh thành cầu Hoàng Văn Thụ dài 1,5 km vào năm 2020.", encoding="utf-8")
    defaults = {k: v for k, v in os.environ.items() if not k.startswith("HOIDAP_")}
    asked = {"HOIDAP_MAX_QUEUE": str(args.max_queue)} if args.max_queue else {}
    server, port = serve(data, defaults | asked, log=tmp / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        before = httpx.get(f"{base}/api/v1/health").json()
        latencies: list[float] = []
        shed: list[float] = []
        errors: list[str] = []
        memory: list[tuple[float, float]] = []
        started = time.monotonic()
        deadline = started + args.seconds
        threads = [threading.Thread(target=client, args=(base, deadline, latencies, shed, errors, n,
                                                         not args.ignore_retry_after)) for n in range(args.clients - 1)]
        for t in threads:
            t.start()
        light = probe(base, args.seconds - 2)
        swapped_at = None
        while time.monotonic() < deadline:
            memory.append((time.monotonic() - started, rss_mb(server.pid)))
            if swapped_at is None and time.monotonic() - started > args.seconds / 2:
                build = subprocess.run([HOIDAP, "index", ROOT / "corpus", extra, "--data-dir", data],
                                       capture_output=True, text=True, env=defaults)
                swapped_at = time.monotonic() - started
                if build.returncode:
                    errors.append(f"hoidap index: {build.stderr.strip()[:200]}")
            time.sleep(1)
        for t in threads:
            t.join()
        probed = json.loads(light.communicate()[0])
        after = httpx.get(f"{base}/api/v1/health").json()
    finally:
        server.terminate()
        server.wait(timeout=30)
        inside = [json.loads(line) for line in (tmp / "server.log").read_text().splitlines() if line.startswith("{")]
        shutil.rmtree(tmp, ignore_errors=True)

    window = max(1.0, args.seconds / 6)
    first = [m for t, m in memory if t <= window]
    last = [m for t, m in memory if t >= args.seconds - window]
    print(f"clients {args.clients}, {args.seconds:.0f} s, "
          f"{f'HOIDAP_MAX_QUEUE={args.max_queue}, otherwise ' if args.max_queue else ''}default settings, clients "
          f"{'asking again at once after a 503' if args.ignore_retry_after else 'waiting Retry-After after a 503'}; "
          f"a build committed by `hoidap index` at "
          f"{swapped_at:.0f} s ({before['documents']} → {after['documents']} documents, built {before['built_at']} → "
          f"{after['built_at']})")
    total = len(latencies) + len(shed)
    print(f"requests {total}, answered {len(latencies) - len(errors)} ({len(latencies) / args.seconds:.1f}/s), "
          f"errors {len(errors)}, shed with 503 + Retry-After {len(shed)} ({len(shed) / max(1, total):.1%})")
    print(f"latency ms of answers: {percentiles(latencies)}")
    print(f"latency ms of 503s: {percentiles(shed)} (the client's view: its {args.clients} threads share the cores)")
    print(f"  inside the server (access log): {percentiles([r['duration_ms'] for r in inside if r['status'] == 503])}")
    for status, values in sorted(probed.items()):
        print(f"  a light client in its own process, {len(values)} × {status}: {percentiles(values)}")
    print(f"server memory MB: first {window:.0f} s median {statistics.median(first):.0f}, "
          f"last {window:.0f} s median {statistics.median(last):.0f}")
    for line in sorted(set(errors))[:10]:
        print("  error:", line)


if __name__ == "__main__":
    main()
