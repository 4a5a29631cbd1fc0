"""Lexical retrieval: BM25 (``bm25s``'s scoring and files) over Vietnamese syllables, syllable bigrams and their folded forms.

Vietnamese words are often two or three syllables ("đầu tư", "thành phố"), so syllable bigrams give
word-like precision without a segmenter. Accent-folded copies of every term, in their own namespace,
let a question typed without diacritics ("hai phong") match; a question with the right tones matches
both the exact and the folded terms, so exact matches rank above folded ones.
"""

from __future__ import annotations

import json
import math
from array import array
from functools import cached_property
from collections.abc import Iterator, Sequence
from itertools import zip_longest
from pathlib import Path

import numpy as np

from .arrays import mapped_view
from .text import fold_normalized, syllables

# The index is bm25s's (its "lucene" BM25, its CSC arrays and files, which bm25s.BM25.load reads), and a
# search reads the postings memory-mapped. It is built here rather than by bm25s: bm25s holds about 36 bytes
# a posting while it builds (scores, rows and columns, then a sort of all of them), 50 GB at a million
# passages, where counting each term's postings first and placing them chunk by chunk takes the 8 bytes a
# posting of the result (the same arrays bit for bit: tests/test_lexical.py builds both).
_ARRAYS = ("data", "indices", "indptr")
MAXIMA = "maxima.npy"  # each term's best score, beside bm25s's files (LexicalIndex.maxima)
IMPACTS = "impacts.{}.npy"  # each common term's best postings, beside them too (LexicalIndex.impacts)
BM25S_FORMAT = "0.3.16"  # the bm25s version whose files these are
CHUNK_TOKENS = 4_000_000  # texts are scored in chunks of about this many terms: 100 MB of working arrays

FOLDED = "~"  # prefix of the folded namespace
K1, B = 1.2, 0.75
# The best rows of a whole index are found through at most this many postings of each term, its best-scoring
# ones: a term held by more rows ("của", "là" at a million passages) adds little to any row's score, and reading
# all of it took most of the time. The CANDIDATES rows found best so are then scored exactly, every posting
# counted, and the best of them returned. bench/scale_search.py at 1M synthetic passages (100 questions, before
# the look-ups in the postings' own type, _hits): the whole search 20.2 ms p50 against 29.0 reading every
# posting, the same 10 passages for all 100; BM25's 50 best 9.1 against 24.6 ms. At 10,000 postings (200
# questions): 9.1 against 29.3 ms for BM25 (a busy machine), but 197 of 200 the same. With 250 or 500
# candidates, 282 and 294 of 300 the same.
IMPACT_PREFIX = 30_000
CANDIDATES = 1_000
SAMPLED_ABOVE = 64  # rows of a sample above the bar that the best rows are chosen above (_likely_best): the count
# varies by about an eighth, so the 4 k rows expected above it are fewer than k by chance about never


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

    def __init__(self, postings: dict[str, np.ndarray], size: int, vocabulary: dict[str, int]) -> None:
        # bm25s's score matrix, CSC: each term's rows (indices, ascending) and scores (data)
        self.postings = postings
        self.size = size
        self.vocabulary = vocabulary

    @classmethod
    def build(cls, *corpora: list[str], into: Sequence[Path] = ()) -> list["LexicalIndex"]:
        """One index per corpus of normalized texts, all numbering terms alike: a question's terms
        are then looked up once (:meth:`ids`) for every index, and loaded indexes share one vocabulary.

        ``into``: a folder for each corpus's index, in bm25s's own format (``bm25s.BM25.load`` reads it too); its
        postings are written as soon as it is scored and read back memory-mapped, so that a large build holds
        one corpus's postings at a time."""
        vocabulary: dict[str, int] = {"": 0}  # the one term of a text without any (a lone "|" caption end)
        indexes = []
        for texts, folder in zip_longest(corpora, into):
            index = cls(_scored(_term_ids(texts, vocabulary), len(vocabulary)), len(texts), vocabulary)
            if folder is not None:
                index._save_postings(folder)
            indexes.append(index)
        for index, folder in zip_longest(indexes, into):
            # terms first met in a later corpus are held by no row of an earlier one
            indptr = index.postings["indptr"]
            index.postings["indptr"] = np.concatenate([indptr, np.full(len(vocabulary) + 1 - indptr.size, indptr[-1])])
            if folder is not None:
                index._save_rest(folder)
        return indexes

    def _save_postings(self, folder: Path) -> None:
        """The postings' rows and scores, then read back memory-mapped: out of this process's memory."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("data", "indices"):
            np.save(folder / f"{name}.csc.index.npy", self.postings[name])
            self.postings[name] = mapped_view(np.load(folder / f"{name}.csc.index.npy", mmap_mode="r"))

    def _save_rest(self, folder: Path) -> None:
        """Where each term's postings start, the vocabulary and bm25s's parameters."""
        np.save(folder / "indptr.csc.index.npy", self.postings["indptr"])
        np.save(folder / MAXIMA, self.maxima)
        (folder / "vocab.index.json").write_text(json.dumps(self.vocabulary, ensure_ascii=False), encoding="utf-8")
        params = {"k1": K1, "b": B, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
                  "int_dtype": "int32", "num_docs": self.size, "version": BM25S_FORMAT, "backend": "numpy"}
        (folder / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")

    def save_impacts(self, folder: Path) -> None:
        """Keep :attr:`impacts` beside the index saved in ``folder``: for an index whose best rows are asked for
        (:meth:`top`, the passages'), worked out once at build time rather than at its first search."""
        for name, values in self.impacts.items():
            np.save(folder / IMPACTS.format(name), values)

    @classmethod
    def load(cls, folder: Path, vocabulary: dict[str, int] | None = None) -> "LexicalIndex":
        """The index in ``folder``, memory-mapped; ``vocabulary`` is that of an index built with it
        (:meth:`build`), shared rather than read again."""
        folder = Path(folder)
        postings = {k: mapped_view(np.load(folder / f"{k}.csc.index.npy", mmap_mode="r")) for k in _ARRAYS}
        size = int(json.loads((folder / "params.index.json").read_text(encoding="utf-8"))["num_docs"])
        if vocabulary is None:
            vocabulary = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        index = cls(postings, size, vocabulary)
        if (folder / MAXIMA).exists():  # a build older than them computes them at the first search
            index.maxima = mapped_view(np.load(folder / MAXIMA, mmap_mode="r"))
        if all((folder / IMPACTS.format(name)).exists() for name in _ARRAYS):  # so do these
            index.impacts = {name: mapped_view(np.load(folder / IMPACTS.format(name), mmap_mode="r"))
                             for name in _ARRAYS}
        return index

    def ids(self, terms: list[str]) -> np.ndarray:
        """The ids of the terms this vocabulary knows (the others match nothing)."""
        vocabulary = self.vocabulary
        return np.array([vocabulary[t] for t in terms if t in vocabulary], dtype=np.int64)

    def held(self, terms: list[str]) -> list[int]:
        """How many rows hold each of ``terms`` (its postings' count): syllables' or bigrams' frequencies in the
        collection."""
        get, starts = self.vocabulary.get, self._starts
        return [0 if at is None else starts[at + 1] - starts[at] for at in map(get, terms)]

    @cached_property
    def _starts(self) -> memoryview:
        """The postings' offsets as a memoryview, whose items are Python ints: restoring diacritics asks
        :meth:`held` for hundreds of terms a question, and a NumPy scalar costs several times more to make."""
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
        Scoring only some rows spares an array the size of the whole index on every query: they are
        looked up in the postings (:func:`_hits`) rather than read through them. Each row's terms are summed
        in the same order either way, so its score is the same bit for bit.
        """
        starts, ends = self._spans(ids)
        matrix = self.postings
        if rows is None:
            found, weights = _read(matrix["indices"], starts, ends), _read(matrix["data"], starts, ends)
            return np.bincount(found, weights=weights, minlength=self.size).astype(np.float32)
        at, _, posting = _hits(matrix["indices"], starts, ends, rows)
        return np.bincount(at, weights=matrix["data"][posting], minlength=rows.size).astype(np.float32)

    def top(self, ids: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows that score best for the terms ``ids``, with their exact scores (:func:`best`).

        A term held by more than :data:`IMPACT_PREFIX` rows is read only through its best-scoring postings
        (:attr:`impacts`); the :data:`CANDIDATES` rows that score best so are scored exactly and the ``k`` best of
        them returned. A row is missed only if the common terms' postings not read would lift it from below those
        candidates into the ``k`` best. Where no term is that common, every posting is read: the best rows exactly.
        Exact pruning as MaxScore does (rows holding a rare term scored first, the k-th best of them a score to
        beat) was tried twice and was slower at a million synthetic passages than reading every posting: with 50
        passages to find, the score to beat stays within reach of the common terms' best scores together.
        ``exact``: every posting read, whatever the terms."""
        if exact:
            return best(self.scores(ids), k)
        starts, ends = self._spans(ids)
        prefixes = self.impacts
        firsts, lasts = prefixes["indptr"][ids], prefixes["indptr"][ids + 1]
        common = lasts > firsts
        if not common.any():
            return best(self.scores(ids), k)
        rare = ~common
        found = np.concatenate([_read(self.postings["indices"], starts[rare], ends[rare]),
                                _read(prefixes["indices"], firsts[common], lasts[common])])
        weights = np.concatenate([_read(self.postings["data"], starts[rare], ends[rare]),
                                  _read(prefixes["data"], firsts[common], lasts[common])])
        rows = np.sort(best(np.bincount(found, weights=weights, minlength=self.size), max(k, CANDIDATES))[0])
        return best(self.scores(ids, rows), k, rows)

    @cached_property
    def impacts(self) -> dict[str, np.ndarray]:
        """The postings of each term held by more than :data:`IMPACT_PREFIX` rows, only its :data:`IMPACT_PREFIX`
        best-scoring ones (rows ascending), in the score matrix's own CSC form: a term held by fewer has none.
        Kept beside the index (:meth:`save_impacts`)."""
        indptr = np.asarray(self.postings["indptr"])
        held = np.diff(indptr)
        common = np.flatnonzero(held > IMPACT_PREFIX)
        firsts = np.zeros(indptr.size, dtype=np.int64)
        np.cumsum(np.where(held > IMPACT_PREFIX, IMPACT_PREFIX, 0), out=firsts[1:])
        indices = np.empty(common.size * IMPACT_PREFIX, dtype=np.int32)
        data = np.empty(common.size * IMPACT_PREFIX, dtype=np.float32)
        for n, term in enumerate(common.tolist()):
            start, end = int(indptr[term]), int(indptr[term + 1])
            scores = np.asarray(self.postings["data"][start:end])
            kept = np.sort(np.argpartition(scores, scores.size - IMPACT_PREFIX)[scores.size - IMPACT_PREFIX:])
            at = slice(n * IMPACT_PREFIX, (n + 1) * IMPACT_PREFIX)
            indices[at], data[at] = np.asarray(self.postings["indices"][start:end])[kept], scores[kept]
        return {"data": data, "indices": indices, "indptr": firsts}

    def most(self, ids: np.ndarray) -> float:
        """The most any row could score for the terms ``ids``: the sum of each term's best score in any row
        (:attr:`maxima`). A row's score divided by it is comparable across collections and questions (the
        confidence's lexical signals)."""
        starts, ends = self._spans(ids)
        return float(self.maxima[ids[ends > starts]].sum())

    @cached_property
    def maxima(self) -> np.ndarray:
        """Each term's best score in any row (0 for a term no row holds), kept beside the index."""
        data, indptr = self.postings["data"], np.asarray(self.postings["indptr"])
        out = np.zeros(indptr.size - 1, dtype=np.float32)
        held = np.flatnonzero(indptr[1:] > indptr[:-1])
        if held.size:
            out[held] = np.maximum.reduceat(data, indptr[held])
        return out

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
        at, term, _ = _hits(self.postings["indices"], *self._spans(ids), rows)
        held = np.zeros((rows.size, ids.size), dtype=bool)
        held[at, term] = True
        return held

    def _spans(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each term's postings start and end in the score matrix."""
        indptr = self.postings["indptr"]
        return indptr[ids], indptr[ids + 1]


def _term_ids(texts: list[str], vocabulary: dict[str, int]) -> list[array]:
    """Each text's term ids, numbering new terms as they come, as a compact array('i'): 4 bytes an id, where
    a list of Python ints takes 36 (at a million passages, about 700 terms each and as many again for their
    sentences, 50 GB)."""
    return [array("i", [vocabulary.setdefault(t, len(vocabulary)) for t in lexical_terms(text)] or [0])
            for text in texts]


def _scored(ids: list[array], vocabulary_size: int) -> dict[str, np.ndarray]:
    """bm25s's BM25 score matrix (lucene, k1 1.2, b 0.75) of the texts' term ``ids``, CSC, computed as bm25s
    computes it, float for float: each term's postings are counted first, then placed chunk by chunk."""
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    average = lengths.mean()  # a NumPy float64, as in bm25s: the term frequency part is computed in float64
    chunks = list(_chunks(lengths))
    held = np.zeros(vocabulary_size, dtype=np.int64)
    for first, last in chunks:
        held += np.bincount(_pairs(ids, first, last, vocabulary_size)[1], minlength=vocabulary_size)
    counts, where = np.unique(held, return_inverse=True)  # bm25s: math.log, stored as float32
    idf = np.array([math.log(1 + (len(ids) - c + 0.5) / (c + 0.5)) if c else 0.0 for c in counts.tolist()],
                   dtype=np.float32)[where]
    indptr = np.zeros(vocabulary_size + 1, dtype=np.int64)
    np.cumsum(held, out=indptr[1:])
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    heads = indptr[:-1].copy()  # where each term's next posting goes
    for first, last in chunks:
        docs, terms, tf = _pairs(ids, first, last, vocabulary_size)
        tf = tf.astype(np.float32)
        scores = idf[terms] * (tf / (K1 * ((1 - B) + B * lengths[docs] / average) + tf))
        order = np.argsort(terms, kind="stable")  # by term; each term's rows stay ascending
        terms, docs, scores = terms[order], docs[order], scores[order]
        starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
        sizes = np.diff(np.r_[starts, terms.size])
        at = heads[terms] + np.arange(terms.size) - np.repeat(starts, sizes)
        data[at] = scores
        indices[at] = docs
        heads[terms[starts]] += sizes
    return {"data": data, "indices": indices, "indptr": indptr}


def _chunks(lengths: np.ndarray) -> Iterator[tuple[int, int]]:
    """Ranges ``[first, last)`` of texts of about :data:`CHUNK_TOKENS` terms together (at least one text)."""
    ends = np.cumsum(lengths)
    first = 0
    while first < lengths.size:
        last = max(first + 1, int(np.searchsorted(ends, ends[first] - lengths[first] + CHUNK_TOKENS, side="right")))
        yield first, last
        first = last


def _pairs(ids: list[array], first: int, last: int, vocabulary_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each (text, term) pair of texts ``[first, last)`` once, by text then term, with the term's count there."""
    chunk = ids[first:last]
    tokens = np.concatenate([np.frombuffer(a, dtype=np.int32) for a in chunk]).astype(np.int64)
    texts = np.repeat(np.arange(first, last, dtype=np.int64), np.fromiter(map(len, chunk), np.int64, len(chunk)))
    keys, counts = np.unique(texts * vocabulary_size + tokens, return_counts=True)
    return keys // vocabulary_size, keys % vocabulary_size, counts


def best(scores: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of ``rows`` (ascending; by default every row, ``scores`` being every row's) by their
    ``scores``, above 0, best first, the first of equals first; with their scores."""
    held = _likely_best(scores, k)
    if held is None:
        held = np.flatnonzero(scores > 0)
    rows, scores = (held if rows is None else rows[held]), scores[held]
    if rows.size > k:
        bar = np.partition(scores, rows.size - k)[rows.size - k]
        above = np.flatnonzero(scores > bar)
        chosen = np.sort(np.concatenate([above, np.flatnonzero(scores == bar)[:k - above.size]]))
        rows, scores = rows[chosen], scores[chosen]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]


def _likely_best(scores: np.ndarray, k: int) -> np.ndarray | None:
    """The rows scoring at least a bar that the ``k`` best all reach, set by a sample of ``scores`` (every
    ``step``-th row, the bar its :data:`SAMPLED_ABOVE`-th best): about 4 ``k`` rows reach it, so the best are chosen
    among those rather than among every row held. None where a sample would not be much smaller than the rows
    held (a small ``k``), or too few rows reach the bar (the sample's chance): then every row held is chosen
    among, with the same result. For :meth:`LexicalIndex.top`'s 1,000 candidates at a million passages: 0.5
    against 3.1 ms, the same rows."""
    step = 4 * k // SAMPLED_ABOVE
    if step < 16 or scores.size < 4 * step * SAMPLED_ABOVE:
        return None
    sample = scores[::step]
    sample = sample[sample > 0]  # NumPy's partition slows down many times among many equal values
    if sample.size < SAMPLED_ABOVE:
        return None
    bar = np.partition(sample, sample.size - SAMPLED_ABOVE)[sample.size - SAMPLED_ABOVE]
    rows = np.flatnonzero(scores >= bar)
    return rows if rows.size >= k else None


def _hits(indices: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every (row, term) pair where one of ``rows`` (ascending, distinct) is among the postings
    ``indices[starts[j]:ends[j]]`` of term ``j``: the row's position in ``rows``, ``j``, and the posting's
    position in ``indices``; term by term, so each row's hits come in the terms' order.

    The rows are searched for in a term's postings where they are fewer (a search's candidates against a common
    word), its postings in the rows where those are fewer (a rare word, or a filter allowing most rows): one
    binary search call per term, the rest in whole arrays. Searched for in the postings' own type: int64 rows in
    int32 postings made NumPy convert every posting of the term first, which was most of the time (a million
    synthetic passages: 100 passages' 0.34 against 1.19 ms). Choosing the shorter side for each term halved the
    sentences' time again (300,000 passages: 0.27 against 0.65 ms)."""
    lengths = ends - starts
    long, short = np.flatnonzero(lengths > rows.size), np.flatnonzero((lengths > 0) & (lengths <= rows.size))
    keys = np.asarray(rows).astype(indices.dtype)
    at = np.empty((long.size, rows.size), dtype=np.int64)
    for n, (start, end) in enumerate(zip(starts[long].tolist(), ends[long].tolist())):
        at[n] = np.searchsorted(indices[start:end], keys)
        at[n] += start
    np.minimum(at, (ends[long] - 1)[:, None], out=at)  # past its last posting: compared with the last
    term, row = np.nonzero(indices[at] == keys)
    found = _read(indices, starts[short], ends[short])
    offsets = np.cumsum(lengths[short]) - lengths[short]  # where each short term's postings start in found
    posting = np.arange(found.size) + np.repeat(starts[short] - offsets, lengths[short])
    place = np.minimum(np.searchsorted(rows, found), rows.size - 1)
    hit = rows[place] == found
    terms = np.concatenate([long[term], np.repeat(short, lengths[short])[hit]])
    order = np.argsort(terms, kind="stable")
    return (np.concatenate([row, place[hit]])[order], terms[order],
            np.concatenate([at[term, row], posting[hit]])[order])


def _read(array: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``array``'s ranges ``[starts[i], ends[i])`` (a question's terms' postings), concatenated in order: copied
    slice by slice, which is faster than gathering them through an array of every position (a million
    passages, a question's 3.8 million postings: 18 against 33 ms with the scoring)."""
    spans = [(a, b) for a, b in zip(starts.tolist(), ends.tolist()) if b > a]
    return np.concatenate([array[a:b] for a, b in spans]) if spans else array[:0]
