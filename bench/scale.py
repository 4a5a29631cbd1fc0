"""How each vector index kind scales: build time, memory, single-query latency and recall@10.

    .venv/bin/python bench/scale.py [--sizes 100000 1000000] [--queries 200] [--hnsw-max 200000]

Data: synthetic 384-dim L2-normalized vectors shaped like sentence embeddings rather than uniform
noise: a direction every vector shares, a few thousand topics of lognormal sizes, variation within a
topic confined to a 48-dim subspace, and a little isotropic noise. Queries are rows moved off the
data (within that subspace and isotropically), so none equals a row. Ground truth: exact top 10.

Latency: one query at a time with one faiss thread, after a warm-up, on the index as the service
sees it (saved, then opened memory-mapped by ``open_index``). Memory: bytes a vector of the saved
file, the peak RSS growth while building (VmHWM, reset before each build), RSS growth from opening
and querying (mapped pages touched), and the process peak at the end.

Also measured: the collection size at which exact single-query search crosses 2 ms, the threshold
``auto`` should use (``hoidap.index.vectors.EXACT_LIMIT``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hoidap.index import vectors  # noqa: E402

DIM = 384
TOPICS = 3000
LATENT = 48
K = 10
EXACT_BUDGET_MS = 2.0
THRESHOLD_SIZES = (5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000)
TARGET_RECALL, TARGET_P50_MS, TARGET_BYTES = 0.95, 5.0, 10**9


class Corpus:
    """A clustered synthetic collection and queries near it, reproducible from a seed."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.basis = np.linalg.qr(self.rng.standard_normal((DIM, LATENT)))[0].T.astype(np.float32)
        self.shared = _unit(self.rng, (DIM,))
        self.topics = _unit(self.rng, (TOPICS, DIM))
        sizes = self.rng.lognormal(0.0, 1.0, TOPICS)
        self.topic_share = sizes / sizes.sum()

    def vectors(self, n: int, batch: int = 100_000) -> np.ndarray:
        """Shared direction 0.5, topic 0.6, within-topic variation 0.5, noise 0.3 (norms), then normalized."""
        out = np.empty((n, DIM), dtype=np.float32)
        for start in range(0, n, batch):
            m = min(batch, n - start)
            topic = self.rng.choice(TOPICS, m, p=self.topic_share)
            out[start:start + m] = (0.5 * self.shared + 0.6 * self.topics[topic]
                                    + 0.5 * _unit(self.rng, (m, LATENT)) @ self.basis + 0.3 * _unit(self.rng, (m, DIM)))
        return _normalized(out)

    def queries(self, data: np.ndarray, n: int) -> np.ndarray:
        """Random rows pushed off the data: cosine to their row about 0.94, like a paraphrase."""
        rows = self.rng.choice(len(data), n, replace=False)
        return _normalized(data[rows] + 0.3 * _unit(self.rng, (n, LATENT)) @ self.basis
                           + 0.2 * _unit(self.rng, (n, DIM)))


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = rng.standard_normal(shape, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _normalized(v: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each build's peak is its own."""
    Path("/proc/self/clear_refs").write_text("5")


def latencies(index, queries: np.ndarray, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds of each single-query search, and the ids found, after ``warmup`` untimed queries."""
    for q in queries[:warmup]:
        index.search(q[None, :], K)
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, ids = index.search(q[None, :], K)
        times.append((time.perf_counter() - start) * 1e3)
        found.append(ids[0])
    return np.array(times), np.array(found)


def measure_threshold(corpus: Corpus, queries: int) -> tuple[int, list[tuple[int, float]]]:
    """Rows at which exact single-query p50 crosses the budget, interpolated between measured sizes."""
    data = corpus.vectors(THRESHOLD_SIZES[-1])
    probe = corpus.queries(data, queries)
    points = []
    vectors.set_threads(1)
    for n in THRESHOLD_SIZES:
        times, _ = latencies(vectors.build_vector_index(data[:n], "flat"), probe, warmup=20)
        points.append((n, float(np.median(times))))
    for (n0, t0), (n1, t1) in zip(points, points[1:]):
        if t0 <= EXACT_BUDGET_MS < t1:
            return round(n0 + (n1 - n0) * (EXACT_BUDGET_MS - t0) / (t1 - t0), -3), points
    return (points[0][0] if points[0][1] > EXACT_BUDGET_MS else points[-1][0]), points


def measure(kind: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, folder: Path) -> dict:
    vectors.set_threads(os.cpu_count() or 1)
    _reset_peak_rss()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    index = vectors.build_vector_index(data, kind)
    build_s = time.perf_counter() - start
    build_peak = _status_mb("VmHWM") - before
    path = folder / f"{kind}.faiss"
    vectors.save(index, path)
    del index
    vectors.set_threads(1)
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    index = vectors.open_index(path)
    open_ms = (time.perf_counter() - start) * 1e3
    times, found = latencies(index, queries, warmup=min(50, len(queries)))
    row = {"kind": kind, "build_s": build_s, "open_ms": open_ms, "bytes_per_vector": path.stat().st_size / len(data),
           "build_peak_mb": build_peak, "serve_mb": _status_mb("VmRSS") - before, "p50": np.median(times),
           "p95": np.percentile(times, 95), "recall": vectors.recall(found, truth),
           "effort": vectors.effort_of(index), "file_bytes": path.stat().st_size}
    path.unlink()
    return row


def meets_targets(row: dict) -> bool:
    return row["recall"] >= TARGET_RECALL and row["p50"] <= TARGET_P50_MS and row["file_bytes"] <= TARGET_BYTES


HEADER = (f"{'rows':>9} {'kind':<8} {'effort':>6} {'build s':>8} {'open ms':>8} {'B/vec':>6} {'build MB':>9} "
          f"{'serve MB':>9} {'p50 ms':>7} {'p95 ms':>7} {'R@10':>6}  targets")


def format_row(n: int, row: dict) -> str:
    effort = "-" if row["effort"] is None else str(row["effort"])
    return (f"{n:>9} {row['kind']:<8} {effort:>6} {row['build_s']:>8.1f} {row['open_ms']:>8.1f} "
            f"{row['bytes_per_vector']:>6.0f} {row['build_peak_mb']:>9.0f} {row['serve_mb']:>9.0f} "
            f"{row['p50']:>7.2f} {row['p95']:>7.2f} {row['recall']:>6.3f}  {'met' if meets_targets(row) else '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw-max", type=int, default=200_000,
                        help="skip hnsw above this size: ~15 min to build 1M on 2 cores, ~1.8 GB")
    args = parser.parse_args()
    started, load = time.perf_counter(), os.getloadavg()[0]
    corpus = Corpus()

    threshold, points = measure_threshold(corpus, args.queries)
    print("exact single-query p50: " + ", ".join(f"{n:,} rows {ms:.2f} ms" for n, ms in points))
    print(f"measured exact-vs-approximate threshold: {threshold:,.0f} rows (p50 > {EXACT_BUDGET_MS} ms above it); "
          f"index.vectors.EXACT_LIMIT = {vectors.EXACT_LIMIT:,}\n")

    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="hoidap-scale-") as tmp:
        for n in args.sizes:
            data = corpus.vectors(n)
            queries = corpus.queries(data, args.queries)
            truth = vectors.exact_search(data, queries, K)
            kinds = [k for k in vectors.KINDS if k != "hnsw" or n <= args.hnsw_max]
            for kind in kinds:
                print(format_row(n, measure(kind, data, queries, truth, Path(tmp))), flush=True)
            skipped = " (hnsw skipped: --hnsw-max)" if "hnsw" not in kinds else ""
            print(f"{'':>9} auto -> {vectors.choose_kind(n)}{skipped}", flush=True)
            del data
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\ntargets (1M): R@10 >= {TARGET_RECALL}, p50 <= {TARGET_P50_MS} ms, index file <= 1 GB. "
          f"process peak RSS {peak_mb:,.0f} MB; total {time.perf_counter() - started:.0f} s; "
          f"1-min load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
