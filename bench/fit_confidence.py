"""Fit the answer confidence (index/confidence.py) on the training data only, never on ../shared/eval/.

Protocol (issue 14): MLQA-vi dev (../shared/train/mlqa-vi.dev.json, 511 native Vietnamese questions) is split
in two collections by paragraph position within each article (even, odd); every question is asked against
both, as typed and without diacritics: answerable where its paragraph is, unanswerable on the same topic (or,
for one-paragraph articles, on another topic) where it is not. MLQA-vi is also split in two by article, and
every question asked against the half without its article (Vietnamese Wikipedia questions on other topics:
they taught the model most about off-topic Vietnamese questions). SQuAD v1.1 train questions (English) are
asked too, as off-topic ones. The label is "the first answer is correct" (from the gold paragraph, holding a gold
answer text); the features are :func:`hoidap.index.confidence.features`, computed by the engine itself.

Cross-validated by article (5 folds), it prints AUROC, ECE and kept/refused shares, the threshold refusing 85%
of same-topic unanswerable questions (the default threshold: the issue's refusal target, met on the training
data) and the one keeping 90% of correct first answers, and the parameters to paste into index/confidence.py
(fitted on everything).

    .venv/bin/python bench/fit_confidence.py [--rows /tmp/fit-rows.jsonl] [--off-topic 300]

``--rows`` keeps the asked rows: an existing file is read instead of asking again (delete it after changing
the features).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT.parent / "shared" / "train"


def ask(rows_file: Path | None, off_topic: int) -> list[dict]:
    from hoidap.index.build import build_index
    from hoidap.index.embeddings import Embedder
    from hoidap.index.evaluate import abstention, article_of, load_squad, split_by_position
    from hoidap.index.search import Engine
    from hoidap.index.store import Store
    from hoidap.index.text import fold

    documents, questions = load_squad(TRAIN / "mlqa-vi.dev.json")
    plain = [dataclasses.replace(q, id=q.id + "-plain", text=fold(q.text)) for q in questions]
    _, english = load_squad(TRAIN / "squad-v1.1.train.json")
    english = random.Random(14).sample(english, off_topic)
    embedder = Embedder()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hoidap-fit-") as tmp:
        collections = []
        for n, docs in enumerate(split_by_position(documents)):
            build_index(docs, Path(tmp) / str(n), embedder)
            collections.append((Engine(Store.open(Path(tmp) / str(n)), embedder, min_confidence=0.5), docs))
        started = time.perf_counter()
        for row in abstention(collections, questions + plain, english):
            row["plain"] = row["id"].endswith("-plain")
            rows.append(row)
        articles = sorted({article_of(d.id) for d in documents})
        random.Random(14).shuffle(articles)
        halves = [set(articles[0::2]), set(articles[1::2])]
        for n, half in enumerate(halves):
            target = Path(tmp) / f"articles-{n}"
            docs = [d for d in documents if article_of(d.id) in half]
            build_index(docs, target, embedder)
            others = [q for q in questions + plain if article_of(q.document_id) not in half]
            for row in abstention([(Engine(Store.open(target), embedder, min_confidence=0.5), docs)], others):
                row["plain"] = row["id"].endswith("-plain")
                rows.append(row)
        print(f"asked {len(rows)} times in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if rows_file:
        rows_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def fit(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[float, np.ndarray]:
    """L2-regularized logistic regression on standardized features, returned as raw-feature parameters."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    w = model.coef_[0] / scale
    return float(model.intercept_[0] - (model.coef_[0] * mean / scale).sum()), w


def main() -> None:
    from hoidap.index.confidence import FEATURES, probability
    from hoidap.index.evaluate import abstention_summary, article_of

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=Path, help="keep the asked rows here (read them if the file exists)")
    parser.add_argument("--off-topic", type=int, default=300, help="SQuAD train questions asked as off-topic")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--c", type=float, default=1.0, help="inverse L2 strength")
    parser.add_argument("--keep", type=float, default=0.90, help="share of correct first answers to keep")
    parser.add_argument("--refuse", type=float, default=0.85,
                        help="share of same-topic unanswerable questions the default threshold refuses")
    args = parser.parse_args()
    if args.rows and args.rows.exists():
        rows = [json.loads(line) for line in args.rows.read_text(encoding="utf-8").splitlines()]
    else:
        rows = ask(args.rows, args.off_topic)
    rows = [r for r in rows if r["features"] is not None]
    x = np.array([r["features"] for r in rows], dtype=np.float64)
    assert x.shape[1] == len(FEATURES), "the rows were asked with other features: delete --rows and ask again"
    y = np.array([r["correct"] for r in rows], dtype=int)
    groups = [article_of(r["gold_document"]) if r["case"] != "off_topic" else "off:" + r["id"] for r in rows]
    articles = sorted(set(groups))
    random.Random(14).shuffle(articles)
    fold_of = {a: i % args.folds for i, a in enumerate(articles)}
    folds = np.array([fold_of[g] for g in groups])
    out_of_fold = np.zeros(len(rows))
    for k in range(args.folds):
        b, w = fit(x[folds != k], y[folds != k], args.c)
        out_of_fold[folds == k] = probability(x[folds == k], b, w)
    scored = [r | {"confidence": float(p)} for r, p in zip(rows, out_of_fold)]
    correct = np.sort(out_of_fold[y == 1])
    keeping = float(np.floor(correct[int(len(correct) * (1 - args.keep))] * 100) / 100)
    same_topic = np.sort(out_of_fold[np.array([r["case"] == "same_topic" for r in rows])])
    threshold = float(np.ceil(same_topic[int(np.ceil(len(same_topic) * args.refuse)) - 1] * 100) / 100)
    print(f"{len(rows)} rows: " + ", ".join(f"{case} {sum(r['case'] == case for r in rows)}" for case in
                                            ("answerable", "same_topic", "other_topic", "off_topic"))
          + f"; {int(y.sum())} correct first answers")
    print(f"cross-validated by article ({args.folds} folds): the threshold keeping {args.keep:.0%} of correct first "
          f"answers is {keeping:.2f}; the one refusing {args.refuse:.0%} of same-topic unanswerable questions "
          f"(the default) is {threshold:.2f}")
    print(f"  at {keeping:.2f}: {json.dumps(abstention_summary(scored, keeping))}")
    for name, subset in (("all", scored), ("with diacritics", [r for r in scored if not r.get("plain")]),
                         ("without diacritics", [r for r in scored if r.get("plain")])):
        print(f"  {name}: {json.dumps(abstention_summary(subset, threshold))}")
    b, w = fit(x, y, args.c)
    answerable = [r for r in rows if r["case"] == "answerable"]
    print(f"\n# Fitted {date.today().isoformat()} by bench/fit_confidence.py on ../shared/train/mlqa-vi.dev.json "
          f"({len(answerable)} answerable, {len(rows) - len(answerable)} unanswerable rows, as typed and without "
          f"diacritics) + {args.off_topic} SQuAD v1.1 train questions as off-topic")
    print(f"INTERCEPT = {b:.6f}")
    print("COEFFICIENTS = np.array([" + ", ".join(f"{v:.6f}" for v in w) + "])  # " + ", ".join(FEATURES))


if __name__ == "__main__":
    main()
