"""Put back the diacritics of a question typed without them ("hai phong" -> "hải phòng").

The model embeds Vietnamese typed without marks poorly, so a plain question is read syllable by
syllable in the collection's own language: the candidates of each syllable are the marked forms of it
that the index's vocabulary holds, generated (every vowel quality, đ, and tone on every vowel) and
looked up rather than found by scanning the vocabulary, so the cost does not grow with the collection.
Their counts are the lexical index's own document frequencies of syllables and syllable bigrams, kept
at build time and rebuilt with every build. A Viterbi pass chooses the most likely marked sequence
(bigram counts smoothed towards the syllables' own); a syllable nothing supports is left as typed.
Question words a collection may not hold ("bao nhiêu", "ở đâu") come from a small built-in table, and
general Vietnamese from committed counts (:class:`Prior`: Wikipedia paragraphs, questions and a word list),
for a small collection above all.
The passage the question, as typed, matches best (:class:`Nearby`) weighs in too: a name or a rare word
is usually written there, with its marks and its capitals ("panthers" -> "Panthers"). On MLQA-vi this
took syllable accuracy from 0.952 to 0.958 and questions restored exactly from 0.667 to 0.703.

No model and no network: about 0.9 ms for a question of a dozen syllables, the nearest passage included
(``bench/latency.py --without-diacritics``, p50).
The constants below were chosen on MLQA-vi (``../shared/train/``), where syllable accuracy moved by
under 0.005 across them; ``bench/tune_restore.py`` chose :data:`hoidap.index.search.RESTORE_CONFIDENCE`.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import math
import operator
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .text import STOPS, fold_normalized, has_diacritics, syllables, syllables_and_stops

if TYPE_CHECKING:
    from .lexical import LexicalIndex

# Letters that a mark can change, and what they may become (tone marks aside).
_QUALITIES = {"a": "aăâ", "e": "eê", "o": "oôơ", "u": "uư", "d": "dđ"}
_VOWELS = frozenset("aăâeêioôơuưy")
_TONES = ("\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
_SYLLABLE = re.compile(r"[a-zđ]{1,7}")  # the longest Vietnamese syllable is 7 letters ("nghiêng")
MAX_VOWELS = 3  # "uyê", "ươi", "oai"

# Phrases a question often has that a collection's documents may not: their syllables and bigrams
# count as if this share of the collection's passages held them.
QUESTION_WORDS = (
    "bao nhiêu", "bao nhiêu tiền", "bao giờ", "bao lâu", "khi nào", "lúc nào", "năm nào", "ở đâu", "đâu",
    "đâu là", "là gì", "cái gì", "số mấy", "thứ mấy", "điều gì", "những gì", "việc gì", "là ai", "ai", "gì", "nào",
    "mấy", "như thế nào", "thế nào", "ra sao", "tại sao", "vì sao", "vì lý do gì", "có phải", "hay không",
    "có bao nhiêu", "được", "của", "với", "và",
    "các", "những", "người", "năm", "ngày", "tháng", "đã", "đang", "sẽ", "trong", "cho", "từ", "đến", "về",
    "nhất", "là", "có", "không", "nước", "thành phố", "tỉnh", "quốc gia", "được gọi là", "tên là",
)
QUESTION_WORD_SHARE = 0.02
# A syllable or bigram the nearby passage writes counts as if this share of the collection's passages held it
# more (MLQA-vi: syllables restored 0.956 at 0.005, 0.958 at 0.02, 0.958 at 0.1).
NEARBY_SHARE = 0.02
# The general Vietnamese of :class:`Prior` counts as this share of the collection, whatever its size (MLQA-vi,
# two halves by article, each restored with the other half's paragraphs and questions, before the word list and
# the question edges: syllables 0.947 without, 0.952 at 0.1, 0.954 at 0.3, 0.955 at 1, 0.952 at 3).
PRIOR_SHARE = 1.0
EDGE_SMOOTHING = 10.0  # occurrences in questions a syllable's share of beginning or ending one is smoothed with
# (not tuned; with it, question-final "đâu" stopped becoming "đầu" on MLQA-vi, syllables 0.9614 -> 0.9619)
# A dictionary word counts as this share of a text (MLQA-vi two halves, prior from the other half: syllables
# 0.963 without the dictionary, 0.965 at 0.1, 0.966 at 0.25, 0.965 at 0.5 and 1, 0.962 at 2; questions restored
# exactly 0.728, 0.736, 0.742, 0.744, 0.746, 0.730; R@1 0.785, 0.789, 0.791, 0.791, 0.787, 0.787).
WORD_WEIGHT = 0.5
PRIOR_PATH = Path(__file__).resolve().parent / "models" / "syllable_prior.json.gz"
MAX_CANDIDATES = 8  # the most frequent forms of a syllable kept: decoding is quadratic in them
# nor a form this many times rarer than the syllable's most frequent one (MLQA-vi two halves, with the prior:
# syllables restored 0.9652 at 100 (as with every form), 0.9654 at 50 and 30, 0.9645 at 20, 0.9608 at 10, and
# questions exactly 0.744 down to 50, 0.742 at 30; from 100 to 50, 200 candidate pairs a question to 142)
RAREST = 50
SMOOTHING = 20.0  # how many passages' worth of a syllable's own frequency a bigram's count is smoothed with
SYLLABLES_PER_PASSAGE = 20  # distinct syllables in a passage: counts of passages to shares of syllables
# A syllable is read with confidence when its chosen form is at least this many times as likely
# (max-marginals of the whole sequence) as its best alternative.
MARGIN = math.log(4.0)


@dataclass(frozen=True)
class Restored:
    """A question with its diacritics put back: ``text`` keeps the typed case and everything but the marks;
    ``confidence`` is the share of restorable syllables read clearly (see :data:`MARGIN`)."""

    text: str
    confidence: float
    changed: int  # syllables given marks


@dataclass(frozen=True)
class Nearby:
    """What the passage nearest a question writes: its syllables and bigrams with their marks, and how it
    writes, more often than not where no sentence begins, those it does not write in lower case (names and
    acronyms: "Panthers", "Vương quốc Anh", "IPCC")."""

    terms: frozenset[str]
    written: Mapping[str, str]  # "quốc_anh": "quốc Anh", "ipcc": "IPCC"

    @classmethod
    def of(cls, texts: Iterable[str]) -> "Nearby":
        """From passages' normalized texts. Most words are written in lower case: only the others' forms are
        gathered, and a term's occurrences where no sentence begins are its count less those where one does."""
        terms: set[str] = set()
        seen: Counter[str] = Counter()  # where no sentence begins
        forms: Counter[tuple[str, str]] = Counter()  # there, written otherwise than in lower case
        for text in texts:
            items = syllables_and_stops(text)
            said = list(itertools.filterfalse(STOPS.__contains__, items))
            if not said:
                continue
            lower = [w.lower() for w in said]
            pairs = list(map("_".join, zip(lower, lower[1:])))
            terms.update(lower)
            terms.update(pairs)
            # the words a sentence begins with: the k-th stop, the j-th item, is followed by the (j - k)-th word
            stops = itertools.compress(itertools.count(), map(STOPS.__contains__, items))
            begins = {0} | {i for i in itertools.starmap(operator.sub, zip(stops, itertools.count())) if i < len(said)}
            seen.update(lower)
            seen.subtract(lower[i] for i in begins)
            seen.update(pairs)
            seen.subtract(pairs[i - 1] for i in begins | {i + 1 for i in begins} if 0 < i < len(said))
            upper = list(itertools.compress(itertools.count(), map(str.__ne__, said, lower)))
            forms.update((lower[i], said[i]) for i in upper if i not in begins)
            forms.update((pairs[i - 1], f"{said[i - 1]} {said[i]}") for i in {j + k for j in upper for k in (0, 1)}
                         if 0 < i < len(said) and i not in begins and i - 1 not in begins)
        # a sentence's first word is capitalized whatever it is; elsewhere, more often than not makes a name
        return cls(frozenset(terms), {t: form for (t, form), n in forms.items() if 2 * n > seen[t]})

    def written_as(self, chosen: list[str], i: int, alone: bool) -> str | None:
        """How the ``i``-th of the ``chosen`` syllables is written here if not in lower case: as in a pair with
        a neighbour, or as a word ``alone`` (for a word with no other marked form: a Vietnamese syllable alone,
        "hoa", may be a name's part here and a plain word in the question)."""
        forms = []
        if i and (pair := self.written.get(f"{chosen[i - 1]}_{chosen[i]}")):
            forms.append(pair.split(" ")[1])
        if i + 1 < len(chosen) and (pair := self.written.get(f"{chosen[i]}_{chosen[i + 1]}")):
            forms.append(pair.split(" ")[0])
        if alone and chosen[i] in self.written:
            forms.append(self.written[chosen[i]])
        return next((f for f in forms if f != chosen[i] and len(f) == len(chosen[i])), None)


NOWHERE = Nearby(frozenset(), {})


@dataclass(frozen=True)
class Prior:
    """General Vietnamese, for words the collection rarely writes ("lạnh" rather than "lãnh" after "tháng
    một"): how many texts hold each marked syllable and syllable bigram, and how questions begin and end
    ("Đâu là ...", "... ở đâu?", not "đầu"). Counted from MLQA-vi's Wikipedia paragraphs and questions and
    pyvi's list of Vietnamese words (for the pairs that make a word: "kiến thức", not "kiến thực") by
    ``train/syllable_prior.py``."""

    counts: Mapping[str, float]
    texts: int
    asked: Mapping[str, tuple[int, int, int]]  # syllable: times in questions, questions it begins, it ends
    questions: int
    asked_syllables: int

    @classmethod
    def of(cls, paragraphs: Iterable[str], questions: Iterable[str], words: Iterable[str] = ()) -> "Prior":
        """Counted from normalized texts: each text counts a syllable or bigram once, as the collection's do;
        each of the dictionary's ``words`` ("kiến thức") counts :data:`WORD_WEIGHT` of a text."""
        counts: Counter[str] = Counter()
        for word in words:
            parts = word.lower().split()
            if parts and all(w.isalpha() for w in parts):
                for term in set(parts) | {f"{a}_{b}" for a, b in zip(parts, parts[1:])}:
                    counts[term] += WORD_WEIGHT
        asked: dict[str, list[int]] = {}
        texts = n = length = 0
        for asking, text in itertools.chain(zip(itertools.repeat(False), paragraphs),
                                            zip(itertools.repeat(True), questions)):
            said = [w for w in syllables(text.lower()) if w.isalpha()]
            counts.update(set(said) | {f"{a}_{b}" for a, b in zip(said, said[1:])})
            texts += 1
            if asking and said:
                n, length = n + 1, length + len(said)
                for i, w in enumerate(said):
                    seen = asked.setdefault(w, [0, 0, 0])
                    seen[0] += 1
                    seen[1] += i == 0
                    seen[2] += i == len(said) - 1
        return cls(dict(counts), texts, {w: tuple(v) for w, v in asked.items()}, n, length)

    @classmethod
    @functools.cache
    def default(cls) -> "Prior":
        """The committed counts (:data:`PRIOR_PATH`), read once."""
        return cls.load(PRIOR_PATH)

    @classmethod
    def load(cls, path: Path) -> "Prior":
        """What :meth:`save` wrote."""
        with gzip.open(path, "rt", encoding="utf-8") as f:
            saved = json.load(f)
        return cls(saved["counts"], saved["texts"], {w: tuple(v) for w, v in saved["asked"].items()},
                   saved["questions"], saved["asked_syllables"])

    def save(self, path: Path) -> None:
        """Gzipped JSON, sorted and without a time stamp: the same counts give the same bytes."""
        body = json.dumps({"texts": self.texts, "questions": self.questions, "asked_syllables": self.asked_syllables,
                           "counts": dict(sorted(self.counts.items())), "asked": dict(sorted(self.asked.items()))},
                          ensure_ascii=False, separators=(",", ":"))
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(body.encode("utf-8"))

    @functools.cached_property
    def by_plain(self) -> dict[str, frozenset[str]]:
        """Its syllables under their plain forms (:func:`_by_plain`), grouped at the first restoration."""
        return _by_plain(self.counts)

    def edges(self, syllable: str) -> tuple[float, float]:
        """How much likelier (log) ``syllable`` is to begin, and to end, a question than a syllable of one is
        on average: 0 for a syllable questions never hold, smoothed by :data:`EDGE_SMOOTHING` occurrences."""
        if not self.questions:
            return 0.0, 0.0
        held, first, last = self.asked.get(syllable, (0, 0, 0))
        p = self.questions / self.asked_syllables
        return (math.log((first + EDGE_SMOOTHING * p) / ((held + EDGE_SMOOTHING) * p)),
                math.log((last + EDGE_SMOOTHING * p) / ((held + EDGE_SMOOTHING) * p)))


NO_PRIOR = Prior({}, 0, {}, 0, 0)


def wants_restoring(text: str, max_marked_share: float = 0.25) -> bool:
    """Whether a question looks typed without diacritics: no marks at all, or marks on few of its syllables
    (a question typed with them has most of its syllables marked; many Vietnamese syllables have none)."""
    words = [w for w in syllables(text.lower()) if not w[0].isdigit()]
    if not words:
        return False
    marked = sum(has_diacritics(w) for w in words)
    return marked / len(words) < max_marked_share


def restore(text: str, terms: LexicalIndex, nearby: Nearby = NOWHERE, prior: Prior | None = None) -> Restored:
    """``text`` (in :func:`hoidap.index.text.normalize`'s form) with its unmarked syllables given the marks
    the collection makes most likely.

    ``terms`` is the collection's passage index: how many passages hold a syllable ("hải") or a syllable
    bigram ("hải_phòng") is its :meth:`~hoidap.index.lexical.LexicalIndex.held`; what ``nearby`` writes counts
    :data:`NEARBY_SHARE` of the passages more, and a word is given the capitals it writes it with.
    ``prior`` (default :meth:`Prior.default`) counts as :data:`PRIOR_SHARE` of the collection more.
    """
    spans = [(m.start(), m.end()) for m in re.finditer(r"[^\W\d_]+", text)]
    if not spans:
        return Restored(text, 0.0, 0)
    words = [text[a:b].lower() for a, b in spans]
    builtin = _builtin_terms()
    extra, near = max(1.0, QUESTION_WORD_SHARE * terms.size), max(1.0, NEARBY_SHARE * terms.size)
    prior = Prior.default() if prior is None else prior
    general, said = PRIOR_SHARE * terms.size / max(prior.texts, 1), prior.counts.get
    nearby_terms, vocabulary, prior_terms = nearby.terms, terms.vocabulary.keys(), prior.counts.keys()

    def counts(asked: list[str]) -> list[float]:
        """How many passages hold each term, with what the built-in table, the nearby passage and the prior add.
        Every pair of neighbouring candidates is asked and few are held anywhere: those are found by set
        intersections, in C, and only they are counted."""
        some = set(asked)
        some = list((vocabulary & some) | (builtin & some) | (nearby_terms & some) | (prior_terms & some))
        found = {t: held + extra * (t in builtin) + near * (t in nearby_terms) + general * said(t, 0.0)
                 for t, held in zip(some, terms.held(some))}
        return list(map(found.get, asked, itertools.repeat(0.0)))

    grouped = (_builtin_forms(), prior.by_plain)
    forms = [_candidates(w, vocabulary, grouped) for w in words]
    unique = list({c: None for cs in forms for c in cs})
    freq = dict(zip(unique, counts(unique)))
    options = [sorted(cs, key=freq.__getitem__, reverse=True)[:MAX_CANDIDATES] for cs in forms]
    options = [[c for c in cs if freq[c] * RAREST >= freq[cs[0]]] for cs in options]
    chosen, margins = _decode(options, freq, counts, terms.size * SYLLABLES_PER_PASSAGE, prior.edges)
    out = list(text)
    changed = 0
    for i, ((a, b), typed, best) in enumerate(zip(spans, words, chosen)):
        first = not text[:a].strip()  # a question begins with a capital
        form = nearby.written_as(chosen, i, alone=len(options[i]) == 1) or best
        if best != typed or form != best or (first and text[a].islower()):
            changed += 1
            out[a:b] = [c.upper() if o.isupper() or w.isupper() or (first and not k) else c
                        for k, (c, o, w) in enumerate(zip(best, text[a:b], form))]
    restorable = [m for m, opts in zip(margins, options) if len(opts) > 1]
    sure = sum(m >= MARGIN for m in restorable) / len(restorable) if restorable else 0.0
    return Restored("".join(out), sure, changed)


def _candidates(word: str, vocabulary: Set[str], grouped: Iterable[Mapping[str, frozenset[str]]]) -> list[str]:
    """The forms of ``word`` that the collection's ``vocabulary`` or any of the ``grouped`` forms (the built-in
    table's, general Vietnamese's: :func:`_by_plain`) holds, in :func:`_marked_forms`' order; the word itself
    when none is held or when it is already marked."""
    if has_diacritics(word) or not _SYLLABLE.fullmatch(word):
        return [word]
    held = vocabulary & _marked_form_set(word)  # an intersection in C: this is done for every syllable
    held = held.union(*(forms.get(word, ()) for forms in grouped))
    return [form for form in _marked_forms(word) if form in held] or [word]


def _by_plain(terms: Iterable[str]) -> dict[str, frozenset[str]]:
    """The syllables among ``terms`` under the plain syllable they are a marked form of ("hải", "hài" under
    "hai"; see :func:`_marked_forms`): sets that do not change are grouped once, not intersected per question."""
    grouped: dict[str, set[str]] = {}
    for term in terms:
        plain = fold_normalized(term)
        if "_" not in term and _SYLLABLE.fullmatch(plain) and term in _marked_form_set(plain):
            grouped.setdefault(plain, set()).add(term)
    return {plain: frozenset(forms) for plain, forms in grouped.items()}


@functools.lru_cache(maxsize=65536)
def _marked_forms(word: str) -> tuple[str, ...]:
    """Every way marks can be put on a plain syllable: vowel qualities and đ, then no tone or one tone on
    one of its vowels (both placements of "hoà"/"hòa"; only the collection's own form will be held)."""
    if sum(ch in _VOWELS for ch in word) > MAX_VOWELS:
        return (word,)
    forms = []
    for letters in itertools.product(*(_QUALITIES.get(ch, ch) for ch in word)):
        forms.append("".join(letters))
        for i, ch in enumerate(letters):
            if ch in _VOWELS:
                forms += ["".join((*letters[:i], _toned(ch, t), *letters[i + 1:])) for t in _TONES]
    return tuple(dict.fromkeys(forms))


@functools.lru_cache(maxsize=65536)
def _marked_form_set(word: str) -> frozenset[str]:
    return frozenset(_marked_forms(word))


@functools.cache
def _toned(vowel: str, tone: str) -> str:
    return unicodedata.normalize("NFC", vowel + tone)


@functools.cache
def _builtin_terms() -> frozenset[str]:
    """The syllables and bigrams of :data:`QUESTION_WORDS`."""
    words = [phrase.split() for phrase in QUESTION_WORDS]
    return frozenset(t for w in words for t in [*w, *(f"{a}_{b}" for a, b in zip(w, w[1:]))])


@functools.cache
def _builtin_forms() -> dict[str, frozenset[str]]:
    """The built-in table's syllables under their plain forms."""
    return _by_plain(_builtin_terms())


def _decode(options: list[list[str]], freq: Mapping[str, float], pairs: Callable[[list[str]], list[float]],
            total: float, edges: Callable[[str], tuple[float, float]]) -> tuple[list[str], list[float]]:
    """The most likely sequence of candidates (Viterbi) and, for each position, how much more likely the whole
    best sequence is than the best one choosing otherwise there (log max-marginal margin; inf if no choice).
    ``freq`` counts each candidate, ``pairs`` counts bigrams ("hải_phòng"); ``edges`` scores a syllable's
    likelihood of beginning and of ending the question (:meth:`Prior.edges`). Candidates are handled by position
    in plain lists: this runs for every question typed without marks."""
    n = len(options)
    unigram = [[(freq[c] + 0.5) / total for c in cs] for cs in options]  # P(syllable), smoothed by a half
    # step[i][a][b]: log P(options[i][b] | options[i - 1][a]), the pair's count smoothed towards the syllable's
    # own frequency (Dirichlet, SMOOTHING), so that a pair the collection writes beats a pair it never does
    step: list[list[list[float]]] = [[]]
    for before, now, shares in zip(options, options[1:], unigram[1:]):
        counted, m = pairs([f"{p}_{c}" for p in before for c in now]), len(now)
        smoothed = [SMOOTHING * u for u in shares]
        step.append([[math.log((c + s) / below) for c, s in zip(counted[a * m:a * m + m], smoothed)]
                     for a, below in enumerate([freq[p] + SMOOTHING for p in before])])
    forward = [[math.log(u) + edges(c)[0] for c, u in zip(options[0], unigram[0])]]
    back: list[list[int]] = [[]]
    for i in range(1, n):
        before = forward[-1]
        scores, came = [], []
        for column in zip(*step[i]):  # the moves into each candidate
            through = [f + m for f, m in zip(before, column)]
            best = max(through)
            scores.append(best)
            came.append(through.index(best))  # the first of equals, as max() chooses
        forward.append(scores)
        back.append(came)
    backward = [[] for _ in range(n)]
    backward[-1] = [edges(c)[1] for c in options[-1]]
    for i in range(n - 2, -1, -1):
        after = backward[i + 1]
        backward[i] = [max([m + x for m, x in zip(row, after)]) for row in step[i + 1]]
    last = [f + b for f, b in zip(forward[-1], backward[-1])]
    at = [last.index(max(last))]
    for i in range(n - 1, 0, -1):
        at.append(back[i][at[-1]])
    at.reverse()
    margins = []
    for i in range(n):
        marginal = sorted((f + b for f, b in zip(forward[i], backward[i])), reverse=True)
        margins.append(marginal[0] - marginal[1] if len(marginal) > 1 else math.inf)
    return [cs[a] for cs, a in zip(options, at)], margins
