"""What kind of answer a Vietnamese question asks for, and whether a sentence offers a new one.

"bao nhiêu" wants a number, "khi nào" a time, "ai" a person, "ở đâu" a place. The answer is
something the question does not already say: a sentence that repeats the question's numbers and
names but adds none of its own is less likely to answer it. A small, general prior for ranking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Callable

from .text import fold, normalize

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


_KINDS: list[tuple[str, re.Pattern, Callable[[str], list[str]]]] = [
    ("time", re.compile(r"\b(khi nào|lúc nào|bao giờ|năm nào|năm bao nhiêu|ngày nào|tháng nào|thế kỷ nào|"
                        r"thập niên nào|thời điểm nào|thời gian nào|giai đoạn nào|thời kỳ nào|vào năm)\b"), _matches(_TIME)),
    ("number", re.compile(r"\b(bao nhiêu|mấy|bao lâu|bao xa|bao lớn|bao cao|tỷ lệ|phần trăm|số lượng)\b"), _matches(_NUMBER)),
    ("person", re.compile(r"\b(ai|người nào|những ai|vị nào)\b"), _names),
    ("place", re.compile(r"\b(ở đâu|nơi nào|chỗ nào|đâu|quốc gia nào|nước nào|thành phố nào|tỉnh nào)\b"), _names),
]


_UNIT = re.compile(r"\b(?:bao nhiêu|mấy)\s+([^\W\d_]+)", re.IGNORECASE)
_NOT_UNITS = frozenset({"la", "thi", "va", "con", "nam", "lan"})  # "bao nhiêu là", "mấy năm" says no unit


@dataclass(frozen=True)
class Expected:
    """What a question expects of its answer: a kind, and for "bao nhiêu X" the unit X."""

    kind: str | None
    unit: str | None
    asked: str  # the folded question, to tell new values from ones it already names

    @classmethod
    def of(cls, question: str) -> "Expected":
        text = normalize(question).lower()
        kind = next((kind for kind, asks, _ in _KINDS if asks.search(text)), None)
        unit = m.group(1) if (m := _UNIT.search(text)) and fold(m.group(1)) not in _NOT_UNITS else None
        return cls(kind, unit and fold(unit), fold(question))

    def evidence(self, sentence: str) -> float:
        """0: nothing of the asked kind; 1: a value the question does not name; 2: a number with the asked unit."""
        if self.kind is None:
            return 0.0
        text = normalize(sentence)
        if self.unit and re.search(rf"\d[\d.,]*\s+(?:\w+\s+)?{re.escape(self.unit)}\b", fold(text)):
            return 2.0
        extract = next(f for k, _, f in _KINDS if k == self.kind)
        new = any(not re.search(rf"(?<!\w){re.escape(fold(x))}(?!\w)", self.asked) for x in extract(text))
        return float(new)
