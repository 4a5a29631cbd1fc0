"""Choose the reader's weight in the answer ranking (``Weights.reader``) on data the reader never trained on.

    .venv/bin/python bench/tune_reader.py [--squad]

The collection is every paragraph of MLQA-vi dev (``../shared/train/``); the questions are the ones
``train/reader.py`` held out (whole articles, its seed 0), asked with their diacritics and without.
With ``--squad``, also the 500 English SQuAD train questions it held out, over their articles' paragraphs
(110 Vietnamese questions alone leave a difference of 0.03 within chance).
For each weight and margin the same candidates are ranked again (``Engine.rank``), and Answer@1,
Answer@3, R@1 and the share of questions the reader re-ranked are printed; weight 0 keeps the reader's
reading but not its say in the order. XQuAD-vi, the
test set, is not read here.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "train"))

from reader import split_by_article  # noqa: E402  (train/reader.py: the held-out articles)

from hoidap.index.build import build_index  # noqa: E402
from hoidap.index.embeddings import Embedder  # noqa: E402
from hoidap.index.evaluate import answer_rank, document_rank, load_squad  # noqa: E402
from hoidap.index.search import Engine, Weights  # noqa: E402
from hoidap.index.store import Store  # noqa: E402
from hoidap.index.text import fold  # noqa: E402

MLQA = ROOT.parent / "shared" / "train" / "mlqa-vi.dev.json"
SQUAD = ROOT.parent / "shared" / "train" / "squad-v1.1.train.json"
GRID = [0.0, 0.25, 0.5, 1.0, 2.0]
MARGINS = [float("inf"), 1.0, 0.5, 0.25]  # Weights.reader_margin: read only when the best two are this close


def held_out_ids() -> set[str]:
    articles = json.loads(MLQA.read_text(encoding="utf-8"))["data"]
    held, _ = split_by_article(articles, 100, random.Random("mlqa-0"))
    return {str(q["id"]) for a in held for p in a["paragraphs"] for q in p["qas"]}


def held_out_squad(folder: Path) -> Path:
    """The SQuAD train articles ``train/reader.py`` held out (its seed 0), as a SQuAD file in ``folder``."""
    articles = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    held, _ = split_by_article(articles, 500, random.Random("squad-0"))
    path = folder / "squad-held-out.json"
    path.write_text(json.dumps({"data": held}, ensure_ascii=False), encoding="utf-8")
    return path


def main() -> None:
    embedder = Embedder()
    documents, questions = load_squad(MLQA)
    held = held_out_ids()
    tune(embedder, documents, [q for q in questions if q.id in held], "MLQA-vi")
    if "--squad" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            documents, questions = load_squad(held_out_squad(Path(tmp)))
        tune(embedder, documents, questions[:500], "SQuAD (English)", plain=False)


def tune(embedder: Embedder, documents: list, questions: list, name: str, plain: bool = True) -> None:
    """Answer@1, Answer@3 and R@1 at each reader weight; ``plain``: also asked without diacritics."""
    with tempfile.TemporaryDirectory() as tmp:
        build_index(documents, Path(tmp), embedder)
        engine = Engine(Store.open(Path(tmp)), embedder)
        ways = [("with diacritics", questions)]
        if plain:
            ways.append(("without", [dataclasses.replace(q, text=fold(q.text)) for q in questions]))
        for typed, asked in ways:
            items = [(q, engine.candidates(q.text)) for q in asked]
            print(f"{len(items)} held-out {name} questions {typed}, {len(documents)} paragraphs")
            gaps = []
            for _, cands in items:  # the best two answers' score gap before reading: what the margin gates
                scores = [a.score for a in engine.rank(cands, 10, Weights(reader=0.0)).answers[:2]]
                gaps.append(scores[0] - scores[1] if len(scores) == 2 else float("inf"))
            for weight in GRID:
                for margin in MARGINS if weight else MARGINS[:1]:
                    r1 = a1 = a3 = 0
                    for q, cands in items:
                        chosen = dataclasses.replace(Weights(), reader=weight, reader_margin=margin)
                        response = engine.rank(cands, 10, chosen)
                        a = answer_rank([(x.document_id, x.text) for x in response.answers], q.document_id,
                                        q.answers)
                        r1 += document_rank([r.document_id for r in response.results], q.document_id) == 1
                        a1 += a == 1
                        a3 += a is not None and a <= 3
                    n = len(items)
                    read = sum(g < margin for g in gaps) / n if weight else 0.0
                    print(f"  reader weight {weight:<4} margin {margin:<4} read {read:.2f}  Answer@1 {a1 / n:.3f}  "
                          f"Answer@3 {a3 / n:.3f}  R@1 {r1 / n:.3f}", flush=True)

if __name__ == "__main__":
    main()
