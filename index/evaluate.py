"""Evaluation on SQuAD-format question sets, through the same search entry point users call.

Definitions (``shared/notes/baseline.md``, so numbers compare across projects):
R@k: the gold document is among the first k distinct documents of the results.
MRR@10: mean of 1/rank of the gold document, 0 past 10.
Answer@k: one of the first k answer sentences comes from the gold document and contains a gold
answer text (after NFC normalization).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .documents import Document, content_hash
from .errors import HoidapError
from .search import Engine

RANK_DEPTH = 10


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answers: tuple[str, ...]
    document_id: str


@dataclass
class Metrics:
    questions: int
    r_at_1: float
    r_at_5: float
    mrr_at_10: float
    answer_at_1: float
    answer_at_3: float
    seconds: float


def load_squad(path: Path) -> tuple[list[Document], list[Question]]:
    """Every paragraph becomes one document; every question points at its paragraph's document."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HoidapError(f"{path}: not a readable SQuAD-format JSON file ({exc})") from exc
    documents, questions = [], []
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"a{a}p{p}"
            text = unicodedata.normalize("NFC", paragraph["context"])
            documents.append(Document(doc_id, article.get("title", doc_id), f"{Path(path).name}#{a}/{p}", "squad",
                                      text, content_hash(text)))
            for qa in paragraph["qas"]:
                answers = tuple(unicodedata.normalize("NFC", x["text"]) for x in qa["answers"])
                questions.append(Question(str(qa["id"]), qa["question"], answers, doc_id))
    if not questions:
        raise HoidapError(f"{path}: no questions found")
    return documents, questions


def document_rank(ranked_documents: list[str], gold: str) -> int | None:
    """1-based rank of the gold document among distinct documents, or None if absent."""
    seen: list[str] = []
    for doc in ranked_documents:
        if doc not in seen:
            seen.append(doc)
    return seen.index(gold) + 1 if gold in seen else None


def answer_rank(answers: list[tuple[str, str]], gold: str, gold_texts: tuple[str, ...]) -> int | None:
    """1-based rank of the first (document, sentence) that is from the gold document and holds a gold answer."""
    for n, (doc, sentence) in enumerate(answers, 1):
        text = unicodedata.normalize("NFC", sentence)
        if doc == gold and any(g in text for g in gold_texts):
            return n
    return None


def evaluate(engine: Engine, questions: list[Question], top_k: int = RANK_DEPTH) -> Iterator[dict]:
    """One report row per question, in order; ranks are None where the gold was not found."""
    for q in questions:
        response = engine.search(q.text, top_k=max(top_k, RANK_DEPTH))
        doc_rank = document_rank([r.document_id for r in response.results], q.document_id)
        ans_rank = answer_rank([(a.document_id, a.text) for a in response.answers], q.document_id, q.answers)
        yield {"id": q.id, "question": q.text, "gold": list(q.answers), "gold_document": q.document_id,
               "answered": response.answers[0].text if response.answers else None,
               "answered_document": response.answers[0].document_id if response.answers else None,
               "document_rank": doc_rank, "answer_rank": ans_rank}


def summarize(rows: list[dict], seconds: float) -> Metrics:
    n = len(rows)

    def share(ok) -> float:
        return round(sum(1 for r in rows if ok(r)) / n, 4)

    def within(key: str, k: int):
        return lambda r: r[key] is not None and r[key] <= k

    mrr = sum(1 / r["document_rank"] for r in rows if r["document_rank"] and r["document_rank"] <= RANK_DEPTH) / n
    return Metrics(n, share(within("document_rank", 1)), share(within("document_rank", 5)), round(mrr, 4),
                   share(within("answer_rank", 1)), share(within("answer_rank", 3)), round(seconds, 1))
