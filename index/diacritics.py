"""Put back the diacritics of a question typed without them ("hai phong" -> "hải phòng").

The model embeds Vietnamese typed without marks poorly, so a plain question is read syllable by
syllable in the collection's own language: the candidates of each syllable are the marked forms of it
that the index's vocabulary holds, generated (every vowel quality, đ, and tone on every vowel) and
looked up rather than found by scanning the vocabulary, so the cost does not grow with the collection.
Their counts are the lexical index's own document frequencies of syllables and syllable bigrams, kept
at build time and rebuilt with every build. A Viterbi pass chooses the most likely marked sequence
(bigram counts smoothed towards the syllables' own); a syllable nothing supports is left as typed.
Question words a collection may not hold ("bao nhiêu", "ở đâu") come from a small built-in table.
The passage the question, as typed, matches best (:class:`Nearby`) weighs in too: a name or a rare word
is usually written there, with its marks and its capitals ("panthers" -> "Panthers"). On MLQA-vi this
took syllable accuracy from 0.952 to 0.958 and questions restored exactly from 0.667 to 0.703.

No model and no network: about 0.8 ms for a question of a dozen syllables, the nearest passage included
(``bench/latency.py --without-diacritics``, p50).
The constants below were chosen on MLQA-vi (``../shared/train/``), where syllable accuracy moved by
under 0.005 across them; ``bench/tune_restore.py`` chose :data:`hoidap.index.search.RESTORE_CONFIDENCE`.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .text import has_diacritics, syllables, word_spans

if TYPE_CHECKING:
    from .lexical import LexicalIndex

# Letters that a mark can change, and what they may become (tone marks aside).
_QUALITIES = {"a": "aăâ", "e": "eê", "o": "oôơ", "u": "uư", "d": "dđ"}
_VOWELS = frozenset("aăâeêioôơuưy")
_TONES = ("\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
_SYLLABLE = re.compile(r"[a-zđ]{1,7}")  # the longest Vietnamese syllable is 7 letters ("nghiêng")
_SENTENCE_END = re.compile(r"[.!?:…]")
MAX_VOWELS = 3  # "uyê", "ươi", "oai"

# Phrases a question often has that a collection's documents may not: their syllables and bigrams
# count as if this share of the collection's passages held them.
QUESTION_WORDS = (
    "bao nhiêu", "bao giờ", "bao lâu", "khi nào", "lúc nào", "năm nào", "ở đâu", "đâu", "là gì", "cái gì",
    "điều gì", "những gì", "việc gì", "là ai", "ai", "gì", "nào", "mấy", "như thế nào", "thế nào", "ra sao",
    "tại sao", "vì sao", "vì lý do gì", "có phải", "hay không", "có bao nhiêu", "được", "của", "với", "và",
    "các", "những", "người", "năm", "ngày", "tháng", "đã", "đang", "sẽ", "trong", "cho", "từ", "đến", "về",
    "nhất", "là", "có", "không", "nước", "thành phố", "tỉnh", "quốc gia", "được gọi là", "tên là",
)
QUESTION_WORD_SHARE = 0.02
# A syllable or bigram the nearby passage writes counts as if this share of the collection's passages held it
# more (MLQA-vi: syllables restored 0.956 at 0.005, 0.958 at 0.02, 0.958 at 0.1).
NEARBY_SHARE = 0.02
MAX_CANDIDATES = 8  # the most frequent forms of a syllable kept: decoding is quadratic in them
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
    """What the passage nearest a question writes: its syllables and bigrams with their marks, and those it
    capitalizes more often than not where a sentence does not begin (names: "Panthers", "Hải Phòng")."""

    terms: frozenset[str]
    capitalized: frozenset[str]

    @classmethod
    def of(cls, texts: Iterable[str]) -> "Nearby":
        """From passages' normalized texts."""
        terms: set[str] = set()
        votes: Counter[str] = Counter()
        for text in texts:
            spans = word_spans(text)
            lower = [text[a:b].lower() for a, b in spans]
            pairs = [f"{x}_{y}" for x, y in zip(lower, lower[1:])]
            terms.update(lower)
            terms.update(pairs)
            upper = [text[a].isupper() for a, _ in spans]
            for i in range(1, len(spans)):
                if _SENTENCE_END.search(text, spans[i - 1][1], spans[i][0]):
                    continue  # a sentence's first word is capitalized whatever it is
                votes[lower[i]] += 1 if upper[i] else -1
                votes[pairs[i - 1]] += 1 if upper[i - 1] and upper[i] else -1
        return cls(frozenset(terms), frozenset(t for t, v in votes.items() if v > 0))

    def capitalizes(self, chosen: list[str], i: int, alone: bool) -> bool:
        """Whether the ``i``-th of the ``chosen`` syllables is written with a capital here: in a pair with a
        neighbour, or ``alone`` (for a word with no other marked form: a Vietnamese syllable alone, "hoa",
        may be a name's part here and a plain word in the question)."""
        pairs = [f"{chosen[i - 1]}_{chosen[i]}"] if i else []
        pairs += [f"{chosen[i]}_{chosen[i + 1]}"] if i + 1 < len(chosen) else []
        return any(t in self.capitalized for t in pairs) or (alone and chosen[i] in self.capitalized)


NOWHERE = Nearby(frozenset(), frozenset())


def wants_restoring(text: str, max_marked_share: float = 0.25) -> bool:
    """Whether a question looks typed without diacritics: no marks at all, or marks on few of its syllables
    (a question typed with them has most of its syllables marked; many Vietnamese syllables have none)."""
    words = [w for w in syllables(text.lower()) if not w[0].isdigit()]
    if not words:
        return False
    marked = sum(has_diacritics(w) for w in words)
    return marked / len(words) < max_marked_share


def restore(text: str, terms: LexicalIndex, nearby: Nearby = NOWHERE) -> Restored:
    """``text`` (in :func:`hoidap.index.text.normalize`'s form) with its unmarked syllables given the marks
    the collection makes most likely.

    ``terms`` is the collection's passage index: how many passages hold a syllable ("hải") or a syllable
    bigram ("hải_phòng") is its :meth:`~hoidap.index.lexical.LexicalIndex.held`; what ``nearby`` writes counts
    :data:`NEARBY_SHARE` of the passages more, and a word typed in lower case that it capitalizes is capitalized.
    """
    spans = [(m.start(), m.end()) for m in re.finditer(r"[^\W\d_]+", text)]
    if not spans:
        return Restored(text, 0.0, 0)
    words = [text[a:b].lower() for a, b in spans]
    builtin = _builtin_terms()
    extra = max(1.0, QUESTION_WORD_SHARE * terms.size)
    vocabulary = terms.vocabulary

    near = max(1.0, NEARBY_SHARE * terms.size)
    counted: dict[str, float] = {}

    def freq(term: str) -> float:
        if term not in counted:
            counted[term] = terms.held(term) + extra * (term in builtin) + near * (term in nearby.terms)
        return counted[term]

    options = [sorted(_candidates(w, lambda form: form in builtin or form in vocabulary), key=freq,
                      reverse=True)[:MAX_CANDIDATES] for w in words]
    chosen, margins = _decode(options, freq, terms.size * SYLLABLES_PER_PASSAGE)
    out = list(text)
    changed = 0
    for i, ((a, b), typed, best) in enumerate(zip(spans, words, chosen)):
        capital = text[a].islower() and nearby.capitalizes(chosen, i, alone=len(options[i]) == 1)
        if best != typed or capital:
            changed += 1
            out[a:b] = [c.upper() if o.isupper() or (capital and not k) else c
                        for k, (c, o) in enumerate(zip(best, text[a:b]))]
    restorable = [m for m, opts in zip(margins, options) if len(opts) > 1]
    sure = sum(m >= MARGIN for m in restorable) / len(restorable) if restorable else 0.0
    return Restored("".join(out), sure, changed)


def _candidates(word: str, known: Callable[[str], bool]) -> list[str]:
    """The forms of ``word`` the collection (or the built-in table) holds; the word itself when none is
    held or when it is already marked."""
    if has_diacritics(word) or not _SYLLABLE.fullmatch(word):
        return [word]
    held = [form for form in _marked_forms(word) if known(form)]
    return held or [word]


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


@functools.cache
def _toned(vowel: str, tone: str) -> str:
    return unicodedata.normalize("NFC", vowel + tone)


@functools.cache
def _builtin_terms() -> frozenset[str]:
    """The syllables and bigrams of :data:`QUESTION_WORDS`."""
    words = [phrase.split() for phrase in QUESTION_WORDS]
    return frozenset(t for w in words for t in [*w, *(f"{a}_{b}" for a, b in zip(w, w[1:]))])


def _decode(options: list[list[str]], freq: Callable[[str], float], total: float) -> tuple[list[str], list[float]]:
    """The most likely sequence of candidates (Viterbi) and, for each position, how much more likely the whole
    best sequence is than the best one choosing otherwise there (log max-marginal margin; inf if no choice)."""
    n = len(options)

    steps: dict[tuple[str, str], float] = {}

    def step(p: str, c: str) -> float:  # each pair is needed forwards and backwards
        if (p, c) not in steps:
            steps[p, c] = _transition(p, c, freq, total)
        return steps[p, c]

    forward = [{c: math.log(_unigram(c, freq, total)) for c in options[0]}]
    back: list[dict[str, str]] = [{}]
    for i in range(1, n):
        scores, came = {}, {}
        for c in options[i]:
            best_prev = max(forward[i - 1], key=lambda p: forward[i - 1][p] + step(p, c))
            scores[c], came[c] = forward[i - 1][best_prev] + step(best_prev, c), best_prev
        forward.append(scores)
        back.append(came)
    backward: list[dict[str, float]] = [{} for _ in range(n)]
    backward[-1] = {c: 0.0 for c in options[-1]}
    for i in range(n - 2, -1, -1):
        backward[i] = {p: max(step(p, c) + backward[i + 1][c] for c in options[i + 1]) for p in options[i]}
    chosen = [max(forward[-1], key=forward[-1].get)]
    for i in range(n - 1, 0, -1):
        chosen.append(back[i][chosen[-1]])
    chosen.reverse()
    margins = []
    for i in range(n):
        marginal = sorted((forward[i][c] + backward[i][c] for c in options[i]), reverse=True)
        margins.append(marginal[0] - marginal[1] if len(marginal) > 1 else math.inf)
    return chosen, margins


def _transition(previous: str, current: str, freq: Callable[[str], float], total: float) -> float:
    """log P(current | previous): the bigram's count smoothed towards the syllable's own frequency
    (Dirichlet, :data:`SMOOTHING`), so that a pair the collection writes beats a pair it never does."""
    return math.log((freq(f"{previous}_{current}") + SMOOTHING * _unigram(current, freq, total))
                    / (freq(previous) + SMOOTHING))


def _unigram(syllable: str, freq: Callable[[str], float], total: float) -> float:
    """P(syllable): its count among all syllables, smoothed by a half."""
    return (freq(syllable) + 0.5) / total
