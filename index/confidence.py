"""How sure an answer is: a calibrated probability that the answer sentence holds the answer.

Ranking scores are min-max scaled among one question's own candidates, so they say which sentence is
best, never whether the best is any good. This logistic model reads the signals the engine has already
computed, each made comparable across collections and questions: cosines as they are (absolute for one
model), BM25 divided by the most the question's terms could score anywhere in the index, the share of
the question's content words the sentence covers, whether it offers the asked kind of value, the margin
over the next answer and whether the question was typed without diacritics.

:func:`features` is the one feature extraction, used at query time (:meth:`Engine.rank`) and by the fitting
script (``bench/fit_confidence.py``); to add a signal, add a column there and to :data:`FEATURES`, re-run
the script and paste the parameters it prints here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .errors import HoidapError

if TYPE_CHECKING:
    from .search import Candidates

FEATURES = (
    "sentence_cosine",  # the answer sentence's cosine with the question
    "passage_cosine",  # its passage's cosine
    "top_cosine",  # the best candidate passage's cosine
    "passage_bm25",  # its passage's BM25 / the most the question's terms score in any passage
    "coverage",  # share of the question's content words in it or the sentence before (Expected.coverage)
    "kind",  # Expected.evidence: 0 none, 1 a value of the asked kind, 2 a number with the asked unit
    "asks_kind",  # the question asks for a kind of value ("bao nhiêu", "khi nào", "ai", "ở đâu")
    "margin",  # its fused score minus the best other answer's (the ranking's own, scaled per query)
    "plain",  # typed without diacritics in the collection's language (Weights.plain_dense)
    "foreign",  # no diacritics and not the collection's language folded (an English question)
    "plain_sentence_cosine",  # plain x sentence_cosine: the model embeds text without marks poorly
    "rare_coverage",  # coverage weighted by each content word's IDF (a word the index never saw counts most)
    "passage_rare_coverage",  # the same over the sentence's whole passage
    "rarest_missing",  # IDF of the rarest content word its passage lacks, over the IDF of an unseen word
)

# Fitted 2026-12-01 by bench/fit_confidence.py on ../shared/train/mlqa-vi.dev.json (MLQA v1, CC BY-SA 3.0):
# its 511 questions as typed and without diacritics, each against both halves of the paragraphs split by position
# (1,022 answerable rows, 638 with a correct first answer; 712 same-topic and 310 other-topic unanswerable rows)
# and against the half of the articles without its own (1,022 other-topic rows), + 300 SQuAD v1.1 train questions
# (English, CC BY-SA 4.0) as off-topic. Cross-validated by article (5 folds): AUROC 0.890 correct vs same-topic
# unanswerable, 0.940 vs other-topic, 0.998 vs off-topic; ECE 0.009. Coefficients apply to the raw features, in
# the order of FEATURES. (The sentence's own BM25 share was dropped: weight -0.06 in an earlier fit, and its
# normalization cost a pass over every posting of the sentence index.)
INTERCEPT = -25.162459
COEFFICIENTS = np.array([7.486499, 7.818206, 7.522113, 2.658254, -3.519722, 0.922264, -0.987143, 3.376642,
                         2.892838, -3.038203, -2.315527, 2.783912, 3.586275, 0.179570])

# The default threshold: in that cross-validation it refuses 85% of the same-topic unanswerable questions (the
# issue's target; it keeps 75% of MLQA's correct first answers, a harder set than most). On XQuAD-vi, never
# fitted on, it keeps 92% of the correct first answers: README.md, "Knowing when the documents do not answer".
DEFAULT_MIN_CONFIDENCE = 0.27


def features(c: "Candidates", rows: np.ndarray, score: np.ndarray, pool: np.ndarray,
             evidence: np.ndarray) -> np.ndarray:
    """One row of :data:`FEATURES` per answer sentence at positions ``rows`` of ``c``'s sentence arrays.

    ``score`` is the fused score of every candidate sentence; ``pool`` the positions of the sentences that
    could be answers (the margin is over them); ``evidence`` the kind evidence of ``rows``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    x = np.zeros((rows.size, len(FEATURES)), dtype=np.float64)
    if not rows.size:
        return x
    of = c.sentence_passage[rows]
    x[:, 0] = c.sentence_dense[rows]
    x[:, 1] = c.passage_dense[of]
    x[:, 2] = float(c.passage_dense.max())
    x[:, 3] = c.passage_lexical[of] / c.passage_lexical_most if c.passage_lexical_most > 0 else 0.0
    x[:, 4] = c.sentence_coverage[rows]
    x[:, 5] = evidence
    x[:, 6] = float(c.expected.kind is not None)
    pooled = score[pool]
    top2 = np.sort(np.partition(pooled, -2)[-2:] if pooled.size > 2 else pooled)[::-1]
    other = np.where(score[rows] >= top2[0], top2[1] if top2.size > 1 else top2[0] - 1.0, top2[0])
    x[:, 7] = score[rows] - other
    x[:, 8] = float(c.plain)
    x[:, 9] = float(c.expected.plain and not c.plain)
    x[:, 10] = x[:, 8] * x[:, 0]
    x[:, 11] = c.sentence_rare_coverage[rows]
    x[:, 12] = c.passage_rare_coverage[of]
    x[:, 13] = c.passage_rarest_missing[of]
    return x


def probability(x: np.ndarray, intercept: float = None, coefficients: np.ndarray = None) -> np.ndarray:
    """The model's probability for rows of :func:`features` (the shipped parameters unless given)."""
    b = INTERCEPT if intercept is None else intercept
    w = COEFFICIENTS if coefficients is None else coefficients
    return 1.0 / (1.0 + np.exp(-(b + x @ w)))


def threshold_from_env() -> float:
    """``HOIDAP_MIN_CONFIDENCE``, else :data:`DEFAULT_MIN_CONFIDENCE`: the confidence the best answer needs
    for a response to count as answered."""
    raw = os.environ.get("HOIDAP_MIN_CONFIDENCE", "").strip()
    if not raw:
        return DEFAULT_MIN_CONFIDENCE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise HoidapError(f"HOIDAP_MIN_CONFIDENCE={raw!r} is not a number between 0 and 1")
    return value
