"""Indexing throughput: passages/s of ``build_index`` against the encoder alone, and peak memory.

    .venv/bin/python bench/indexing.py [--passages 5000] [--raw-passages 1000] [--backend onnx]
                                       [--sentence-vectors encoded pooled]
    .venv/bin/python bench/indexing.py --ray [--passages 5000]

The corpus is made, not found: the 240 paragraphs of XQuAD-vi (48 Wikipedia articles translated
into Vietnamese, ``xquad-r.vi.json``, which gives each paragraph's sentences) written as one text file
per article, copied until the index has at least ``--passages`` passages. Copy 0 is the original; in
every later copy each paragraph's sentences are shuffled (seeded), so most passages differ in order
but not in content: vocabulary and lengths are those of 240 real paragraphs. The output says how
many passage texts are distinct.

``build_index`` counts tokens, splits passages and sentences, embeds both and writes the index, once
for each kind of sentence vectors, into a fresh index: "encoded" encodes each passage's sentences apart
too (about twice the text of the passages alone), "pooled" pools them from the passage's pass. The raw line encodes the
same passage texts with ``Embedder.encode`` (or a seeded random sample of them, ``--raw-passages``).
Peak memory is the process's maximum resident set (``getrusage``), which only grows: read each line
as the peak up to then. The default run takes about 7 minutes with onnx-int8 on 2 cores; torch is
several times slower (use ``--passages 1000``).

``--ray`` (needs ``hoidap[ray]``) times instead the default build here and on a local Ray cluster with 1 and
then 2 embedding actors (``hoidap index --ray --ray-actors N``: files read by Ray tasks, embedded by the
actors), each into a fresh index; the cluster is started before the timings (its start is printed apart)
and each build includes starting its actors.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hoidap.index.build import (DEFAULT_PASSAGE_TOKENS, SENTENCE_VECTORS, build_index, load_files,  # noqa: E402
                         split_document)
from hoidap.index.embeddings import BACKENDS, Embedder, resolve_backend  # noqa: E402
from hoidap.index.text import normalize  # noqa: E402

XQUAD_R = ROOT.parent / "shared" / "eval" / "xquad-vi" / "xquad-r.vi.json"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def write_corpus(folder: Path, copies: int) -> None:
    """One file per article and copy, one paragraph per line (the corpus format)."""
    articles = json.loads(XQUAD_R.read_text(encoding="utf-8"))["data"]
    for copy in range(copies):
        rng = np.random.default_rng(copy)
        for n, article in enumerate(articles):
            lines = []
            for para in article["paragraphs"]:
                sentences = para["sentences"]
                order = rng.permutation(len(sentences)) if copy else range(len(sentences))
                lines.append(" ".join(sentences[i].strip() for i in order))
            name = f"{copy:03d}-{n:02d}-{article['title'][:40].replace('/', '_')}.txt"
            (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def passage_texts(folder: Path, embedder: Embedder) -> list[str]:
    """The passage texts ``build_index`` will embed, split by its own function."""
    return [normalize(doc.text[p.start:p.end]) for doc in load_files([folder], [])
            for p in split_document(doc, embedder, DEFAULT_PASSAGE_TOKENS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=5000, help="at least this many passages in the index")
    parser.add_argument("--raw-passages", type=int, default=0, help="sample size for the raw encoder (0: all)")
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: $HOIDAP_BACKEND, else Embedder's")
    parser.add_argument("--sentence-vectors", choices=SENTENCE_VECTORS, nargs="+", default=list(SENTENCE_VECTORS),
                        help="the kinds of sentence vectors to build with, each in a fresh index (default: all)")
    parser.add_argument("--ray", action="store_true", help="local against a local Ray cluster with 1 and 2 actors")
    args = parser.parse_args()
    if args.ray:
        compare_ray(args.passages)
        return
    embedder = Embedder(backend=resolve_backend(args.backend))
    started = time.perf_counter()
    embedder.encode(["khởi động"], "passage")  # load (and on first use export) the model outside the timings
    load_seconds, load_peak = time.perf_counter() - started, peak_mb()

    with tempfile.TemporaryDirectory(prefix="hoidap-indexing-") as tmp:
        corpus, data_dir = Path(tmp) / "corpus", Path(tmp) / "data"
        corpus.mkdir()
        write_corpus(corpus, 1)
        per_copy = len(passage_texts(corpus, embedder))
        copies = -(-args.passages // per_copy)
        write_corpus(corpus, copies)
        texts = passage_texts(corpus, embedder)

        builds = []  # (kind, report, peak RSS after it)
        for kind in args.sentence_vectors:
            builds.append((kind, build_index(load_files([corpus], []), data_dir / kind, embedder,
                                             sentence_vectors=kind), peak_mb()))
        rng = np.random.default_rng(0)
        n_raw = len(texts) if args.raw_passages <= 0 else min(args.raw_passages, len(texts))
        sample = [texts[i] for i in rng.choice(len(texts), n_raw, replace=False)]
        started = time.perf_counter()
        embedder.encode(sample, "passage")
        raw_seconds = time.perf_counter() - started
        raw_peak = peak_mb()

    threads = "torch's own" if embedder.backend == "torch" else os.environ.get("HOIDAP_THREADS", "1 (default)")
    print(f"backend {embedder.backend}, {os.cpu_count()} cores, threads a call: {threads}; model ready in "
          f"{load_seconds:.1f} s")
    report = builds[0][1]
    print(f"corpus: XQuAD-vi's 240 paragraphs x {copies} copies (sentences shuffled after copy 0), "
          f"{report.documents} files; {len(texts)} passages ({len(set(texts))} distinct texts), "
          f"{report.sentences} sentences, mean {np.mean([len(t) for t in texts]):.0f} characters a passage")
    raw_rate = n_raw / raw_seconds
    print(f"{'step':<42} {'passages':>8} {'seconds':>8} {'passages/s':>10} {'peak RSS MB':>11}")
    print(f"{'model load':<42} {'':>8} {load_seconds:>8.1f} {'':>10} {load_peak:>11.0f}")
    for kind, report, peak in builds:
        print(f"{f'build_index, {kind} sentence vectors':<42} {report.passages:>8} {report.seconds:>8.1f} "
              f"{report.passages / report.seconds:>10.1f} {peak:>11.0f}")
    print(f"{'raw encode of the passage texts':<42} {n_raw:>8} {raw_seconds:>8.1f} {raw_rate:>10.1f} "
          f"{raw_peak:>11.0f}")
    for kind, report, _ in builds:
        print(f"build_index with {kind} sentence vectors runs at {report.passages / report.seconds / raw_rate:.2f}x "
              f"the raw encoder's passage rate")


def compare_ray(passages: int) -> None:
    """The default build here, then embedded on a local Ray cluster by 1 and 2 actors."""
    from hoidap.index.distributed import RayOptions, connect, loaded, shutdown
    from hoidap.index.documents import discover

    embedder = Embedder()
    embedder.encode(["khởi động"], "passage")
    with tempfile.TemporaryDirectory(prefix="hoidap-indexing-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        write_corpus(corpus, 1)
        write_corpus(corpus, -(-passages // len(passage_texts(corpus, embedder))))
        local = build_index(load_files([corpus], []), Path(tmp) / "local", embedder)
        started = time.perf_counter()
        connect(RayOptions(temp_dir=Path(tmp) / "ray"))
        cluster_seconds = time.perf_counter() - started
        try:
            on_ray = {n: build_index(loaded(list(discover([corpus])), [], RayOptions(actors=n)),
                                     Path(tmp) / f"ray-{n}", embedder, ray=RayOptions(actors=n)) for n in (1, 2)}
        finally:
            shutdown()
    print(f"{os.cpu_count()} cores; {local.passages} passages, {local.documents} files; a local Ray cluster "
          f"started in {cluster_seconds:.1f} s (not in the builds' times)")
    print(f"{'build':<28} {'seconds':>8} {'passages/s':>10} {'x local time':>12}")
    print(f"{'here (no Ray)':<28} {local.seconds:>8.1f} {local.passages / local.seconds:>10.1f} {1:>12.2f}")
    for n, report in on_ray.items():
        print(f"{f'Ray, {n} actor' + ('s' if n > 1 else ''):<28} {report.seconds:>8.1f} "
              f"{report.passages / report.seconds:>10.1f} {report.seconds / local.seconds:>12.2f}")


if __name__ == "__main__":
    main()
