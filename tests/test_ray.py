"""Beyond one machine, on a real local Ray cluster (the extra hoidap[ray], which `make test` installs):
`hoidap index --ray` reads the files and embeds them on the cluster into a build interchangeable with a
local one, and `hoidap serve --ray` serves
replicas that pick up a new build with no failed request."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import docx
import httpx
import numpy as np
import pytest

from hoidap.index.search import Engine
from hoidap.index.store import Store

from .conftest import CORPUS, QUESTION_19, QUESTION_FDI, free_port, wait_until_serving

pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'hoidap[ray]' (make test installs it)")
HOIDAP = str(Path(sys.executable).parent / "hoidap")


def index(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([HOIDAP, "index", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def test_a_ray_build_is_interchangeable_with_a_local_one(corpus_data_dir: Path, embedder, tmp_path: Path):
    data = tmp_path / "data"
    built = index(str(CORPUS), "--data-dir", str(data), "--ray", "--ray-actors", "2")
    assert "2 added" in built.stdout and "Traceback" not in built.stderr

    local, ray = Store.open(corpus_data_dir), Store.open(data)
    assert local.hashes() == ray.hashes()
    for doc_id in local.hashes():
        a, b = local.stored_document(doc_id), ray.stored_document(doc_id)
        assert a[0] == b[0]  # the document
        assert [(p.start, p.end, [(s.start, s.end) for s in p.sentences]) for p in a[1]] == \
               [(p.start, p.end, [(s.start, s.end) for s in p.sentences]) for p in b[1]]
        for local_vectors, ray_vectors in ((a[2], b[2]), (a[3], b[3])):  # passages, then sentences
            assert local_vectors.shape == ray_vectors.shape
            cosines = np.sum(local_vectors * ray_vectors, axis=1)
            assert cosines.min() > 0.99, cosines.min()  # int8 activations are scaled per batch: batches differ
    for question in (QUESTION_19, QUESTION_FDI):
        answers = [Engine(store, embedder).search(question).answers[0] for store in (local, ray)]
        assert answers[0].text == answers[1].text and answers[0].span == answers[1].span, question

    again = index(str(CORPUS), "--data-dir", str(data), "--ray")
    assert again.stdout.startswith("nothing changed"), again.stdout  # only new or changed documents are embedded
    more = tmp_path / "more"
    more.mkdir()
    (more / "cau.txt").write_text("Cầu Rồng ở Đà Nẵng dài 666 mét, khánh thành năm 2013.", encoding="utf-8")
    report = docx.Document()
    report.add_paragraph("Năm 2023, cảng Đà Nẵng đón 1.200 lượt tàu biển.")
    report.save(str(more / "cang.docx"))  # read by a Ray task, through the bounded child process
    (more / "hong.pdf").write_bytes(b"%PDF-1.4 not really")
    added = index(str(CORPUS), str(more), "--data-dir", str(data), "--ray")
    assert "2 added, 0 updated, 2 unchanged" in added.stdout, added.stdout
    assert "skipped:" in added.stderr and "hong.pdf" in added.stderr and "Traceback" not in added.stderr
    engine = Engine(Store.open(data), embedder)
    assert "666 mét" in engine.search("Cầu Rồng dài bao nhiêu mét?").answers[0].text
    assert "1.200 lượt" in engine.search("Cảng Đà Nẵng đón bao nhiêu lượt tàu năm 2023?").answers[0].text


def test_without_ray_installed_it_says_how_to_get_it(tmp_path: Path):
    """A machine without the extra: one line saying what to install, no traceback (Ray hidden from Python)."""
    hide = "import sys; sys.modules['ray'] = None; from hoidap.service.cli import main; sys.argv[0] = 'hoidap'; main()"
    done = subprocess.run([sys.executable, "-c", hide, "index", str(CORPUS), "--data-dir", str(tmp_path / "d"),
                           "--ray"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "pip install 'hoidap[ray]'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_ray_serve_replicas_answer_and_pick_up_a_new_build(corpus_data_dir: Path, tmp_path: Path):
    """`hoidap serve --ray --replicas 2` on a local cluster: the acceptance question over HTTP, then a build
    committed by `hoidap index` while 4 clients keep asking: no failed request, and every answer after it
    knows the new document."""
    data = tmp_path / "data"
    shutil.copytree(corpus_data_dir, data, symlinks=True, ignore=shutil.ignore_patterns("feedback.sqlite3*"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([HOIDAP, "serve", "--ray", "--replicas", "2", "--port", str(port), "--data-dir",
                               str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(url, lambda: server.poll() is None, seconds=240)
        best = httpx.post(f"{url}/api/v1/search", json={"query": QUESTION_19}, timeout=30).json()["answers"][0]
        assert best["span"]["text"] == "19 địa phương"
        assert "19 địa phương" in httpx.get(f"{url}/search", params={"q": QUESTION_19}, timeout=30).text

        failures: list[str] = []
        answered = [0]
        stop = threading.Event()

        def ask() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    try:
                        r = client.post("/api/v1/search", json={"query": QUESTION_FDI})
                        if r.status_code != 200:
                            failures.append(f"{r.status_code} {r.text[:200]}")
                        answered[0] += 1
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        clients = [threading.Thread(target=ask) for _ in range(4)]
        for c in clients:
            c.start()
        more = tmp_path / "more"
        more.mkdir()
        (more / "cau.txt").write_text("Cầu Rồng ở Đà Nẵng dài 666 mét, khánh thành năm 2013.", encoding="utf-8")
        index(str(more), "--data-dir", str(data))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and httpx.get(f"{url}/api/v1/health").json()["documents"] != 3:
            time.sleep(0.5)
        time.sleep(3)  # the other replica's poller too (HOIDAP_RELOAD_INTERVAL: 1 s)
        stop.set()
        for c in clients:
            c.join()
        assert not failures and answered[0] > 20, (failures[:5], answered[0])
        for _ in range(10):  # whichever replica answers knows the new document
            assert httpx.get(f"{url}/api/v1/health").json()["documents"] == 3
            r = httpx.post(f"{url}/api/v1/search", json={"query": "Cầu Rồng dài bao nhiêu mét?"}, timeout=30)
            assert "666 mét" in r.json()["answers"][0]["text"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def test_a_failed_pipeline_is_one_line_and_an_unreachable_cluster_is_said_at_once(tmp_path: Path):
    from hoidap.index.distributed import RayError, RayOptions, _failing, connect, shutdown

    def boom(row: dict) -> dict:
        raise ValueError("hỏng giữa chừng")

    with tempfile.TemporaryDirectory(prefix="hoidap-ray-") as temp:  # short: Ray's socket paths have a limit
        ray = connect(RayOptions(temp_dir=Path(temp)))
        try:
            with pytest.raises(RayError, match="hỏng giữa chừng") as failed:
                list(_failing(ray, ray.data.from_items([{"n": 1}]).map(boom).iter_rows()))
            assert "\n" not in str(failed.value)
        finally:
            shutdown()
    started = time.monotonic()
    done = subprocess.run([HOIDAP, "index", str(CORPUS), "--data-dir", str(tmp_path / "d"), "--ray", "--ray-address",
                           "127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip() == \
        "hoidap: cannot reach the Ray cluster at 127.0.0.1:1: Connection refused"
    assert time.monotonic() - started < 30  # Ray alone would retry for minutes
