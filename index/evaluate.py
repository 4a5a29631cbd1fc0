"""Evaluation on SQuAD-format question sets, through the same search entry point users call.

Definitions (``shared/notes/baseline.md``, so numbers compare across projects):
R@k: the gold document is among the first k distinct documents of the results.
MRR@10: mean of 1/rank of the gold document, 0 past 10.
Answer@k: one of the first k answer sentences comes from the gold document and contains a gold
answer text (after NFC normalization).
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .documents import Document, content_hash
from .errors import HoidapError
from .search import Engine
from .text import normalize, tokens

RANK_DEPTH = 10


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answers: tuple[str, ...]
    document_id: str
    marked: str | None = None  # the question as written, when ``text`` is it typed without diacritics


@dataclass
class Metrics:
    questions: int
    r_at_1: float
    r_at_5: float
    mrr_at_10: float
    answer_at_1: float
    answer_at_3: float
    seconds: float
    span_given: float  # of the questions whose first answer is right, the share given an answer phrase
    span_exact: float | None  # SQuAD's exact match of the phrases given, against the gold answers (None: none given)
    span_f1: float | None  # and their token F1
    # questions asked without diacritics (``Question.marked``): the share of their syllables, and of whole
    # questions, that restoration gives back as written, and the share searched in the restored form
    restored_syllables: float | None = None
    restored_questions: float | None = None
    restoration_used: float | None = None


def load_squad(path: Path) -> tuple[list[Document], list[Question]]:
    """Every paragraph becomes one document; every question points at its paragraph's document."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HoidapError(f"{path}: not a readable SQuAD-format JSON file ({exc})") from exc
    documents, questions = squad_documents(data, Path(path).name)
    if not questions:
        raise HoidapError(f"{path}: no questions found")
    return documents, questions


def squad_documents(articles: list[dict], name: str) -> tuple[list[Document], list[Question]]:
    """:func:`load_squad` of the SQuAD-format ``articles`` of the file ``name`` (training takes some of a file's)."""
    documents, questions = [], []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"a{a}p{p}"
            text = unicodedata.normalize("NFC", paragraph["context"])
            documents.append(Document(doc_id, article.get("title", doc_id), f"{name}#{a}/{p}", "squad",
                                      text, content_hash(text)))
            for qa in paragraph["qas"]:
                answers = tuple(unicodedata.normalize("NFC", x["text"]) for x in qa["answers"])
                questions.append(Question(str(qa["id"]), qa["question"], answers, doc_id))
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
        response = engine.search(q.text, top_k=max(top_k, RANK_DEPTH), answers_k=max(top_k, RANK_DEPTH))
        doc_rank = document_rank([r.document_id for r in response.results], q.document_id)
        ans_rank = answer_rank([(a.document_id, a.text) for a in response.answers], q.document_id, q.answers)
        best = response.answers[0] if response.answers else None
        restoration = {}
        if q.marked is not None:
            restored = engine.interpret(normalize(q.text))
            restoration = {"marked": q.marked, "restored": restored.text if restored else q.text,
                           "interpreted": response.interpreted_query}
        yield {**restoration, "id": q.id, "question": q.text, "gold": list(q.answers), "gold_document": q.document_id,
               "answered": best.text if best else None,
               "answered_document": best.document_id if best else None,
               "span": best.span.text if best and best.span else None,
               "document_rank": doc_rank, "answer_rank": ans_rank}


def summarize(rows: list[dict], seconds: float) -> Metrics:
    n = len(rows)

    def share(ok) -> float:
        return round(sum(1 for r in rows if ok(r)) / n, 4)

    def within(key: str, k: int):
        return lambda r: r[key] is not None and r[key] <= k

    mrr = sum(1 / r["document_rank"] for r in rows if r["document_rank"] and r["document_rank"] <= RANK_DEPTH) / n
    right = [r for r in rows if r["answer_rank"] == 1]
    spans = [(r["span"], r["gold"]) for r in rows if r.get("span")]
    exact = [max(float(normalize_answer(s) == normalize_answer(g)) for g in gold) for s, gold in spans]
    f1 = [max(f1_score(s, g) for g in gold) for s, gold in spans]
    restoration = [r for r in rows if "marked" in r]
    pairs = [(tokens(r["marked"]), tokens(r["restored"])) for r in restoration]
    restored_syllables = sum(sum(a == b for a, b in zip(m, g)) if len(m) == len(g) else 0 for m, g in pairs)
    return Metrics(n, share(within("document_rank", 1)), share(within("document_rank", 5)), round(mrr, 4),
                   share(within("answer_rank", 1)), share(within("answer_rank", 3)), round(seconds, 1),
                   round(sum(1 for r in right if r.get("span")) / len(right), 4) if right else 0.0,
                   round(sum(exact) / len(exact), 4) if spans else None, round(sum(f1) / len(f1), 4) if spans else None,
                   *((round(restored_syllables / max(sum(len(m) for m, _ in pairs), 1), 4),
                      round(sum(m == g for m, g in pairs) / len(pairs), 4),
                      round(sum(r["interpreted"] is not None for r in restoration) / len(pairs), 4))
                     if restoration else ()))


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalization, Vietnamese-aware: NFC, lower case, no punctuation (any script's), no
    English articles; Vietnamese syllables are words as they are."""
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(ch for ch in text if ch not in string.punctuation and not unicodedata.category(ch).startswith("P"))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def f1_score(prediction: str, truth: str) -> float:
    """SQuAD's token F1 of a predicted answer against a gold one, after :func:`normalize_answer`."""
    p, t = normalize_answer(prediction).split(), normalize_answer(truth).split()
    same = sum((Counter(p) & Counter(t)).values())
    if not same:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


# Abstention: does the engine know when the documents do not answer? ------------------------------------------

_PARAGRAPH = re.compile(r"^a(\d+)p(\d+)$")


def article_of(doc_id: str) -> str:
    """``a3`` for the paragraph document ``a3p1`` of :func:`load_squad`."""
    m = _PARAGRAPH.match(doc_id)
    return f"a{m.group(1)}" if m else doc_id


def split_by_position(documents: list[Document]) -> tuple[list[Document], list[Document]]:
    """Two collections of one set: each article's even-numbered paragraphs, and its odd-numbered ones.

    A question asked against the collection without its paragraph is unanswerable there, on the same topic
    when the article has paragraphs in both."""
    halves: tuple[list[Document], list[Document]] = ([], [])
    for doc in documents:
        m = _PARAGRAPH.match(doc.id)
        halves[int(m.group(2)) % 2 if m else 0].append(doc)
    return halves


def abstention(collections: list[tuple[Engine, list[Document]]], questions: list[Question],
               off_topic: list[Question] = (), top_k: int = RANK_DEPTH) -> Iterator[dict]:
    """Every question asked against every collection: one row each, with the case, whether the first answer is
    correct (from the gold document and holding a gold answer), its confidence and its confidence features.

    Cases: ``answerable`` (the collection holds the gold paragraph), ``same_topic`` (it holds other paragraphs
    of the article, not the gold one), ``other_topic`` (nothing of the article), ``off_topic`` (a question of
    another set)."""
    held = [({d.id for d in docs}, {article_of(d.id) for d in docs}) for _, docs in collections]
    for q, case_of in [(q, None) for q in questions] + [(q, "off_topic") for q in off_topic]:
        for n, (engine, _) in enumerate(collections):
            ids, articles = held[n]
            case = case_of or ("answerable" if q.document_id in ids else
                               "same_topic" if article_of(q.document_id) in articles else "other_topic")
            c = engine.candidates(q.text)
            response = engine.rank(c, top_k)
            first = response.answers[0] if response.answers else None
            correct = case == "answerable" and first is not None and \
                answer_rank([(first.document_id, first.text)], q.document_id, q.answers) == 1
            yield {"id": q.id, "collection": n, "question": q.text, "case": case, "gold": list(q.answers),
                   "gold_document": q.document_id, "answer": first.text if first else None,
                   "answer_document": first.document_id if first else None, "correct": correct,
                   "confidence": first.confidence if first else 0.0,
                   "features": [round(float(v), 6) for v in c.features[0]] if first else None}


def auroc(positive: list[float], negative: list[float]) -> float | None:
    """Probability that a positive scores above a negative (ties count half); None without both."""
    if not positive or not negative:
        return None
    import numpy as np

    scores = np.concatenate([np.asarray(positive, float), np.asarray(negative, float)])
    order = scores.argsort(kind="stable")
    ranks = np.empty(scores.size)
    ranks[order] = np.arange(1, scores.size + 1)
    for value in np.unique(scores):  # average ranks of ties
        tie = scores == value
        ranks[tie] = ranks[tie].mean()
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration_error(confidence: list[float], correct: list[bool], bins: int = 10) -> float | None:
    """Expected calibration error: over equal-width confidence bins, the share-weighted gap between the mean
    confidence and the share correct."""
    if not confidence:
        return None
    total, error = len(confidence), 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(p, y) for p, y in zip(confidence, correct) if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if inside:
            error += len(inside) / total * abs(sum(p for p, _ in inside) / len(inside)
                                               - sum(y for _, y in inside) / len(inside))
    return error


def abstention_summary(rows: list[dict], threshold: float) -> dict:
    """AUROC of correct first answers against each unanswerable case, and at ``threshold`` the share of correct
    first answers kept, of each unanswerable case refused and of wrong first answers refused; the ECE of the
    confidence over every row (correct or not)."""
    def conf(case: str | None = None, correct: bool | None = None) -> list[float]:
        return [r["confidence"] for r in rows
                if (case is None or r["case"] == case) and (correct is None or r["correct"] == correct)]

    def share(values: list[float], refused: bool) -> float | None:
        if not values:
            return None
        return round(sum((v < threshold) == refused for v in values) / len(values), 4)

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    correct = conf(correct=True)
    summary = {"threshold": threshold, "rows": len(rows),
               "answerable": len(conf("answerable")), "correct": len(correct)}
    for case in ("same_topic", "other_topic", "off_topic"):
        summary[case] = len(conf(case))
    summary |= {"auroc_same_topic": rounded(auroc(correct, conf("same_topic"))),
                "auroc_other_topic": rounded(auroc(correct, conf("other_topic"))),
                "auroc_off_topic": rounded(auroc(correct, conf("off_topic"))),
                "kept_correct": share(correct, refused=False),
                "refused_same_topic": share(conf("same_topic"), refused=True),
                "refused_other_topic": share(conf("other_topic"), refused=True),
                "refused_off_topic": share(conf("off_topic"), refused=True),
                "refused_wrong": share(conf("answerable", correct=False), refused=True),
                "ece": rounded(calibration_error([r["confidence"] for r in rows], [r["correct"] for r in rows]))}
    return summary
