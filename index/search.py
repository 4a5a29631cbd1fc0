"""The search entry point: a question in, ranked answer sentences and highlighted passages out.

The command line, the web page and the JSON API all call :meth:`Engine.search`. It works in two steps:
:meth:`Engine.candidates` gathers passages from the dense (FAISS) and the lexical (BM25) index with
every signal about them and their sentences; :meth:`Engine.rank` fuses those signals. Evaluation and
tuning call the same two steps, so what is measured is what users get.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from . import confidence, diacritics
from .embeddings import Embedder
from .errors import ModelMismatchError, QueryError
from .formats import SUPPORTED_SUFFIXES
from .lexical import FOLDED, best, lexical_terms
from .question import Expected
from .reader import Reader, Reading
from .results import Answer, AnswerSpan, Highlight, Result, SearchResponse, document_url
from .store import ShownPassage, Store
from .text import normalize

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 50
MAX_OFFSET = 1000  # paging goes as deep as the candidate pool (at most 2 * POOL passages) and no deeper
ANSWERS = 5  # answer sentences a search returns unless asked for another number
POOL = 50  # passages each retriever brings to the candidate pool
ANSWER_POOL = 10  # answers are the best sentences of this many best passages, whatever top_k: the best answer
# must not change with how many passages are shown (at top_k 1 it did for 4% of XQuAD-vi's questions)
FETCHED = 5  # the pool's passages always read for their answer cues; the others only when they could matter
RERANK_WEIGHT = 0.25  # Weights.reader with --reader rerank
READ = 3  # with a reader weight, the best answer sentences the reader (Embedder.reader) orders again
MAX_EVIDENCE = 2.0  # the most Expected.evidence gives (1.0 when the question names no unit)
EXACT_FILTERED_ROWS = 50_000  # up to this many rows a filter allows, they are scored exactly
# The share of a restored question's syllables read clearly (diacritics.MARGIN) for it to be searched so. On
# MLQA-vi without marks (bench/tune_restore.py) restoring 99% of the questions gave Answer@1 0.595 and R@1
# 0.751 against 0.558 and 0.691 as typed; every stricter threshold did worse.
RESTORE_CONFIDENCE = 0.5
FORMATS = frozenset(suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES)  # what a format filter may ask for
PLAIN_KNOWN_SHARE = 0.5  # a question without diacritics is the collection's language typed plainly when at
# least this share of its syllables are folded forms the index holds (an English question is not)


@dataclass(frozen=True)
class Weights:
    """How the signals combine. Each signal is first scaled to [0, 1] among the query's candidates.

    Chosen on XQuAD-vi with a two-fold split by article (``bench/tune.py``): the same weights won
    on both halves, so they reflect the signals' value rather than one data set's quirks. On MLQA-vi (the
    training data's native Vietnamese questions) with the question adapter, the weights each half chose did
    worse on the other half than these (Answer@1 0.602 against 0.619, 0.651 against 0.655).
    """

    passage_dense: float = 1.5
    passage_lexical: float = 1.0
    passage_sentence: float = 0.5  # the passage's best sentence
    # The adapted question's cosine (index.adapter). 2.0 chosen on MLQA-vi (the training data's Vietnamese set,
    # native questions): Answer@1 0.620 at 1.0, 0.628 at 1.5, 0.638 at 2.0, 0.634 at 3.0 (without the adapter
    # 0.603 at 1.0, 0.620 at 2.0); XQuAD-vi, only measured: 0.812 at 1.0, 0.813 at 2.0.
    sentence_dense: float = 2.0
    sentence_lexical: float = 0.75
    sentence_passage: float = 1.0  # the fused score of the sentence's passage
    sentence_kind: float = 0.5  # evidence the sentence holds the asked kind of answer (Expected.evidence)
    sentence_coverage: float = 1.0  # the question's content words in it or the sentence before (Expected.coverage)
    # The reader's log-odds that a sentence holds the answer, added for the READ best ones, only when the best
    # two answers' scores are closer than reader_margin (when the other signals agree, reading changes
    # little), and not for a question whose diacritics were restored. 0 unless asked for (``--reader
    # rerank``, :meth:`reranking`): it costs twice the search time for a gain measured on English only.
    # Chosen with bench/tune_reader.py --squad on the questions train/reader.py held out: with weight 0.25
    # and margin 0.5 (60% of questions read) Answer@1 went from 0.668 to 0.714 on 500 SQuAD questions but
    # only from 0.618 to 0.627 on 110 MLQA-vi ones; larger weights did better on SQuAD and worse on MLQA-vi
    # (0.609 at 0.5, 0.600 at 1); restored questions lost (0.627 to 0.582 at 0.25). bench/latency.py: HTTP
    # p50 5.1x the question's encoding with it, 2.5x without (the answer phrase alone), 1.4x reader off. With the
    # question adapter, MLQA-vi's 110 lost (0.645 to 0.591) and SQuAD's 500 still gained (0.666 to 0.712).
    reader: float = 0.0
    reader_margin: float = 0.5
    # Scales the passage dense weight for a question typed without diacritics: the model embeds such text
    # poorly, while BM25 over folded syllables matches it exactly. On XQuAD-vi's questions folded,
    # R@1 went from 0.836 to 0.925 at 0.5 (0.928 at 0.25); questions with diacritics are unaffected.
    plain_dense: float = 0.5
    # The sentence cosine of such a question: 0.5, as before sentence_dense was raised to 2.0 (at 1.0 the folded
    # "hai phong ... bao nhieu dia phuong" of the corpus lost its answer; unmarked text embeds poorly).
    plain_sentence_dense: float = 0.5

    def reranking(self) -> "Weights":
        """These weights with the reader re-ranking the best answers (``--reader rerank``)."""
        return replace(self, reader=RERANK_WEIGHT)

    def for_plain_question(self) -> "Weights":
        return replace(self, passage_dense=self.passage_dense * self.plain_dense,
                       sentence_dense=self.plain_sentence_dense)


@dataclass(frozen=True)
class Filters:
    """Search part of the collection: every condition given must hold (times are Unix seconds)."""

    source_prefix: str | None = None  # a folder or source prefix, e.g. "corpus/2020/"
    formats: tuple[str, ...] = ()  # e.g. ("pdf", "docx")
    modified_after: float | None = None
    modified_before: float | None = None

    @classmethod
    def of(cls, source_prefix: str | None = None, formats: Iterable[str] = (),
           modified_after: datetime | None = None, modified_before: datetime | None = None) -> "Filters | None":
        """Filters from user input (formats like ".PDF" or "pdf"); None when nothing restricts the search."""
        asked = {f.strip().lower().lstrip(".") for f in formats if f.strip()}
        if unknown := asked - FORMATS:
            known = ', '.join(sorted(FORMATS))
            raise QueryError(f"unknown format {', '.join(sorted(unknown))}: choose among {known}",
                             f"Không có định dạng {', '.join(sorted(unknown))}: hãy chọn một trong {known}.")
        made = cls(source_prefix or None, tuple(sorted(asked)), _seconds(modified_after), _seconds(modified_before))
        return made if made != cls() else None


def _seconds(moment: datetime | None) -> float | None:
    """Unix seconds of a date filter; a date the clock cannot express (year 1 in local time) is refused."""
    if moment is None:
        return None
    try:
        return moment.timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        raise QueryError(f"the date {moment.isoformat()} is out of range",
                         f"Ngày {moment:%d/%m/%Y} nằm ngoài khoảng có thể lọc.") from exc


@dataclass
class Candidates:
    """Everything known about one question's candidate passages and their sentences (aligned arrays).

    Sentences are held by id; the passages that can be shown are fetched when ranking, with their
    sentences, and kept here with those sentences' kind evidence, so ranking again costs nothing.
    """

    query: str
    passage_ids: np.ndarray
    passage_dense: np.ndarray
    passage_lexical: np.ndarray
    sentence_ids: np.ndarray
    sentence_passage: np.ndarray  # index into passage_ids
    sentence_dense: np.ndarray  # the model's own cosine (the confidence's signal)
    sentence_match: np.ndarray  # the adapted question's cosine (index.adapter; the ranking's), else the same
    sentence_lexical: np.ndarray
    sentence_coverage: np.ndarray  # the question's content words in it or the sentence before (Expected.coverage)
    passage_lexical_most: float  # the most the question's terms score in any passage (a scale for confidence)
    sentence_rare_coverage: np.ndarray  # sentence_coverage weighted by each content word's IDF (unknown ones too)
    passage_rare_coverage: np.ndarray  # the same for each whole passage
    passage_rarest_missing: np.ndarray  # IDF of the rarest content word a passage lacks, over the highest IDF
    expected: Expected
    plain: bool  # typed without diacritics in the collection's language (Weights.plain_dense)
    started: float
    interpreted: str | None = None  # the question with the diacritics it was typed without (diacritics.restore)
    shown: dict[int, ShownPassage] = field(default_factory=dict, repr=False)  # passage id -> what is shown of it
    evidence: dict[int, float] = field(default_factory=dict, repr=False)  # sentence id -> Expected.evidence
    features: np.ndarray | None = field(default=None, repr=False)  # the last ranking's answers' confidence.features
    read_ahead: ReadAhead | None = field(default=None, repr=False)  # worked out while the question was encoded


@dataclass(frozen=True)
class ReadAhead:
    """What the spare core works out while the question is encoded (:meth:`Engine._read_ahead`), each known as
    soon as it is done."""

    lexical: Future  # the best (allowed) passages by BM25, as Engine._lexical gives them
    chosen: Future  # the sentence id guessed to be the best answer (None: no reader, or no sentence holds a word)
    reading: Future  # the reader's view of it


def check_query(query: str) -> str:
    """The question as it will be searched; empty or over-long questions are refused, not guessed at."""
    text = normalize(query)
    if not text:
        raise QueryError("the question is empty", "Hãy nhập một câu hỏi.")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"the question is too long ({len(query)} characters, at most {MAX_QUERY_CHARS})",
                         f"Câu hỏi quá dài ({len(query)} ký tự, tối đa {MAX_QUERY_CHARS}): hãy hỏi ngắn gọn hơn.")
    return text


def _minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] among candidates; cosines of this model sit in a narrow band, so raw values mislead."""
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _share_of_max(x: np.ndarray) -> np.ndarray:
    """Scale BM25 by the best candidate's score, keeping 0 for no shared term."""
    hi = float(x.max()) if x.size else 0.0
    return x / hi if hi > 0 else np.zeros_like(x)


class Engine:
    """A loaded index and the model it was built with, shared by every request."""

    def __init__(self, store: Store, embedder: Embedder, weights: Weights | None = None,
                 min_confidence: float | None = None, read_ahead: bool = True) -> None:
        """``read_ahead``: a search alone in the process reads its likely best answer on the spare core while the
        question is encoded (:meth:`_read_ahead`)."""
        _check_model(store, embedder.name)
        self.store = store
        self.embedder = embedder
        self.weights = weights or (Weights().reranking() if embedder.reader_setting == "rerank" else Weights())
        self.min_confidence = confidence.threshold_from_env() if min_confidence is None else min_confidence
        self.read_ahead = read_ahead
        self.read_ahead_counts: Counter[str] = Counter()  # "used": it was the best answer; "missed": it was not
        self._searches = 0  # in progress in this process, for read_ahead
        self._searching = threading.Lock()
        self._ahead: Future | None = None  # the latest read-ahead: one at a time

    @classmethod
    def open(cls, data_dir: Path, model: str | None = None, cache_dir: Path | None = None,
             backend: str | None = None, reader: str | None = None) -> "Engine":
        """Open the index in ``data_dir``; the model defaults to the one the index was built with.

        Any backend (:data:`hoidap.index.embeddings.BACKENDS`) may query any index of the same model;
        ``reader`` is "on", "off" or "rerank" (:func:`hoidap.index.reader.reader_setting`)."""
        store = Store.open(data_dir)
        chosen = model or os.environ.get("HOIDAP_MODEL") or store.info.model
        _check_model(store, chosen)  # before paying for loading the wrong model
        return cls(store, Embedder(chosen, cache_dir, backend, reader))

    def search(self, query: str, top_k: int = 5, filters: Filters | None = None,
               min_confidence: float | None = None, restore: bool = True, offset: int = 0,
               answers_k: int = ANSWERS, read_ahead: bool | None = None) -> SearchResponse:
        """Answer ``query`` with up to ``top_k`` passages from rank ``offset`` (a page) and the best ``answers_k``
        answer sentences; ``answered`` says whether the best reaches ``min_confidence`` (default: the engine's,
        ``HOIDAP_MIN_CONFIDENCE``). ``restore``: read a question typed without diacritics with them put back
        (:meth:`interpret`). ``read_ahead``: whether a core is free for :meth:`_read_ahead` (a server knows from
        its requests in progress); by default, when no other search of this engine is in progress."""
        if not 1 <= top_k <= MAX_TOP_K:
            raise QueryError(f"top_k must be between 1 and {MAX_TOP_K}")
        if not 1 <= answers_k <= MAX_TOP_K:
            raise QueryError(f"answers_k must be between 1 and {MAX_TOP_K}")
        if not 0 <= offset <= MAX_OFFSET:
            raise QueryError(f"offset must be between 0 and {MAX_OFFSET}")
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise QueryError("min_confidence must be between 0 and 1")
        with self._searching:
            self._searches += 1
            alone = self._searches == 1 if read_ahead is None else read_ahead
        try:
            return self.rank(self.candidates(query, filters, restore, read_ahead=alone), top_k,
                             min_confidence=min_confidence, offset=offset, answers_k=answers_k)
        finally:
            with self._searching:
                self._searches -= 1

    def interpret(self, text: str) -> diacritics.Restored | None:
        """Normalized ``text`` with the diacritics it was typed without (:func:`hoidap.index.diacritics.restore`),
        or None for a question typed with them or in another language."""
        terms = self.store.passage_terms
        if not diacritics.wants_restoring(text) or terms.folded_share(text) < PLAIN_KNOWN_SHARE:
            return None
        return diacritics.restore(text, terms, self._nearby(text))

    def _nearby(self, text: str) -> diacritics.Nearby:
        """What the passage that ``text``, as typed, matches best (BM25) writes."""
        best = self.store.passage_terms.top(self.store.term_ids(lexical_terms(text)), 1)[0]
        if not best.size:
            return diacritics.NOWHERE
        return diacritics.Nearby.of([normalize(self.store.passage_text(int(best[0])))])

    def candidates(self, query: str, filters: Filters | None = None, restore: bool = True,
                   read_ahead: bool = False) -> Candidates:
        """Pool the top passages of both retrievers and measure them and their sentences every way we can.

        A question typed without diacritics that :meth:`interpret` restores is searched in its restored form
        (its accent-folded terms are the same) with the dense weights of a question typed with them.
        ``read_ahead``: the search is alone in the process (:meth:`_read_ahead`)."""
        started = time.perf_counter()
        text = check_query(query)
        restored = self.interpret(text) if restore else None
        interpreted = restored.text if restored and restored.changed and restored.confidence >= RESTORE_CONFIDENCE \
            else None  # too unclear to restore: matched through its accent-folded terms only
        text = interpreted or text
        store = self.store
        terms = store.term_ids(lexical_terms(text))
        allowed = np.sort(store.passage_ids_where(**vars(filters))) if filters else None
        n = min(POOL, store.info.passages if allowed is None else allowed.size)
        ahead = self._read_ahead(interpreted or query, terms, allowed, n) if read_ahead else None
        q = self.embedder.encode([text], "query")[0]
        lexical_top = ahead.lexical.result() if ahead else self._lexical(terms, allowed, n)
        if allowed is not None and allowed.size <= EXACT_FILTERED_ROWS:
            # exact over the allowed rows: a filter may keep few, which an approximate index would miss
            dense_top = allowed[np.argsort(-(store.passage_vectors_of(allowed) @ q), kind="stable")[:n]]
        elif n:
            wide = n if allowed is None else min(store.info.passages, n * 20)
            dense_top = store.passage_index.search(q[None, :], wide)[1][0]
            dense_top = dense_top if allowed is None else dense_top[np.isin(dense_top, allowed)][:n]
        else:
            dense_top = np.zeros(0, dtype=np.int64)
        pool = np.union1d(dense_top[dense_top >= 0], lexical_top).astype(np.int64)
        sentence_ids = store.sentence_ids_of(pool)
        sentence_passage = np.searchsorted(pool, store.sentence_passages[sentence_ids])
        expected = Expected.of(text)
        content = store.term_ids([FOLDED + t for t in expected.terms])
        held = store.sentence_terms.holding(content, sentence_ids)
        covered = expected.covered(held, sentence_passage)
        idf, unknown_idf = store.sentence_terms.idf(content)
        idf_total = float(idf.sum()) + unknown_idf * (len(expected.terms) - content.size)  # words never seen count
        passage_held = np.zeros((pool.size, content.size), dtype=bool)
        if held.size:  # a passage holds what any of its sentences (in a row, sorted by passage) holds
            starts = np.flatnonzero(np.r_[True, sentence_passage[1:] != sentence_passage[:-1]])
            passage_held[sentence_passage[starts]] = np.logical_or.reduceat(held, starts, axis=0)
        missing = np.where(passage_held, 0.0, idf).max(axis=1, initial=0.0)
        sentence_vectors = store.sentence_vectors_of(sentence_ids)
        sentence_dense = sentence_vectors @ q
        adapter = self.embedder.adapter  # the question as it matches its answer sentence (index.adapter)
        return Candidates(
            query=query,
            passage_ids=pool,
            passage_dense=store.passage_vectors_of(pool) @ q,
            passage_lexical=store.passage_terms.scores(terms, pool),
            sentence_ids=sentence_ids,
            sentence_passage=sentence_passage,
            sentence_dense=sentence_dense,
            sentence_match=sentence_vectors @ adapter(q) if adapter else sentence_dense,
            sentence_lexical=store.sentence_terms.scores(terms, sentence_ids),
            sentence_coverage=(covered.sum(axis=1) / len(expected.terms) if expected.terms
                               else np.zeros(len(sentence_ids))).astype(np.float32),
            passage_lexical_most=store.passage_terms.most(terms),
            sentence_rare_coverage=covered @ idf / idf_total if idf_total else np.zeros(len(sentence_ids)),
            passage_rare_coverage=passage_held @ idf / idf_total if idf_total else np.zeros(pool.size),
            passage_rarest_missing=np.maximum(missing, unknown_idf if content.size < len(expected.terms) else 0.0)
            / unknown_idf,
            expected=expected,
            plain=expected.plain and store.passage_terms.folded_share(text) >= PLAIN_KNOWN_SHARE,
            started=started,
            interpreted=interpreted,
            read_ahead=ahead,
        )

    def rank(self, c: Candidates, top_k: int, weights: Weights | None = None, answer_pool: int = ANSWER_POOL,
             min_confidence: float | None = None, offset: int = 0, answers_k: int | None = None) -> SearchResponse:
        """Fuse the signals: passages by their own and their best sentence's scores, then the sentences of the
        best ``answer_pool`` passages (whatever ``top_k``) as answers, each with its confidence.

        ``top_k`` passages are returned from rank ``offset``, and ``answers_k`` answers (default ``top_k``)."""
        answers_k = top_k if answers_k is None else answers_k
        w = weights or self.weights
        w = w.for_plain_question() if c.plain else w
        own = w.sentence_dense * _minmax(c.sentence_match) + w.sentence_lexical * _share_of_max(c.sentence_lexical)
        best_sentence = np.zeros(len(c.passage_ids), dtype=np.float32)
        np.maximum.at(best_sentence, c.sentence_passage, own)
        passage = (w.passage_dense * _minmax(c.passage_dense) + w.passage_lexical * _share_of_max(c.passage_lexical)
                   + w.passage_sentence * best_sentence)
        by_score = np.argsort(-passage, kind="stable")
        sentence = own + w.sentence_passage * _minmax(passage)[c.sentence_passage]
        in_pool = np.zeros(len(c.passage_ids), dtype=bool)
        in_pool[by_score[:answer_pool]] = True
        pool = np.flatnonzero(in_pool[c.sentence_passage])  # only their sentences become answers
        sentence[pool] += w.sentence_coverage * c.sentence_coverage[pool]
        # The kind evidence needs each passage's stored answer cues. Beyond the shown passages, one of the pool is
        # read (in the same query) only if a sentence of it could reach the answers with the largest evidence: the
        # k-th best score of the shown passages' sentences without any evidence bounds what the answers need.
        shown = by_score[:max(answers_k, FETCHED)]
        known = np.isin(c.sentence_passage[pool], shown)
        wanted = shown
        if not known.all():
            k = max(answers_k, 2, READ if w.reader and self.embedder.reader else 0)  # the margin is over the second
            floor = np.partition(sentence[pool[known]], -k)[-k] if known.sum() >= k else -np.inf
            lift = w.sentence_kind * (0.0 if c.expected.kind is None else MAX_EVIDENCE if c.expected.unit else 1.0)
            known |= sentence[pool] + lift >= floor
            wanted = np.union1d(shown, c.sentence_passage[pool[known]])
        passages = self._shown(c, c.passage_ids[wanted].tolist())
        evidence = np.zeros(pool.size, dtype=np.float32)
        evidence[known] = self._evidence(c, passages, pool[known])
        sentence[pool] += w.sentence_kind * evidence
        ranked = np.argsort(-sentence[pool], kind="stable")
        close = ranked.size > 1 and sentence[pool[ranked[0]]] - sentence[pool[ranked[1]]] < w.reader_margin
        readings = self._read(c, passages, pool, ranked, sentence, w.reader) \
            if w.reader and close and not c.interpreted else {}
        ranked = ranked[:answers_k]
        answers = pool[ranked]
        c.features = confidence.features(c, answers, sentence, pool, evidence[ranked])
        sure = confidence.probability(c.features)
        threshold = self.min_confidence if min_confidence is None else min_confidence
        if not readings and answers.size and sure[0] >= threshold:  # only an answer given gets its phrase
            readings = self._read(c, passages, pool, ranked[:1], sentence, 0.0)
        order = by_score
        if answers.size:  # the best answer's passage is on the first page, the others move down one
            at = int(np.flatnonzero(by_score == c.sentence_passage[answers[0]])[0])
            if at >= top_k:
                order = np.insert(np.delete(by_score, at), top_k - 1, by_score[at])
        order = order[offset:offset + top_k]
        passages |= self._shown(c, c.passage_ids[order].tolist())
        return self._response(c, order, answers, sure, threshold, passages, passage, sentence, readings, offset)

    def _read(self, c: Candidates, passages: dict[int, ShownPassage], pool: np.ndarray, ranked: np.ndarray,
              sentence: np.ndarray, weight: float) -> dict[int, Reading]:
        """The reader's view of the first :data:`READ` sentences of ``ranked`` (positions in ``pool``), which it
        orders again: their scores gain ``weight`` times its log-odds (``sentence`` and ``ranked`` change in place)."""
        reader = self.embedder.reader
        top = pool[ranked[:READ]]
        if reader is None or not top.size:
            return {}
        ahead = c.read_ahead
        guess = None if ahead is None or ahead.chosen.exception() else ahead.chosen.result()
        if guess is not None and top.size == 1 and not weight:  # a failed guess is a miss: read as without one
            hit = guess == int(c.sentence_ids[top[0]]) and ahead.reading.exception() is None
            self.read_ahead_counts["used" if hit else "missed"] += 1
            if hit:
                return {int(top[0]): ahead.reading.result()}
        texts = []
        for j in top.tolist():
            p = passages[int(c.passage_ids[c.sentence_passage[j]])]
            texts.append(p.text_of(p.sentences[int(c.sentence_ids[j])]))
        readings = reader.read(c.interpreted or c.query, texts)
        prob = np.clip([r.prob for r in readings], 1e-6, 1 - 1e-6)
        sentence[top] += weight * np.log(prob / (1 - prob))
        ranked[: top.size] = ranked[: top.size][np.argsort(-sentence[top], kind="stable")]
        return dict(zip(top.tolist(), readings))

    def _lexical(self, terms: np.ndarray, allowed: np.ndarray | None, n: int) -> np.ndarray:
        """The ``n`` best passages by BM25, or the ``n`` best ``allowed`` ones (every one of them scored)."""
        index = self.store.passage_terms
        return index.top(terms, n)[0] if allowed is None else best(index.scores(terms, allowed), n, allowed)[0]

    @cached_property
    def _spare(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(1, thread_name_prefix="hoidap-read-ahead")

    def _read_ahead(self, question: str, terms: np.ndarray, allowed: np.ndarray | None, n: int) -> ReadAhead | None:
        """Work on the spare core while the question is encoded: the passages' BM25 (:meth:`_lexical`), which the
        search then needs (a large collection's postings take longer to read than the question to encode), and,
        with a reader, the sentence the question's words match best among the best passages' (BM25), read for its
        phrase: an answer given has its phrase read (:meth:`_read`), and for most of them (XQuAD-vi, corpus/) that
        sentence is the best answer, whose reading is then ready. Only when a core is free (a loaded server has
        none) and one at a time; the reading is the call :meth:`_read` would make, so the answer is the same."""
        if not self.read_ahead or (self._ahead and not self._ahead.done()):
            return None
        reader = None if self.weights.reader else self.embedder.reader  # re-ranking reads after ranking
        lexical: Future = Future()
        chosen: Future = Future()
        self._ahead = self._spare.submit(self._work_ahead, reader, question, terms, allowed, n, lexical, chosen)
        return ReadAhead(lexical, chosen, self._ahead)

    def _work_ahead(self, reader: Reader | None, question: str, terms: np.ndarray, allowed: np.ndarray | None,
                    n: int, lexical: Future, chosen: Future) -> Reading | None:
        """The work of :meth:`_read_ahead`, each future given its result (or the error, which whoever waits for
        it then raises as the search would have) as soon as it is known."""
        try:
            lexical.set_result(self._lexical(terms, allowed, n))
            chosen.set_result(self._likely_answer(terms, lexical.result()) if reader else None)
        except BaseException as exc:
            for future in (lexical, chosen):
                if not future.done():
                    future.set_exception(exc)
            raise
        best_sentence = chosen.result()
        if best_sentence is None:
            return None
        passage_id = int(self.store.sentence_passages[best_sentence])
        p = self.store.passages([passage_id])[passage_id]
        return reader.read(question, [p.text_of(p.sentences[best_sentence])])[0]

    def _likely_answer(self, terms: np.ndarray, passages: np.ndarray) -> int | None:
        """The sentence of ``passages`` (the best by BM25) that the question's words match best (BM25 over
        sentences; the first of equals), or None if none holds a word of it."""
        sentence_ids = self.store.sentence_ids_of(np.sort(passages))
        scores = self.store.sentence_terms.scores(terms, sentence_ids)
        return int(sentence_ids[np.argmax(scores)]) if scores.size and scores.max() > 0 else None

    def _shown(self, c: Candidates, ids: list[int]) -> dict[int, ShownPassage]:
        """The passages ``ids`` as shown, fetched once per candidates (ranking them again reuses them)."""
        missing = [i for i in ids if i not in c.shown]
        if missing:
            c.shown.update(self.store.passages(missing))
        return {i: c.shown[i] for i in ids}

    def _evidence(self, c: Candidates, passages: dict[int, ShownPassage], shown: np.ndarray) -> np.ndarray:
        """:meth:`Expected.evidence` of the sentences at positions ``shown``, from the answer offers stored
        with them at index time: worked out only for sentences that can become answers."""
        evidence = []
        for j in shown.tolist():
            sentence_id = int(c.sentence_ids[j])
            if sentence_id not in c.evidence:
                p = passages[int(c.passage_ids[c.sentence_passage[j]])]
                c.evidence[sentence_id] = c.expected.evidence(p.sentences[sentence_id].offers)
            evidence.append(c.evidence[sentence_id])
        return np.array(evidence, dtype=np.float32)

    def _response(self, c: Candidates, order: np.ndarray, ranked: np.ndarray, sure: np.ndarray, threshold: float,
                  passages: dict[int, ShownPassage], passage: np.ndarray, sentence: np.ndarray,
                  readings: dict[int, Reading], offset: int) -> SearchResponse:
        """Answers best first with their confidence; each shown passage marks the answers in it worth showing
        (confidence at least ``threshold``), and the best answer when the response counts as answered."""
        passage_of: list[int] = c.sentence_passage.tolist()
        sentence_ids: list[int] = c.sentence_ids.tolist()
        passage_ids: list[int] = c.passage_ids.tolist()
        answers = []
        marked: dict[int, list[tuple[int, float, float]]] = {}  # passage position -> (sentence position, score, confidence)
        for j, p_sure in zip(ranked.tolist(), sure.tolist()):
            p = passages[passage_ids[passage_of[j]]]
            s = p.sentences[sentence_ids[j]]
            text = p.text_of(s)
            found = readings[j].span if j in readings else None
            span = AnswerSpan(start=s.start + found[0], end=s.start + found[1], text=text[found[0]:found[1]]) \
                if found else None
            answers.append(Answer(text=text, score=float(sentence[j]), confidence=round(p_sure, 4),
                                  document_id=p.document_id, title=p.title, source=p.source, passage_id=p.id,
                                  sentence_id=s.id, start=s.start, end=s.end, page=s.page, section=s.section,
                                  span=span, url=document_url(p.document_id, [s.id], s.id)))
            if p_sure >= threshold:
                marked.setdefault(passage_of[j], []).append((j, float(sentence[j]), round(p_sure, 4)))
        answered = bool(answers) and answers[0].confidence >= threshold
        best = int(ranked[0]) if answered else -1
        results = []
        for i in order.tolist():
            p = passages[passage_ids[i]]
            highlights = []
            for j, score, p_sure in sorted(marked.get(i, ())):
                s = p.sentences[sentence_ids[j]]
                highlights.append(Highlight(start=s.start - p.start, end=s.end - p.start, sentence_id=s.id,
                                            score=score, confidence=p_sure, best=j == best))
            ids = [h.sentence_id for h in highlights]
            at = max(highlights, key=lambda h: h.score).sentence_id if highlights else min(p.sentences, default=None)
            results.append(Result(document_id=p.document_id, title=p.title, source=p.source, passage_id=p.id,
                                  score=float(passage[i]), text=p.text, start=p.start, end=p.end,
                                  highlights=highlights, page=p.page, section=p.section,
                                  url=document_url(p.document_id, ids, at)))
        took = (time.perf_counter() - c.started) * 1000
        return SearchResponse(query=c.query, interpreted_query=c.interpreted, answered=answered,
                              min_confidence=threshold, answers=answers, results=results, offset=offset,
                              total=len(passage_ids), took_ms=round(took, 2))


def _check_model(store: Store, model: str) -> None:
    """Vectors of two models are not comparable: a mismatch would answer nonsense, so refuse it."""
    if model != store.info.model:
        raise ModelMismatchError(
            f"the index in {store.path.parent.parent} was built with model {store.info.model!r}, not {model!r}: "
            f"query it with --model {store.info.model} or rebuild it with `hoidap index --model {model}`")
