"""Paragraph and sentence spans for Vietnamese text, as character offsets into the display text.

Answers are highlighted sentence by sentence, so a sentence must never be cut inside a
number ("1.500.000", "7,63"), after a title ("TS.", "TP.") or between "Điều 1." and its
title, and the offsets must point at the original characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABBREVIATIONS: frozenset[str] = frozenset({
    # Lower-case entries match in any case ("tp" matches TP., Tp., tp.);
    # entries with a capital match only as written ("No" would clash with the word "no").
    "tp", "tx", "tt", "q", "p", "ts", "ths", "pgs", "gs", "bs", "ks", "ls", "cn", "nxb",
    "tr", "v.v", "st", "mr", "mrs", "ms", "dr", "No",
})
"""Words that take a dot without ending the sentence."""

_HEADING_WORDS = frozenset({"điều", "khoản", "chương", "mục", "phần"})
_HEADING_NUMBER = re.compile(r"\d+(?:\.\d+)*|[IVXLC]+")
_OPENERS = "\"'“‘«([{"
_CLOSERS = "\"'”’»)]}"
_END = re.compile(rf"[.!?…]+[{re.escape(_CLOSERS)}]*")  # end punctuation, then what it closes
_CAPTION_BAR = re.compile(r"\s\|(?=\s|$)")  # the corpus ends photo captions with " |"
_SPACES = re.compile(r"\s*")


@dataclass(frozen=True)
class Span:
    """Character offsets into the text, end exclusive."""

    start: int
    end: int


def paragraphs(text: str) -> list[Span]:
    """Non-blank lines, stripped: the corpus holds one paragraph per line."""
    spans = (_stripped(text, m.start(), m.end()) for m in re.finditer(r"[^\n]+", text))
    return [span for span in spans if span]


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences of `text[start:end]` (one paragraph), with offsets into `text`.

    The sentences, stripped and in order, cover every non-space character of the range once.
    """
    end = len(text) if end is None else end
    segment = text[start:end]
    cuts = sorted({*_caption_cuts(segment), *_punctuation_cuts(segment)})
    pieces = (_stripped(text, start + a, start + b) for a, b in zip([0, *cuts], [*cuts, len(segment)]))
    return _merge_bare(text, [piece for piece in pieces if piece])


def _caption_cuts(segment: str) -> list[int]:
    """A caption bar ends the caption and stays with it."""
    return [m.end() for m in _CAPTION_BAR.finditer(segment)]


def _punctuation_cuts(segment: str) -> list[int]:
    """Positions right after end punctuation (and its closers) that end a sentence."""
    cuts = []
    for m in _END.finditer(segment):
        after = _SPACES.match(segment, m.end()).end()
        if after == len(segment) or _is_abbreviation(segment, m):
            continue
        glued = after == m.end()
        ends = _glued_start(segment, m) if glued else _starts_sentence(segment, after)
        if ends:
            cuts.append(m.end())
    return cuts


def _starts_sentence(s: str, i: int) -> bool:
    """A capital (Đ, Ô, Ư... included) or a digit, possibly after opening quotes/brackets.

    An ellipsis followed by a lower-case word is a pause, not an end.
    """
    while i < len(s) and s[i] in _OPENERS:
        i += 1
    return i < len(s) and (s[i].isupper() or s[i].isdigit())


def _glued_start(s: str, m: re.Match[str]) -> bool:
    """A missing space after the full stop ("thành phố.Đây là"), told apart from "Tp.HCM".

    Only a lower-case word, then a capitalised word, counts.
    """
    word, _ = _word_before(s, m.start())
    following = s[m.end():m.end() + 2]
    return (
        word.isalpha() and word.islower()
        and len(following) == 2 and following[0].isupper() and following[1].islower()
    )


def _is_abbreviation(s: str, m: re.Match[str]) -> bool:
    """Whether the single dot of `m` belongs to the word before it (TS., V., v.v., Điều 1.)."""
    if m.group().rstrip(_CLOSERS) != ".":
        return False
    word, word_start = _word_before(s, m.start(), also=".")
    word = word.strip(".")
    if word in ABBREVIATIONS or word.lower() in ABBREVIATIONS:
        return True
    if all(len(part) == 1 and part.isupper() for part in word.split(".")):
        return True  # initials: "Nguyễn V. A.", "J.R.R."
    return bool(_HEADING_NUMBER.fullmatch(word)) and _follows_heading_word(s, word_start)


def _follows_heading_word(s: str, i: int) -> bool:
    """Whether "Điều", "Khoản", "Chương"... precedes position i, so "Điều 1." is a heading."""
    j = len(s[:i].rstrip())
    heading, _ = _word_before(s, j)
    return j < i and heading.lower() in _HEADING_WORDS


def _word_before(s: str, i: int, also: str = "") -> tuple[str, int]:
    """The run of letters and digits (and `also` characters) ending at i, with its start."""
    j = i
    while j > 0 and (s[j - 1].isalnum() or s[j - 1] in also):
        j -= 1
    return s[j:i], j


def _stripped(text: str, start: int, end: int) -> Span | None:
    """`text[start:end]` without surrounding whitespace, or None if nothing is left."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    first = start + len(piece) - len(piece.lstrip())
    return Span(first, first + len(stripped))


def _merge_bare(text: str, spans: list[Span]) -> list[Span]:
    """Join pieces without a letter or digit ("…", "|") to a neighbour: they are no sentence."""
    merged: list[Span] = []
    for span in spans:
        if merged and not (_has_word(text, span) and _has_word(text, merged[-1])):
            merged[-1] = Span(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged


def _has_word(text: str, span: Span) -> bool:
    return any(ch.isalnum() for ch in text[span.start:span.end])
