"""The whole search at scale: a synthetic Vietnamese collection built into a real data dir, then the complete
``Engine.search`` (dense + BM25 + fusion + sentences + SQLite + the reader) timed one question at a time.

    .venv/bin/python bench/scale_search.py [--sizes 100000] [--queries 200] [--keep DIR]

Text: syllables drawn from corpus/'s own distribution (its 703 syllables with their counts), extended by a
Zipf tail of syllables made from its onsets, rhymes and tones up to 7,000 (a real collection's size: so
few syllables would put every one of them in most passages), with the exponent fitted to corpus/'s rank
frequencies; passage and sentence lengths drawn from corpus/'s own passages; 14 passages a document, as
corpus/ has. Vectors are synthetic, shaped as in ``bench/scale.py``, so the benchmark does not wait on
embedding. The build goes through the project's own writer (``IndexWriter``: SQLite rows, vector index
``auto``, lexical indexes, the commit); only splitting and embedding are skipped, their output given.

Questions: a window of 5-10 syllables of a random passage, asked as "… là gì?", encoded by the real default
model (the dense side then finds random neighbours: only timing is measured). The reader reads the phrase
of an answer given; on this text few are (the share is printed), but the spare core reads the likely answer of
every question while it is encoded (``Engine._read_ahead``) and goes on after the search returns. Printed per
size: the build's time and peak memory; the encoding alone and the complete search (p50, p95, the ratio of the
p50s), both right after the last question (the spare core may still be reading it) and :data:`PAUSE` after it,
as a lone user asks (checked to give the same answers); the same search with BM25 reading every posting of the
common terms too (exhaustive scoring, where the search reads only their best postings:
``lexical.IMPACT_PREFIX``), and how many questions get the same 10 passages in the same order; and BM25's best
passages alone, both ways (``LexicalIndex.top``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import resource
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale import Corpus  # noqa: E402

from hoidap.index.build import DEFAULT_PASSAGE_TOKENS, load_files, split_document  # noqa: E402
from hoidap.index.documents import Document  # noqa: E402
from hoidap.index.embeddings import Embedder  # noqa: E402
from hoidap.index.lexical import lexical_terms  # noqa: E402
from hoidap.index.passages import Passage  # noqa: E402
from hoidap.index.search import POOL, Engine  # noqa: E402
from hoidap.index.sentences import Span  # noqa: E402
from hoidap.index.store import IndexWriter, Store  # noqa: E402
from hoidap.index.text import NORMALIZATION_VERSION, normalize, syllables  # noqa: E402

VOCABULARY = 7_000
PASSAGES_A_DOCUMENT = 14
PAUSE = 0.05  # s: a lone user's next question comes after the spare core has read the last one's answer
TONES = "\u0300\u0301\u0309\u0303\u0323"  # huyền, sắc, hỏi, ngã, nặng (combining, then NFC)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Language:
    """corpus/'s syllables and lengths, and a Zipf tail of made syllables: draws text shaped like it."""

    def __init__(self, embedder: Embedder, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        docs = list(load_files([ROOT / "corpus"], []))
        counts = Counter(s for d in docs for s in syllables(normalize(d.text).lower()))
        words = [w for w, _ in counts.most_common()]
        freq = np.array([counts[w] for w in words], dtype=np.float64)
        ranks = np.arange(1, len(freq) + 1)
        slope = -np.polyfit(np.log(ranks[9:]), np.log(freq[9:]), 1)[0]  # the head's Zipf exponent
        onsets = sorted({re.match(r"[^aăâeêioôơuưy]*", _plain(w)).group(0) for w in words})
        rhymes = sorted({_plain(w)[len(re.match(r"[^aăâeêioôơuưy]*", _plain(w)).group(0)):] for w in words} - {""})
        made: list[str] = []
        seen = set(words)
        while len(words) + len(made) < VOCABULARY:
            w = normalize(self.rng.choice(onsets) + _toned(self.rng.choice(rhymes), self.rng))
            if w not in seen:
                seen.add(w)
                made.append(w)
        tail_ranks = np.arange(len(words) + 1, len(words) + len(made) + 1)
        tail = freq[-1] * (tail_ranks / len(words)) ** -slope
        self.corpus_syllables = len(words)
        self.words = np.array(words + made)
        weights = np.concatenate([freq, tail])
        self.p = weights / weights.sum()
        self.slope = slope
        self._stream, self._at = np.zeros(0, dtype=np.int64), 0
        passages = [p for d in docs for p in split_document(d, embedder, DEFAULT_PASSAGE_TOKENS)]
        self.sentence_lengths = [len(syllables(d.text[s.start:s.end])) for d in docs
                                 for p in split_document(d, embedder, DEFAULT_PASSAGE_TOKENS) for s in p.sentences]
        self.sentences_a_passage = [len(p.sentences) for p in passages]

    def _draw(self, n: int) -> np.ndarray:
        """``n`` syllables' positions, from a stream drawn a million at a time (a draw weighted over 7,000
        syllables is slow one sentence at a time)."""
        if self._at + n > self._stream.size:
            self._stream, self._at = self.rng.choice(len(self.words), 1_000_000, p=self.p), 0
        self._at += n
        return self._stream[self._at - n:self._at]

    def document(self, n: int) -> tuple[Document, list[Passage]]:
        """A document of :data:`PASSAGES_A_DOCUMENT` passages, its offsets known (no splitting needed)."""
        text, passages = "", []
        for _ in range(PASSAGES_A_DOCUMENT):
            start, spans = len(text), []
            for _ in range(int(self.rng.choice(self.sentences_a_passage))):
                words = self.words[self._draw(max(3, int(self.rng.choice(self.sentence_lengths))))]
                sentence = " ".join(words) + "."
                sentence = sentence[0].upper() + sentence[1:]
                at = len(text) + (1 if spans else 0)
                text += (" " if spans else "") + sentence
                spans.append(Span(at, at + len(sentence)))
            passages.append(Passage(start, len(text), tuple(spans)))
            text += "\n\n"
        doc = Document(id=f"d{n:08d}", title=f"Tài liệu {n}", source=f"synthetic/{n}.txt", format="txt",
                       text=text.rstrip(), content_hash=f"{n:032x}")
        return doc, passages


def _plain(word: str) -> str:
    return unicodedata.normalize("NFC", "".join(c for c in unicodedata.normalize("NFD", word) if c not in TONES))


def _toned(rhyme: str, rng: np.random.Generator) -> str:
    tone = rng.integers(0, len(TONES) + 1)
    if not tone:
        return rhyme
    vowels = [i for i, c in enumerate(rhyme) if c in "aăâeêioôơuưy"]
    at = vowels[0] + 1
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", rhyme[:at]) + TONES[tone - 1] + rhyme[at:])


def build(size: int, data_dir: Path, language: Language, vectors: Corpus, model: str) -> tuple[float, int, int]:
    """``size`` passages made, then written through the writer; the writing's seconds, passages and sentences."""
    started = time.perf_counter()
    documents = [language.document(n) for n in range(-(-size // PASSAGES_A_DOCUMENT))]
    passage_vectors = vectors.vectors(sum(len(ps) for _, ps in documents))
    sentence_vectors = vectors.vectors(sum(len(p.sentences) for _, ps in documents for p in ps))
    made = time.perf_counter() - started
    started = time.perf_counter()
    writer = IndexWriter(data_dir, model, 384, NORMALIZATION_VERSION, DEFAULT_PASSAGE_TOKENS, "auto", "pooled")
    p_at = s_at = 0
    for doc, passages in documents:
        n_s = sum(len(p.sentences) for p in passages)
        writer.add(doc, passages, passage_vectors[p_at:p_at + len(passages)], sentence_vectors[s_at:s_at + n_s])
        p_at, s_at = p_at + len(passages), s_at + n_s
    del documents, passage_vectors, sentence_vectors  # the writer holds what it needs, as in a real build
    counts = dict(writer.counts)
    writer.commit()
    print(f"  (text and vectors made in {made:.0f} s)")
    return time.perf_counter() - started, counts["passages"], counts["sentences"]


@contextlib.contextmanager
def _every_posting(store: Store) -> Iterator[None]:
    """The search's BM25 reading every posting of the common terms too: exhaustive scoring."""
    pruned = store.passage_terms.top
    store.passage_terms.top = functools.partial(pruned, exact=True)
    try:
        yield
    finally:
        del store.passage_terms.top  # the method again


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def measure(size: int, queries: int, embedder: Embedder, language: Language, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="hoidap-scale-search-") as tmp:
        data_dir = (keep or Path(tmp)) / f"data-{size}"
        if (data_dir / "current").exists():  # kept from an earlier run (--keep): searched again, not built
            seconds, build_peak = 0.0, 0.0
        else:
            seconds, _, _ = build(size, data_dir, language, Corpus(size), embedder.name)
            build_peak = peak_mb()
        store = Store.open(data_dir)
        passages, sentences = store.info.passages, int(store.sentence_passages.size)
        kind = store.query("SELECT value FROM meta WHERE key = 'vector_index'")[0][0].strip('"')
        engine = Engine(store, embedder)
        rng = np.random.default_rng(size)
        questions = []
        for pid in rng.choice(passages, queries, replace=False):
            words = syllables(store.passages([int(pid)])[int(pid)].text)
            at = int(rng.integers(0, max(1, len(words) - 10)))
            questions.append(" ".join(words[at:at + int(rng.integers(5, 11))]) + " là gì?")
        pruned = store.passage_terms.top
        exact = functools.partial(pruned, exact=True)
        for q in questions:  # warm up: the model, and the mapped pages that either way of scoring BM25 reads
            engine.search(q)
            with _every_posting(store):
                engine.search(q)
        encode, whole, paused, exact_search, lexical_top, lexical_all = [], [], [], [], [], []
        answered = equal = 0  # the reader reads the phrase of an answer given, not of one refused
        for q in questions:  # taking turns, so that the machine's drift touches both alike
            t = time.perf_counter()
            embedder.encode([q], "query")
            encode.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            served = engine.search(q)
            whole.append((time.perf_counter() - t) * 1000)
            time.sleep(PAUSE)
            t = time.perf_counter()
            same = engine.search(q)
            paused.append((time.perf_counter() - t) * 1000)
            assert [a.text for a in served.answers] == [a.text for a in same.answers], q
            with _every_posting(store):
                t = time.perf_counter()
                exhaustive = engine.search(q)
                exact_search.append((time.perf_counter() - t) * 1000)
            equal += [r.passage_id for r in served.results] == [r.passage_id for r in exhaustive.results]
            answered += served.answered
            ids = store.term_ids(lexical_terms(normalize(q)))
            t = time.perf_counter()
            pruned(ids, POOL)
            lexical_top.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            exact(ids, POOL)
            lexical_all.append((time.perf_counter() - t) * 1000)
        print(f"\n{passages:,} passages, {sentences:,} sentences, vector index {kind}: written in {seconds:.0f} s "
              f"through IndexWriter, process peak {build_peak:,.0f} MB")
        print(f"  encoding alone   p50 {statistics.median(encode):6.2f} ms, p95 {percentile(encode, 95):6.2f}")
        print(f"  Engine.search    p50 {statistics.median(whole):6.2f} ms, p95 {percentile(whole, 95):6.2f}  "
              f"({statistics.median(whole) / statistics.median(encode):.2f}x the encoding's p50), right after another")
        print(f"  Engine.search    p50 {statistics.median(paused):6.2f} ms, p95 {percentile(paused, 95):6.2f}  "
              f"({statistics.median(paused) / statistics.median(encode):.2f}x), {PAUSE * 1000:.0f} ms after another")
        print(f"  answered (so read by the reader for its phrase): {answered / len(questions):.0%} of the questions")
        print(f"  the same, BM25 reading every posting of the common terms: p50 {statistics.median(exact_search):.2f} ms, "
              f"p95 {percentile(exact_search, 95):.2f}; the same 10 passages in the same order for "
              f"{equal} of {len(questions)} questions")
        print(f"  of which BM25's {POOL} best passages (LexicalIndex.top): p50 {statistics.median(lexical_top):.2f} ms, "
              f"p95 {percentile(lexical_top, 95):.2f}; every posting read: p50 {statistics.median(lexical_all):.2f} ms, "
              f"p95 {percentile(lexical_all, 95):.2f}")
        print(f"  process peak so far {peak_mb():,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build into (and keep) DIR/data-SIZE; search a build kept there")
    args = parser.parse_args()
    embedder = Embedder()
    language = Language(embedder)
    print(f"vocabulary: corpus/'s {language.corpus_syllables:,} syllables "
          f"extended to {len(language.words):,} (Zipf exponent {language.slope:.2f}); default settings "
          f"(the reader on, {embedder.backend})")
    for size in args.sizes:
        measure(size, args.queries, embedder, language, args.keep)


if __name__ == "__main__":
    main()
