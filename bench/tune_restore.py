"""Choose when a question typed without diacritics is searched in its restored form (``RESTORE_CONFIDENCE``).

    .venv/bin/python bench/tune_restore.py

The collection is every paragraph of MLQA-vi dev (``../shared/train/``), its questions asked without their
diacritics. The general counts restoration leans on (``index/models/syllable_prior.json.gz``) were counted from
MLQA-vi itself, so since they exist this flatters restoration here; ``train/syllable_prior.py`` measures them on
halves of the articles instead. Each question is searched twice, as typed (accent-folded terms, halved dense weights) and
restored (:func:`hoidap.index.diacritics.restore`); for each threshold on the restoration's confidence the
restored form is used at or above it, and Answer@1, R@1 and the share restored are printed, with the
syllable accuracy of the restorations used. XQuAD-vi, the test set, is not read here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hoidap.index import search
from hoidap.index.build import build_index
from hoidap.index.embeddings import Embedder
from hoidap.index.evaluate import answer_rank, document_rank, load_squad
from hoidap.index.search import Engine
from hoidap.index.store import Store
from hoidap.index.text import fold, normalize, tokens

MLQA = Path(__file__).resolve().parent.parent.parent / "shared" / "train" / "mlqa-vi.dev.json"
GRID = [0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.01]


def main() -> None:
    documents, questions = load_squad(MLQA)
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        build_index(documents, Path(tmp), embedder)
        engine = Engine(Store.open(Path(tmp)), embedder)
        search.RESTORE_CONFIDENCE = 0.0  # every restoration used: the grid decides below
        rows = []
        for q in questions:
            typed = normalize(fold(q.text))
            restored = engine.interpret(typed)
            outcomes = []
            for use in (False, True):
                response = engine.search(typed, top_k=10, restore=use)
                a = answer_rank([(x.document_id, x.text) for x in response.answers], q.document_id, q.answers)
                r = document_rank([x.document_id for x in response.results], q.document_id)
                outcomes.append((a == 1, r == 1))
            right = tokens(q.text) == tokens(restored.text) if restored else False
            rows.append((restored.confidence if restored else -1.0, outcomes, right))
    n = len(rows)
    print(f"{n} MLQA-vi questions without diacritics, {len(documents)} paragraphs")
    for t in GRID:
        used = [row[0] >= t for row in rows]
        a1 = sum(o[u][0] for (_, o, _), u in zip(rows, used)) / n
        r1 = sum(o[u][1] for (_, o, _), u in zip(rows, used)) / n
        exact = sum(row[2] for row, u in zip(rows, used) if u) / max(sum(used), 1)
        print(f"  threshold {t:<5} restored {sum(used) / n:.3f}  Answer@1 {a1:.3f}  R@1 {r1:.3f}  "
              f"restored exactly {exact:.3f}", flush=True)


if __name__ == "__main__":
    main()
