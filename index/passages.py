"""Passages: runs of consecutive sentences within one paragraph, sized so the model never truncates them."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from .sentences import Span, paragraphs, split_sentences
from .text import has_words

TokenCounter = Callable[[str], int]
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Passage:
    """A passage's span in the document and the spans of its sentences, in order."""

    start: int
    end: int
    sentences: tuple[Span, ...]


def _fit_sentence(text: str, span: Span, count: TokenCounter, limit: int) -> list[Span]:
    """Cut a sentence longer than the model's limit at word boundaries, so nothing is silently truncated."""
    words = [Span(span.start + m.start(), span.start + m.end()) for m in _WORD.finditer(text[span.start:span.end])]
    pieces: list[Span] = []
    first = 0
    while first < len(words):
        lo, hi = first, len(words) - 1  # the longest run words[first..last] that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(text[words[first].start:words[mid].end]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        pieces.append(Span(words[first].start, words[lo].end))
        first = lo + 1
    return pieces


def _pack(text: str, sentences: list[Span], sizes: list[int], count: TokenCounter, target: int,
          limit: int) -> list[Passage]:
    """Greedy packing into about equal passages of at most ``target`` tokens (one sentence may reach ``limit``)."""
    overhead = count("")
    total = sum(sizes) + overhead
    soft = total / max(1, math.ceil(total / target))
    passages: list[Passage] = []
    run: list[Span] = []
    size = overhead
    for span, n in zip(sentences, sizes):
        if run and (size + n > target or size >= soft):
            passages.append(Passage(run[0].start, run[-1].end, tuple(run)))
            run, size = [], overhead
        run.append(span)
        size += n
    if run:
        passages.append(Passage(run[0].start, run[-1].end, tuple(run)))
    return [p for q in passages for p in _verify(text, q, count, limit)]


def _verify(text: str, passage: Passage, count: TokenCounter, limit: int) -> list[Passage]:
    """Token counts of joined sentences can differ slightly from their sum: halve any passage that overflows."""
    if len(passage.sentences) == 1 or count(text[passage.start:passage.end]) <= limit:
        return [passage]
    half = len(passage.sentences) // 2
    left, right = passage.sentences[:half], passage.sentences[half:]
    return [*_verify(text, Passage(left[0].start, left[-1].end, left), count, limit),
            *_verify(text, Passage(right[0].start, right[-1].end, right), count, limit)]


def build_passages(text: str, count: TokenCounter, target: int, limit: int,
                   headings: Collection[int] = ()) -> list[Passage]:
    """Split a document into passages.

    ``count`` gives the tokens the model sees for a text (prompt and special tokens included);
    ``target`` is the preferred passage size and ``limit`` the model's hard input limit. A paragraph
    starting at an offset in ``headings`` is a heading: not a passage (it answers nothing and would come
    up as a result), but the section of the passages under it.
    """
    overhead = count("")
    passages: list[Passage] = []
    for para in paragraphs(text):
        if para.start in headings:
            continue
        sentences: list[Span] = []
        sizes: list[int] = []
        for span in split_sentences(text, para.start, para.end):
            if not has_words(text[span.start:span.end]):
                continue  # "***", "---": nothing to answer with, and their vectors sit near every vague question
            n = count(text[span.start:span.end])
            for piece in ([span] if n <= limit else _fit_sentence(text, span, count, limit)):
                sentences.append(piece)
                sizes.append(n - overhead if piece is span else count(text[piece.start:piece.end]) - overhead)
        passages.extend(_pack(text, sentences, sizes, count, target, limit))
    return passages
