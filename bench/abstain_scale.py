"""Does the confidence threshold hold when the collection is ten times smaller or larger? (issue 14)

The XQuAD-vi questions, asked by the `hoidap eval --unanswerable` protocol (each article's paragraphs split
in two collections by position, every question asked against both), over collections of three sizes:

- articles: groups of ``--group`` articles (5: about 12 paragraphs a collection, ten times smaller); with
  ``--group 1`` each article alone (2-3 paragraphs a collection, about fifty times smaller);
- xquad: all 48 articles (120 paragraphs a collection), as `hoidap eval --unanswerable`;
- xquad+distractors: each half plus corpus/, the 451 MLQA-vi paragraphs (../shared/train, used here as text
  only) and SQuAD v1.1 train paragraphs (English) up to about ten times the paragraphs.

For each it prints Answer@1 among the answerable rows, AUROC, and at the default threshold the shares of correct
first answers kept and of same-topic unanswerable questions refused.

    .venv/bin/python bench/abstain_scale.py [--group 5] [--sizes articles,xquad,xquad+distractors] [--english 600]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def main() -> None:
    from hoidap.index.build import build_index, load_files
    from hoidap.index.embeddings import Embedder
    from hoidap.index.evaluate import abstention, abstention_summary, article_of, load_squad, split_by_position
    from hoidap.index.search import Engine
    from hoidap.index.store import Store

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--english", type=int, default=600, help="SQuAD train paragraphs added as distractors")
    parser.add_argument("--threshold", type=float, default=None, help="default: HOIDAP_MIN_CONFIDENCE or the fitted")
    parser.add_argument("--group", type=int, default=5, help="articles per small collection")
    parser.add_argument("--sizes", default="articles,xquad,xquad+distractors")
    parser.add_argument("--report", type=Path, help="write every row here (JSON lines, with the size)")
    args = parser.parse_args()

    documents, questions = load_squad(SHARED / "eval" / "xquad-vi" / "xquad.vi.json")
    mlqa = load_squad(SHARED / "train" / "mlqa-vi.dev.json")[0]
    english = random.Random(14).sample(load_squad(SHARED / "train" / "squad-v1.1.train.json")[0], args.english)
    # the distractors' ids must not be XQuAD's paragraph ids (a3p1): prefixed, they belong to no article
    distractors = [dataclasses.replace(d, id="mlqa-" + d.id) for d in mlqa] + \
        [dataclasses.replace(d, id="squad-" + d.id) for d in english]
    embedder = Embedder()
    halves = split_by_position(documents)
    all_rows: list[dict] = []

    def measure(name: str, collections_of: list[tuple[list, list, list]], tmp: Path) -> None:
        """``collections_of``: (questions, [docs of half 0, docs of half 1], extra docs) per group."""
        started = time.perf_counter()
        rows, paragraphs = [], []
        for g, (group_questions, group_halves, extra) in enumerate(collections_of):
            collections = []
            for n, docs in enumerate(group_halves):
                target = tmp / f"{name}-{g}-{n}"
                build_index(docs + extra, target, embedder)
                collections.append((Engine(Store.open(target), embedder, min_confidence=args.threshold), docs))
                paragraphs.append(len(docs) + len(extra))
            rows += list(abstention(collections, group_questions))
        threshold = collections[0][0].min_confidence
        summary = abstention_summary(rows, threshold)
        answerable = [r for r in rows if r["case"] == "answerable"]
        all_rows.extend(r | {"size": name} for r in rows)
        print(json.dumps({"collection": name, "documents_per_collection": round(sum(paragraphs) / len(paragraphs), 1),
                          "answer_at_1": round(sum(r["correct"] for r in answerable) / len(answerable), 4),
                          **{k: summary[k] for k in ("threshold", "auroc_same_topic", "kept_correct",
                                                     "refused_same_topic", "refused_wrong", "ece")},
                          "seconds": round(time.perf_counter() - started, 1)}), flush=True)

    with tempfile.TemporaryDirectory(prefix="hoidap-abstain-scale-") as tmp:
        sizes = args.sizes.split(",")
        if "articles" in sizes:
            articles = sorted({article_of(d.id) for d in documents}, key=lambda a: int(a[1:]))
            groups = []
            for i in range(0, len(articles), args.group):
                chosen = set(articles[i:i + args.group])
                groups.append(([q for q in questions if article_of(q.document_id) in chosen],
                               [[d for d in half if article_of(d.id) in chosen] for half in halves], []))
            measure(f"{args.group} article(s)", groups, Path(tmp))
        if "xquad" in sizes:
            measure("xquad", [(questions, list(halves), [])], Path(tmp))
        if "xquad+distractors" in sizes:
            extra = list(load_files([ROOT / "corpus"], [])) + distractors
            measure("xquad+distractors", [(questions, list(halves), extra)], Path(tmp))
    if args.report:
        args.report.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in all_rows), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
