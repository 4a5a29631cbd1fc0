"""Vector indexes: pick a kind for the collection size, build it, save it, open it memory-mapped.

Every kind keeps row i = input vector i, so SQLite ids address vectors unchanged. Vectors are
L2-normalized and scored by inner product (= cosine).

    flat     exact; the fastest choice while a full scan stays under ~2 ms a query
    hnsw     graph over full float vectors: fast, reconstructs exactly, but ~1.8 KB a vector and slow to build
    ivf-sq8  inverted lists of 8-bit scalar-quantized vectors: ~400 B a vector, scans ~100 ns a vector
    ivf-pq   inverted lists of 4-bit PQ codes scanned with SIMD (fast-scan), the best ``REFINE_FACTOR * k``
             re-scored with 8-bit codes: ~500 B a vector and several times faster than ivf-sq8 at 1M

Approximate kinds are tuned when built: the smallest nprobe / efSearch whose recall@10 on probe
queries made from the data reaches ``TUNE_RECALL``. faiss stores that setting in the file, so an
opened index searches as it was tuned. Figures behind the constants: ``bench/scale.py`` on a 2-core
Xeon (AVX-512).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "ivf-sq8", "ivf-pq")
EXACT_LIMIT = 30_000  # rows: a flat single-query scan passed 2 ms at 31-32k in bench/scale.py
# At 1M: recall@10 0.97, p50 0.5 ms, 500 MB. ivf-sq8 is 2x slower at that recall, 3-9x at nprobe 16-64
# (harder data); hnsw takes 1.8 GB and ~10 min to build.
LARGE_KIND = "ivf-pq"
TUNE_RECALL = 0.97  # margin over 0.95: off-data queries scored up to 0.02 below the probes (bench/scale.py)
TUNE_QUERIES = 200
TUNE_K = 10
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80  # the low end already: 100k rows build in ~45 s on 2 cores, 1M in ~10 min
EF_SEARCH = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
NPROBE = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
TRAIN_PER_LIST = 40  # k-means points per list: faiss asks for at least 39
REFINE_FACTOR = 16  # ivf-pq re-scores 16 * k fast-scan candidates with its 8-bit codes
# Maps the vectors, graph and inverted lists in place (faiss >= 1.11). IO_FLAG_MMAP alone maps only
# plain IVF lists: flat and HNSW indexes would still be read whole into memory.
_OPEN_FLAGS = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
# Appended by `save`: faiss reads up to its own end and ignores it; `open_index` checks it.
_TRAILER = struct.Struct("<8sQ")
_MAGIC = b"hoidapvx"


def set_threads(n: int) -> None:
    """Threads per faiss call: 1 when serving single queries (add worker processes for more cores)."""
    faiss.omp_set_num_threads(n)


def choose_kind(n: int, kind: str = "auto") -> str:
    """``kind`` as asked; for "auto", exact search while it is fast enough, the measured best approximate kind above."""
    if kind != "auto":
        return kind
    return "flat" if n <= EXACT_LIMIT else LARGE_KIND


def build_vector_index(vectors: np.ndarray, kind: str = "auto") -> faiss.Index:
    """An index over ``vectors`` (n x d, L2-normalized) whose row i is vector i, tuned if approximate."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kind = choose_kind(len(vectors), kind)
    if kind not in _BUILDERS:
        raise ValueError(f"unknown vector index kind {kind!r}: choose one of auto, {', '.join(KINDS)}")
    index = _BUILDERS[kind](vectors)
    if kind != "flat":
        tune(index, vectors)
    return index


def _flat(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def _hnsw(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(vectors)
    return index


def _ivf_sq8(vectors: np.ndarray) -> faiss.Index:
    index = _trained_ivf(vectors, "SQ8")
    index.add(vectors)
    index.make_direct_map()  # row -> list position, for reconstruct
    return index


def _ivf_pq(vectors: np.ndarray) -> faiss.Index:
    """PQ with 2 dimensions per 4-bit code keeps fast-scan ranking good enough for a 16x re-scoring pool."""
    index = _trained_ivf(vectors, f"PQ{vectors.shape[1] // 2}x4fs,Refine(SQ8)")
    index.k_factor = REFINE_FACTOR
    index.add(vectors)
    return index


def _trained_ivf(vectors: np.ndarray, codes: str) -> faiss.Index:
    """About 4 sqrt(n) lists (4000 at 1M), never more than the rows can train.

    The list centroids are one big k-means that uses every thread; the codes are trained on one
    thread, because PQ training is thousands of tiny k-means in which threads only wait at barriers:
    on a busy 2-core machine that took 30-45 s instead of under 2 s.
    """
    n, d = vectors.shape
    nlist = max(1, min(round(4 * n ** 0.5), n // TRAIN_PER_LIST))
    index = faiss.index_factory(d, f"IVF{nlist},{codes}", faiss.METRIC_INNER_PRODUCT)
    sample = _sample(vectors, nlist * TRAIN_PER_LIST)
    _ivf(index).train_q1(len(sample), faiss.swig_ptr(sample), False, faiss.METRIC_INNER_PRODUCT)
    with _threads(1):
        index.train(sample)  # the lists are trained already: this trains the codes
    return index


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _sample(vectors: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    if size >= len(vectors):
        return vectors
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size, replace=False))
    return vectors[rows]


_BUILDERS = {"flat": _flat, "hnsw": _hnsw, "ivf-sq8": _ivf_sq8, "ivf-pq": _ivf_pq}


def tune(index: faiss.Index, vectors: np.ndarray) -> None:
    """Set the least search effort that reaches ``TUNE_RECALL`` on probe queries.

    Effort is efSearch for hnsw, nprobe for the IVF kinds. If no setting reaches the target, the
    largest is kept: the most accurate search this index can give.
    """
    queries = probe_queries(vectors)
    truth = exact_search(vectors, queries, TUNE_K)
    choices = EF_SEARCH if isinstance(index, faiss.IndexHNSW) else [p for p in NPROBE if p <= _ivf(index).nlist]
    for effort in choices:
        set_effort(index, effort)
        _, found = index.search(queries, TUNE_K)
        if recall(found, truth) >= TUNE_RECALL:
            return


def probe_queries(vectors: np.ndarray) -> np.ndarray:
    """Midpoints of sampled rows and their nearest other row: near the data like a real query, but no row.

    A row itself would be too easy a query, for HNSW above all, where it is a node of the graph:
    tuned on rows, efSearch came out too low to reach 0.95 on queries off the rows.
    """
    rows = np.random.default_rng(1).choice(len(vectors), min(TUNE_QUERIES, len(vectors)), replace=False)
    nearest = exact_search(vectors, vectors[rows], 2)
    other = np.where(nearest[:, 0] == rows, nearest[:, 1], nearest[:, 0])
    mid = vectors[rows] + vectors[other]
    return mid / np.linalg.norm(mid, axis=1, keepdims=True)


def set_effort(index: faiss.Index, effort: int) -> None:
    """efSearch of an HNSW index, nprobe of an IVF one; a no-op for flat, which always scans everything."""
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = effort
    elif not isinstance(index, faiss.IndexFlat):
        _ivf(index).nprobe = effort


def effort_of(index: faiss.Index) -> int | None:
    """The search effort an index will use (efSearch or nprobe); None for exact search."""
    if isinstance(index, faiss.IndexHNSW):
        return index.hnsw.efSearch
    return None if isinstance(index, faiss.IndexFlat) else _ivf(index).nprobe


def _ivf(index: faiss.Index) -> faiss.IndexIVF:
    return faiss.extract_index_ivf(index)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 200_000) -> np.ndarray:
    """Row ids of the exact top ``k`` by inner product, best first.

    Chunked numpy matrix products: at 1M x 384 several times faster than a batched IndexFlatIP search
    here, and never more than ``len(queries) x chunk`` scores in memory.
    """
    ids, scores = [], []
    for start in range(0, len(vectors), chunk):
        block = queries @ vectors[start:start + chunk].T
        top = np.argpartition(-block, min(k, block.shape[1]) - 1, axis=1)[:, :k]
        ids.append(top + start)
        scores.append(np.take_along_axis(block, top, 1))
    order = np.argsort(-np.concatenate(scores, 1), axis=1, kind="stable")[:, :k]
    return np.take_along_axis(np.concatenate(ids, 1), order, 1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true neighbours that were found (recall@k, k = truth's width)."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def reconstruct(index: faiss.Index, ids: np.ndarray | list[int]) -> np.ndarray:
    """The stored vectors of rows ``ids``, to re-score candidates against the query.

    flat and hnsw give back the input exactly. ivf-sq8 and ivf-pq give their 8-bit decoded copies:
    each component within 1/255 of its trained range, cosine errors around 1e-3, which is close
    enough to re-score and rank candidates but not a copy of the input.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return index.reconstruct_batch(ids)


def save(index: faiss.Index, path: Path | str) -> None:
    """Write ``index`` to ``path`` followed by a trailer holding its length (see :func:`open_index`)."""
    faiss.write_index(index, str(path))
    size = os.path.getsize(path)
    with open(path, "ab") as fh:
        fh.write(_TRAILER.pack(_MAGIC, size))


def open_index(path: Path | str) -> faiss.Index:
    """Open an index written by :func:`save`, memory-mapped and read-only, tuned as it was built.

    Mapping starts a service in milliseconds whatever the size, and worker processes share the pages
    through the page cache. The flat vectors, the HNSW graph and vectors, the IVF lists and the SQ8
    re-scoring codes are all mapped. faiss cannot map ivf-pq's fast-scan block lists (~100 B a row)
    and rebuilds its per-list lookup table on open: ~150 MB of private memory at 1M. A truncated or
    foreign file raises RuntimeError, a missing one OSError.
    """
    _check_complete(Path(path))
    return faiss.read_index(str(path), _OPEN_FLAGS)


def _check_complete(path: Path) -> None:
    """The trailer must be there and match the file's length.

    faiss's mapped reader rounds a partly present last item up to a whole one, so a file cut a few
    bytes short would otherwise open and read past its end.
    """
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size >= _TRAILER.size:
            fh.seek(size - _TRAILER.size)
            magic, length = _TRAILER.unpack(fh.read(_TRAILER.size))
            if magic == _MAGIC and length == size - _TRAILER.size:
                return
    raise RuntimeError(f"{path} is truncated or was not written by index.vectors.save")
