"""Lexical retrieval: BM25 (through ``bm25s``) over Vietnamese syllables, syllable bigrams and their folded forms.

Vietnamese words are often two or three syllables ("đầu tư", "thành phố"), so syllable bigrams give
word-like precision without a segmenter. Accent-folded copies of every term, in their own namespace,
let a question typed without diacritics ("hai phong") match; a question with the right tones matches
both the exact and the folded terms, so exact matches rank above folded ones.
"""

from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np

from .arrays import mapped_view, runs
from .text import fold_normalized, tokens

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG

FOLDED = "~"  # prefix of the folded namespace
K1, B = 1.2, 0.75


def lexical_terms(text: str) -> list[str]:
    """The terms of ``text``: syllables, adjacent-syllable bigrams, and both again accent-folded."""
    syllables = tokens(text)
    folded = [fold_normalized(s) for s in syllables]  # tokens are normalized already
    terms = syllables + [f"{a}_{b}" for a, b in zip(syllables, syllables[1:])]
    terms += [FOLDED + f for f in folded] + [f"{FOLDED}{a}_{b}" for a, b in zip(folded, folded[1:])]
    return terms


class LexicalIndex:
    """A BM25 index whose row numbers are the store's passage or sentence ids."""

    def __init__(self, bm25: bm25s.BM25) -> None:
        self.bm25 = bm25

    @classmethod
    def build(cls, texts: list[str]) -> "LexicalIndex":
        bm25 = bm25s.BM25(k1=K1, b=B)
        # an empty term keeps bm25s happy with texts that have no terms at all (a lone "|" caption end)
        bm25.index([lexical_terms(t) or [""] for t in texts], show_progress=False)
        return cls(bm25)

    def save(self, folder: Path) -> None:
        self.bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        bm25 = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        bm25.scores = {k: mapped_view(v) if isinstance(v, np.ndarray) else v for k, v in bm25.scores.items()}
        return cls(bm25)

    @property
    def size(self) -> int:
        return int(self.bm25.scores["num_docs"])

    def folded_share(self, text: str) -> float:
        """Share of the syllables of ``text`` whose accent-folded form this index holds: near 1 for the
        collection's language typed without diacritics, low for another language."""
        syllables = tokens(text)
        vocabulary = self.bm25.vocab_dict
        return sum(FOLDED + fold_normalized(s) in vocabulary for s in syllables) / len(syllables) if syllables else 0.0

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every row for the query terms (zeros when none of them is known).

        The sum of the terms' precomputed postings, as ``bm25s.BM25.get_scores_from_ids`` computes it,
        but in one ``bincount`` over all the terms' postings rather than an ``np.add.at`` per term:
        a question has dozens of terms (syllables, bigrams, folded forms), so this is several times faster.
        """
        ids = np.asarray(self.bm25.get_tokens_ids(terms), dtype=np.int64)
        matrix = self.bm25.scores
        postings = runs(matrix["indptr"][ids], matrix["indptr"][ids + 1])
        return np.bincount(matrix["indices"][postings], weights=matrix["data"][postings],
                           minlength=self.size).astype(np.float32)
