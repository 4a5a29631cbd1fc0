"""Train the question-side adapter (hoidap.index.adapter): ``q -> normalize(q + q W)``.

The committed ``index/models/question_adapter.safetensors`` and its record ``question_adapter.json`` were
made with (run from the repository root; the record has the figures and the time):

    .venv/bin/python train/question_adapter.py --articles 100 --seed 0 --out index/models

Data (read from ``../shared/train/``, never copied; CC BY-SA): ``--articles`` articles of SQuAD v1.1 train
(English), drawn with ``--seed``; a fifth of them (whole articles) are held out for the English figures.
MLQA-vi dev (Vietnamese) is never trained on: it is the Vietnamese measure (the reader trains on part of
it, the adapter on none). XQuAD-vi (``../shared/eval/``) is the test set: never read here.

The paragraphs are indexed through the project's own build path with the default settings (the ONNX int8
encoder, sentence vectors pooled from their passage), so the adapter learns on the vectors a search
compares. Each question's positives are the sentences of its paragraph holding a gold answer (as
``hoidap eval`` counts an answer right); its candidates are all the sentences of its article. Loss: softmax
cross-entropy of the positives among the candidates at temperature ``--temperature`` (0.01, e5's own).
One pass at a small learning rate: on MLQA-vi, more passes or larger steps fitted English better and
Vietnamese worse (choices made on MLQA-vi and the English held-out articles, never on XQuAD-vi).

Deterministic given ``--seed`` and ``--threads``. ``--smoke`` trains a few steps on two articles (the tests do).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shlex
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "train"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder of the training data")
    p.add_argument("--articles", type=int, default=100, help="SQuAD train articles indexed (a fifth held out)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=64, help="questions per step")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--temperature", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "index" / "models",
                   help="folder for question_adapter.safetensors/.json")
    p.add_argument("--smoke", action="store_true", help="a few steps on two articles (tests)")
    return p.parse_args(argv)


class Examples:
    """Questions of an indexed SQuAD-format collection with their candidate sentences (their article's) and
    positives (their paragraph's sentences holding a gold answer), as vectors a search compares."""

    def __init__(self, articles: list[dict], name: str, embedder) -> None:  # noqa: ANN001
        from hoidap.index.build import build_index
        from hoidap.index.evaluate import squad_documents
        from hoidap.index.store import Store

        documents, questions = squad_documents(articles, name)
        with tempfile.TemporaryDirectory(prefix="hoidap-adapter-") as tmp:
            build_index(documents, Path(tmp), embedder)
            store = Store.open(Path(tmp))
            shown = store.passages(list(range(store.info.passages))).values()
            rows = sorted((sid, p.document_id, p.text_of(s)) for p in shown for sid, s in p.sentences.items())
            self.sentences = store.sentence_vectors_of([r[0] for r in rows]).astype(np.float32)
        texts = [r[2] for r in rows]
        of_document: dict[str, list[int]] = {}
        of_article: dict[str, list[int]] = {}
        for i, (_, doc, _) in enumerate(rows):
            of_document.setdefault(doc, []).append(i)
            of_article.setdefault(doc.split("p")[0], []).append(i)
        self.items = []  # (question row, article sentence rows, paragraph sentence rows, positive rows)
        for n, q in enumerate(questions):
            paragraph = of_document.get(q.document_id, [])
            positives = [i for i in paragraph if any(unicodedata.normalize("NFC", a) in texts[i] for a in q.answers)]
            if positives:
                self.items.append((n, of_article[q.document_id.split("p")[0]], paragraph, positives))
        self.questions = embedder.encode([q.text for q in questions], "query")

    def accuracy(self, matrix: np.ndarray | None, scope: str) -> float:
        """Share of questions whose first sentence (by cosine with the adapted question) is a positive, among
        their paragraph's (``scope="paragraph"``) or their article's sentences."""
        from hoidap.index.adapter import QuestionAdapter

        q = self.questions if matrix is None else QuestionAdapter(matrix)(self.questions)
        right = 0
        for n, article, paragraph, positives in self.items:
            candidates = paragraph if scope == "paragraph" else article
            right += candidates[int(np.argmax(self.sentences[candidates] @ q[n]))] in positives
        return round(right / len(self.items), 4)

    def figures(self, matrix: np.ndarray | None) -> dict:
        return {"questions": len(self.items), "paragraph": self.accuracy(matrix, "paragraph"),
                "article": self.accuracy(matrix, "article")}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.time()
    import torch
    from safetensors.numpy import save_file

    from hoidap.index.embeddings import Embedder

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    squad = json.loads((args.data / "squad-v1.1.train.json").read_text(encoding="utf-8"))["data"]
    mlqa = json.loads((args.data / "mlqa-vi.dev.json").read_text(encoding="utf-8"))["data"]
    n_articles = 2 if args.smoke else args.articles
    articles = rng.sample(squad, n_articles)
    held = max(1, n_articles // 5)
    embedder = Embedder()  # the defaults a search runs with
    train = Examples(articles[held:], "squad-v1.1.train.json", embedder)
    english = Examples(articles[:held], "squad-v1.1.train.json", embedder)
    vietnamese = Examples(mlqa[:3] if args.smoke else mlqa, "mlqa-vi.dev.json", embedder)
    print(f"{len(train.items)} questions to train on, {len(english.items)} English and {len(vietnamese.items)} "
          f"Vietnamese held out; data ready in {time.time() - started:.0f} s", flush=True)

    sentences = torch.from_numpy(train.sentences)
    questions = torch.from_numpy(np.ascontiguousarray(train.questions))
    W = torch.zeros(questions.shape[1], questions.shape[1], requires_grad=True)  # starts as the identity map
    optimizer = torch.optim.Adam([W], lr=args.lr)
    order = list(range(len(train.items)))
    steps = 0
    training = time.time()
    for _ in range(args.epochs):
        rng.shuffle(order)
        for b in range(0, len(order), args.batch):
            batch = [train.items[i] for i in order[b:b + args.batch]]
            q = questions[[item[0] for item in batch]]
            q = torch.nn.functional.normalize(q + q @ W, dim=1)
            loss = torch.zeros(())
            for k, (_, article, _, positives) in enumerate(batch):
                scores = sentences[article] @ q[k] / args.temperature
                positive = torch.tensor([row in positives for row in article])
                loss = loss + torch.logsumexp(scores, 0) - torch.logsumexp(scores[positive], 0)
            optimizer.zero_grad()
            (loss / len(batch)).backward()
            optimizer.step()
            steps += 1
            if args.smoke and steps == 3:
                break
    matrix = W.detach().numpy().astype(np.float32)
    train_seconds = time.time() - training

    figures = {
        "squad_heldout": {"before": english.figures(None), "after": english.figures(matrix)},
        "mlqa_vi": {"before": vietnamese.figures(None), "after": vietnamese.figures(matrix)},
    }
    print(json.dumps(figures, indent=1), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / "question_adapter.safetensors"
    save_file({"W": matrix}, str(weights))
    record = {
        "what": "question-side adapter for hoidap.index.adapter: q -> normalize(q + q W), W 384 x 384 (fp32), "
                "for multilingual-e5-small with the default settings (onnx-int8, pooled sentence vectors)",
        "data": {
            "squad-v1.1.train.json": f"{n_articles} articles drawn with the seed: {len(train.items)} questions "
                                     f"trained on, {len(english.items)} held out ({held} whole articles); "
                                     "SQuAD v1.1, CC BY-SA 4.0",
            "mlqa-vi.dev.json": f"{len(vietnamese.items)} questions, measured only; MLQA v1, CC BY-SA 3.0",
            "never_used": "../shared/eval/ (XQuAD-vi is the test set)",
        },
        "licence": "the learned parameters are an adaptation of CC BY-SA data: CC BY-SA 4.0",
        "command": " ".join(shlex.quote(a) for a in
                            [".venv/bin/python", "train/question_adapter.py", *(argv if argv is not None else sys.argv[1:])]),
        "seed": args.seed, "epochs": args.epochs, "batch_questions": args.batch, "lr": args.lr,
        "temperature": args.temperature, "steps": steps, "learned_parameters": int(matrix.size),
        "training_seconds": round(train_seconds, 1), "wall_seconds": round(time.time() - started),
        "machine": f"{platform.machine()}, {args.threads} torch threads (shared 2-core machine), torch {torch.__version__}",
        "figures": figures,
        "figures_note": "share of questions whose sentence closest to the question (before: the model's own "
                        "vector; after: adapted) holds a gold answer, among the sentences of its paragraph or "
                        "of its whole article",
    }
    (args.out / "question_adapter.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) in {time.time() - started:.0f} s", flush=True)
    return record


if __name__ == "__main__":
    main()
