"""What the reader costs at query time: one batched int8 ONNX call over 1, 2 and 3 candidate sentences,
against one question's encoding by the default embedder (both on one ONNX Runtime thread).

    .venv/bin/python train/reader_latency.py [--repeats 300]

Medians (and 90th percentiles) in ms over corpus/ sentences that hold the two acceptance questions'
answers and their neighbours, with the questions of tests/conftest.py.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from hoidap.index.embeddings import Embedder
from hoidap.index.reader import WEIGHTS, Reader, pair_encodings
from hoidap.index.sentences import split_sentences

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với bao nhiêu địa phương?"


def timed(run, repeats: int) -> tuple[float, float]:  # noqa: ANN001
    for _ in range(20):
        run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * len(times))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--weights", type=Path, default=WEIGHTS)
    args = p.parse_args()
    text = (ROOT / "corpus" / "hai-phong-doi-ngoai-2016.txt").read_text(encoding="utf-8")
    sentences = [text[s.start:s.end] for s in split_sentences(text)]
    first = next(i for i, s in enumerate(sentences) if "19 địa phương" in s)
    candidates = sentences[first:first + 3]
    reader, embedder = Reader(weights=args.weights), Embedder()
    tokens = [len(p.ids) for p in pair_encodings(reader.tokenizer, [QUESTION] * 3, candidates)]
    q_ms = timed(lambda: embedder.encode([QUESTION], "query"), args.repeats)
    print(f"question encoding (Embedder, {embedder.backend}): median {q_ms[0]:.2f} ms, p90 {q_ms[1]:.2f} ms")
    for n in (1, 2, 3):
        ms = timed(lambda: reader.read(QUESTION, candidates[:n]), args.repeats)
        print(f"reader, {n} pair(s) of {tokens[:n]} tokens: median {ms[0]:.2f} ms ({ms[0] / q_ms[0]:.2f}x), "
              f"p90 {ms[1]:.2f} ms")


if __name__ == "__main__":
    main()
