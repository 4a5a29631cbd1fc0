"""What a Vietnamese question asks for, and how well a sentence offers it: cues for ranking answers.

"bao nhiêu" wants a number, "khi nào" a time, "ai" a person, "ở đâu" a place. The answer is
something the question does not already say: a sentence that repeats the question's numbers and
names but adds none of its own is less likely to answer it. And an answer sentence restates what
the question is about: its content words appear in the sentence, or in the sentence just before it
when this one only says "he" or "the company". Small, general priors, not a reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Callable, Iterable

import numpy as np

from .text import fold, fold_normalized, folded_syllables, has_diacritics

_NUMBER = re.compile(r"\d+(?:[.,/]\d+)*|\b(?:một|hai|ba|bốn|năm|sáu|bảy|tám|chín|mười|mươi|trăm|nghìn|ngàn|"
                     r"vạn|triệu|tỷ|tỉ|nửa|chục)\b", re.IGNORECASE)
_TIME = re.compile(r"\d+(?:[./]\d+)*|\b(?:tháng|thế kỷ|thập niên|thập kỷ|mùa xuân|mùa hè|mùa thu|mùa đông)"
                   r"(?: [\wÀ-ỹ]+)?", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]\w*")


def _names(text: str) -> list[str]:
    """Runs of capitalized words ("Peyton Manning", "Hải Phòng"), except a lone sentence-initial capital."""
    runs: list[tuple[int, list[str]]] = []
    last_end = -2
    for m in _WORD.finditer(text):
        if not m.group(0)[0].isupper():
            last_end = -2
            continue
        if runs and m.start() == last_end + 1 and text[last_end] == " ":
            runs[-1][1].append(m.group(0))
        else:
            runs.append((m.start(), [m.group(0)]))
        last_end = m.end()
    return [" ".join(words) for start, words in runs if start > 0 or len(words) > 1]


def _matches(pattern: re.Pattern) -> Callable[[str], list[str]]:
    return lambda text: [m.group(0) for m in pattern.finditer(text)]


# What each kind of question looks for in a sentence, and the extractor that finds it.
_EXTRACTORS: dict[str, Callable[[str], list[str]]] = {"time": _matches(_TIME), "number": _matches(_NUMBER),
                                                      "name": _names}
_ASKS: dict[str, tuple[str, ...]] = {  # question words of each kind; "time" first: "năm bao nhiêu" asks a year
    "time": ("khi nào", "lúc nào", "bao giờ", "năm nào", "năm bao nhiêu", "ngày nào", "tháng nào", "thế kỷ nào",
             "thập niên nào", "thời điểm nào", "thời gian nào", "giai đoạn nào", "thời kỳ nào", "vào năm"),
    "number": ("bao nhiêu", "mấy", "bao lâu", "bao xa", "bao lớn", "bao cao", "tỷ lệ", "phần trăm", "số lượng"),
    "person": ("ai", "người nào", "những ai", "vị nào"),
    "place": ("ở đâu", "nơi nào", "chỗ nào", "đâu", "quốc gia nào", "nước nào", "thành phố nào", "tỉnh nào"),
}
# Typed without diacritics, only question words of two or more syllables stay unambiguous: "ai", "đâu" and
# "mấy" fold to common words ("ái", "đầu", "máy"), and "bao cao" is far more often "báo cáo" (a report).
_AMBIGUOUS_FOLDED = frozenset({"bao cao"})


def _either(words: Iterable[str]) -> re.Pattern:
    return re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b")


_WANTS = {"time": "time", "number": "number", "person": "name", "place": "name"}  # the extractor answering a kind
# (kind, its question words, the same typed without diacritics, the extractor of what it asks for)
_KINDS: list[tuple[str, re.Pattern, re.Pattern, str]] = [
    (kind, _either(words), _either(f for f in map(fold, words) if " " in f and f not in _AMBIGUOUS_FOLDED),
     _WANTS[kind])
    for kind, words in _ASKS.items()
]
# The one or two words after a number ("19 địa phương", "7,63 tỷ USD"), where its unit is said.
_NUMBER_THEN_WORDS = re.compile(r"\d[\d.,]*(?=\s+(\w+)(?:\s+(\w+))?)")


def offers(matched: str) -> dict[str, list[str]]:
    """What a sentence offers an answer, worked out once at index time and stored with it: for each
    extractor the values found, folded, and the words that follow its numbers.

    ``matched`` is the sentence in :func:`hoidap.index.text.normalize`'s form. Searching then only compares
    these with the question (:meth:`Expected.evidence`), instead of running every pattern over every
    candidate sentence on every query.
    """
    found: dict[str, list[str]] = {name: [folded_syllables(x) for x in extract(matched)]
                                   for name, extract in _EXTRACTORS.items()}
    units = {w for m in _NUMBER_THEN_WORDS.finditer(fold_normalized(matched)) for w in m.groups() if w}
    return found | {"units": sorted(units)}


# Question words and the commonest function words (folded): they say how a question is asked, not
# what it is about, so they do not count towards coverage.
_FUNCTION_WORDS = frozenset(fold(w) for w in (
    "ai gì nào đâu bao nhiêu khi mấy là của và các những được có trong với cho một đã thì này đó như thế sao "
    "tại vì").split())
_UNIT = re.compile(r"\b(?:bao nhiêu|mấy)\s+([^\W\d_]+)", re.IGNORECASE)
_UNIT_FOLDED = re.compile(r"\bbao nhieu\s+([^\W\d_]+)")
_NOT_UNITS = frozenset({"la", "thi", "va", "con", "nam", "lan"})  # "bao nhiêu là", "mấy năm" says no unit


@dataclass(frozen=True)
class Expected:
    """What a question expects of its answer: a kind, for "bao nhiêu X" the unit X, and its content words."""

    kind: str | None
    unit: str | None
    asked: frozenset[str]  # the question's folded syllables, to tell new values from ones it already names
    terms: frozenset[str]  # the folded syllables the question is about (no question or function words)
    plain: bool = False  # typed without diacritics ("hai phong hop tac voi bao nhieu dia phuong")

    @classmethod
    def of(cls, matched: str) -> "Expected":
        """What the question ``matched``, in :func:`hoidap.index.text.normalize`'s form, expects."""
        text = matched.lower()
        plain = not has_diacritics(text)
        kind = next((kind for kind, asks, asks_plain, _ in _KINDS if (asks_plain if plain else asks).search(text)),
                    None)
        m = (_UNIT_FOLDED if plain else _UNIT).search(text)
        unit = fold_normalized(m.group(1)) if m else None
        asked = frozenset(folded_syllables(text).split())
        return cls(kind, None if unit in _NOT_UNITS else unit, asked, asked - _FUNCTION_WORDS, plain)

    def evidence(self, offered: dict[str, list[str]]) -> float:
        """0: nothing of the asked kind; 1: a value the question does not name; 2: a number with the asked unit.

        ``offered`` is a sentence's :func:`offers`, decoded.
        """
        if self.kind is None:
            return 0.0
        if self.unit and self.unit in offered["units"]:
            return 2.0
        extractor = next(name for kind, _, _, name in _KINDS if kind == self.kind)
        return float(any(not frozenset(value.split()) <= self.asked for value in offered[extractor]))

    def covered(self, held: np.ndarray, passage_of: np.ndarray) -> np.ndarray:
        """Which of the question's content words (:attr:`terms`) each sentence or the one before it holds.

        ``held[i, k]`` says whether sentence ``i`` holds content word ``k`` (words no sentence holds may
        be left out); ``passage_of[i]`` is its passage, whose sentences come in a row, in text order.
        """
        before = np.zeros_like(held)
        same = passage_of[1:] == passage_of[:-1]
        before[1:][same] = held[:-1][same]
        return held | before

    def coverage(self, held: np.ndarray, passage_of: np.ndarray) -> np.ndarray:
        """Share of the question's content words (:attr:`terms`) in each sentence or the one before it
        (:meth:`covered`)."""
        if not self.terms:
            return np.zeros(len(held), dtype=np.float32)
        return (self.covered(held, passage_of).sum(axis=1) / len(self.terms)).astype(np.float32)
