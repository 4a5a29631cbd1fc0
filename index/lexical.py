"""Lexical retrieval: BM25 (through ``bm25s``) over Vietnamese syllables, syllable bigrams and their folded forms.

Vietnamese words are often two or three syllables ("đầu tư", "thành phố"), so syllable bigrams give
word-like precision without a segmenter. Accent-folded copies of every term, in their own namespace,
let a question typed without diacritics ("hai phong") match; a question with the right tones matches
both the exact and the folded terms, so exact matches rank above folded ones.
"""

from __future__ import annotations

import json
import logging
from array import array
from functools import cached_property
from pathlib import Path

import numpy as np

from .arrays import mapped_view, runs
from .text import fold_normalized, syllables

# bm25s (and SciPy, which it imports) is needed to build an index, not to search one: a search reads
# the postings bm25s saved (its CSC arrays, .npy files) memory-mapped, which a one-question
# `hoidap ask` then does without importing either (about 0.25 s).
_ARRAYS = ("data", "indices", "indptr")

FOLDED = "~"  # prefix of the folded namespace
K1, B = 1.2, 0.75
LOOK_UP_FACTOR = 16  # a binary search per row and term costs about this many postings read through


def lexical_terms(matched: str) -> list[str]:
    """The terms of text in :func:`hoidap.index.text.normalize`'s form: syllables, adjacent-syllable bigrams,
    and both again accent-folded."""
    words = syllables(matched.lower())
    folded = [fold_normalized(s) for s in words]
    terms = words + [f"{a}_{b}" for a, b in zip(words, words[1:])]
    terms += [FOLDED + f for f in folded] + [f"{FOLDED}{a}_{b}" for a, b in zip(folded, folded[1:])]
    return terms


class LexicalIndex:
    """A BM25 index whose row numbers are the store's passage or sentence ids."""

    def __init__(self, postings: dict[str, np.ndarray], size: int, vocabulary: dict[str, int],
                 bm25: "bm25s.BM25 | None" = None) -> None:  # noqa: F821
        # bm25s's score matrix, CSC: each term's rows (indices, ascending: bm25s adds documents in order) and
        # scores (data)
        self.postings = postings
        self.size = size
        self.vocabulary = vocabulary
        self._built = bm25  # what save writes

    @classmethod
    def build(cls, *corpora: list[str]) -> list["LexicalIndex"]:
        """One index per corpus of normalized texts, all numbering terms alike: a question's terms
        are then looked up once (:meth:`ids`) for every index, and loaded indexes share one vocabulary."""
        vocabulary: dict[str, int] = {"": 0}  # the one term of a text without any (a lone "|" caption end)
        # Each text's term ids as a compact array('i'), 4 bytes an id: a list of Python ints takes 36, which
        # at a million passages (about 700 terms each, and as many again for their sentences) is 50 GB.
        # bm25s only iterates, counts and measures each text's ids, which an array serves as a list does.
        corpora_ids = [[array("i", [vocabulary.setdefault(t, len(vocabulary)) for t in lexical_terms(text)] or [0])
                        for text in texts] for texts in corpora]
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build at DEBUG
        indexes = []
        for ids in corpora_ids:
            bm25 = bm25s.BM25(k1=K1, b=B)
            bm25.index((ids, vocabulary), show_progress=False)
            indexes.append(cls({k: bm25.scores[k] for k in _ARRAYS}, int(bm25.scores["num_docs"]), vocabulary, bm25))
        return indexes

    def save(self, folder: Path) -> None:
        """In bm25s's own format (``bm25s.BM25.load`` reads it too)."""
        self._built.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, vocabulary: dict[str, int] | None = None) -> "LexicalIndex":
        """The index in ``folder``, memory-mapped; ``vocabulary`` is that of an index built with it
        (:meth:`build`), shared rather than read again."""
        folder = Path(folder)
        postings = {k: mapped_view(np.load(folder / f"{k}.csc.index.npy", mmap_mode="r")) for k in _ARRAYS}
        size = int(json.loads((folder / "params.index.json").read_text(encoding="utf-8"))["num_docs"])
        if vocabulary is None:
            vocabulary = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        return cls(postings, size, vocabulary)

    def ids(self, terms: list[str]) -> np.ndarray:
        """The ids of the terms this vocabulary knows (the others match nothing)."""
        vocabulary = self.vocabulary
        return np.array([vocabulary[t] for t in terms if t in vocabulary], dtype=np.int64)

    def held(self, term: str) -> int:
        """How many rows hold ``term`` (its postings' count): a syllable's or bigram's frequency in the collection."""
        at = self.vocabulary.get(term)
        return 0 if at is None else self._starts[at + 1] - self._starts[at]

    @cached_property
    def _starts(self) -> memoryview:
        """The postings' offsets as a memoryview, whose items are Python ints: restoring diacritics asks
        :meth:`held` hundreds of times a question, and a NumPy scalar costs several times more to make."""
        return memoryview(np.ascontiguousarray(self.postings["indptr"])).cast("B").cast(
            self.postings["indptr"].dtype.char)

    def folded_share(self, matched: str) -> float:
        """Share of the syllables of normalized text whose accent-folded form this index holds: near 1
        for the collection's language typed without diacritics, low for another language."""
        words = syllables(matched.lower())
        vocabulary = self.vocabulary
        return sum(FOLDED + fold_normalized(s) in vocabulary for s in words) / len(words) if words else 0.0

    def scores(self, ids: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """BM25 score for the query terms' ``ids`` of every row, or of ``rows`` (ascending) only; zeros
        where no term is held.

        The sum of the terms' precomputed postings, as ``bm25s.BM25.get_scores_from_ids`` computes it,
        but in one ``bincount`` over all the terms' postings rather than an ``np.add.at`` per term:
        a question has dozens of terms (syllables, bigrams, folded forms), so this is several times faster.
        Scoring only some rows spares an array the size of the whole index on every query, and a few rows
        against long postings are looked up in them (:func:`_looked_up`) rather than read through them.
        """
        starts, ends = self._spans(ids)
        matrix = self.postings
        if rows is not None and _look_up(starts, ends, rows):
            return _looked_up(matrix, starts, ends, rows, matrix["data"]).sum(axis=1).astype(np.float32)
        postings = runs(starts, ends)
        found = matrix["indices"][postings]
        if rows is None:
            return np.bincount(found, weights=matrix["data"][postings], minlength=self.size).astype(np.float32)
        at, hit = _among(found, rows)
        return np.bincount(at[hit], weights=matrix["data"][postings[hit]], minlength=rows.size).astype(np.float32)

    def scores_and_most(self, ids: np.ndarray) -> tuple[np.ndarray, float]:
        """:meth:`scores` of every row, and the most any row could score for these terms: the sum of each
        term's best score in any row. A row's score divided by it is comparable across collections and
        questions (the confidence's lexical signals), and it costs one pass over postings already read."""
        starts, ends = self._spans(ids)
        postings = runs(starts, ends)
        matrix = self.postings
        found = matrix["indices"][postings]
        weights = matrix["data"][postings]
        lengths = ends - starts
        held = lengths > 0
        most = float(np.maximum.reduceat(weights, (np.cumsum(lengths) - lengths)[held]).sum()) if held.any() else 0.0
        return np.bincount(found, weights=weights, minlength=self.size).astype(np.float32), most

    def idf(self, ids: np.ndarray) -> tuple[np.ndarray, float]:
        """The BM25 IDF of each term in ``ids`` (from its postings' count, no extra read), and the IDF of a term
        no row holds: how rare each of a question's words is in this index."""
        indptr = self.postings["indptr"]
        held = (indptr[ids + 1] - indptr[ids]).astype(np.float64)
        n = float(self.size)
        return np.log1p((n - held + 0.5) / (held + 0.5)), float(np.log1p((n + 0.5) / 0.5))

    def holding(self, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Which of ``rows`` (ascending) hold which term: booleans of shape (len(rows), len(ids)), read
        from the postings rather than from each row's text."""
        starts, ends = self._spans(ids)
        if _look_up(starts, ends, rows):
            return _looked_up(self.postings, starts, ends, rows, None) > 0
        at, hit = _among(self.postings["indices"][runs(starts, ends)], rows)
        held = np.zeros((rows.size, ids.size), dtype=bool)
        held[at[hit], np.repeat(np.arange(ids.size), ends - starts)[hit]] = True
        return held

    def _spans(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each term's postings start and end in the score matrix."""
        indptr = self.postings["indptr"]
        return indptr[ids], indptr[ids + 1]


def _look_up(starts: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> bool:
    """Whether looking ``rows`` up in each term's postings (a binary search each) costs less than reading
    the postings through."""
    return int((ends - starts).sum()) > LOOK_UP_FACTOR * rows.size * starts.size


def _looked_up(matrix: dict[str, np.ndarray], starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
               values: np.ndarray | None) -> np.ndarray:
    """For each of ``rows`` (ascending) and each term's postings ``[starts, ends)``: its ``values`` entry
    (a score) where the row holds the term, else 0; 1 for held when ``values`` is None. Shape (rows, terms),
    float64: summed along a row in term order, as ``bincount`` sums the postings read through."""
    indices = matrix["indices"]
    out = np.zeros((rows.size, starts.size), dtype=np.float64)
    for j, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
        if end > start and rows.size:
            postings = indices[start:end]
            at = np.minimum(np.searchsorted(postings, rows), end - start - 1)
            hit = postings[at] == rows
            out[hit, j] = 1.0 if values is None else values[start + at[hit]]
    return out


def _among(found: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each posting's row in ``found``: its position in ``rows`` (ascending), and whether it is there."""
    if not rows.size:
        return np.zeros(found.size, dtype=np.int64), np.zeros(found.size, dtype=bool)
    at = np.minimum(np.searchsorted(rows, found), rows.size - 1)
    return at, rows[at] == found
