"""Tune the fusion weights of index.search.Weights on a SQuAD-format file, with a two-fold check.

    python bench/tune.py [../shared/eval/xquad-vi/xquad.vi.json]

Candidates are gathered once per question through the engine itself; then coordinate ascent over
each weight maximizes Answer@1 + R@1 on one half of the articles, and the result is reported on
the other half too, so a weight that only fits one half shows up as a gap between the two.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hoidap.index.build import build_index  # noqa: E402
from hoidap.index.embeddings import Embedder  # noqa: E402
from hoidap.index.evaluate import answer_rank, document_rank, load_squad  # noqa: E402
from hoidap.index.search import Engine, Weights  # noqa: E402
from hoidap.index.store import Store  # noqa: E402

GRID = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]


def score(engine: Engine, items: list, weights: Weights) -> dict[str, float]:
    r1 = a1 = a3 = 0
    for question, cands in items:
        response = engine.rank(cands, 10, weights)
        d = document_rank([r.document_id for r in response.results], question.document_id)
        a = answer_rank([(x.document_id, x.text) for x in response.answers], question.document_id, question.answers)
        r1 += d == 1
        a1 += a == 1
        a3 += a is not None and a <= 3
    n = len(items)
    return {"r_at_1": r1 / n, "answer_at_1": a1 / n, "answer_at_3": a3 / n}


def objective(m: dict[str, float]) -> float:
    return m["answer_at_1"] + m["r_at_1"]


def ascend(engine: Engine, items: list, start: Weights, rounds: int = 2) -> Weights:
    best, best_value = start, objective(score(engine, items, start))
    for _ in range(rounds):
        for field in dataclasses.fields(Weights):
            for value in GRID:
                trial = dataclasses.replace(best, **{field.name: value})
                v = objective(score(engine, items, trial))
                if v > best_value + 1e-9:
                    best, best_value = trial, v
                    print(f"  {field.name}={value}: {v:.4f}", flush=True)
    return best


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared/eval/xquad-vi/xquad.vi.json")
    documents, questions = load_squad(path)
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        build_index(documents, Path(tmp), embedder)
        engine = Engine(Store.open(Path(tmp)), embedder)
        started = time.perf_counter()
        items = [(q, engine.candidates(q.text)) for q in questions]
        print(f"candidates for {len(items)} questions in {time.perf_counter() - started:.1f} s")
        article = lambda q: int(q.document_id[1:].split("p")[0])  # noqa: E731
        folds = [[it for it in items if article(it[0]) % 2 == k] for k in (0, 1)]
        print("defaults:", {k: round(v, 4) for k, v in score(engine, items, Weights()).items()})
        for k in (0, 1):
            print(f"fold {k}: tuning on {len(folds[k])} questions")
            w = ascend(engine, folds[k], Weights())
            print(f"  weights: {w}")
            print(f"  tuned half: {score(engine, folds[k], w)}")
            print(f"  other half: {score(engine, folds[1 - k], w)}  (defaults: {score(engine, folds[1 - k], Weights())})")


if __name__ == "__main__":
    main()
