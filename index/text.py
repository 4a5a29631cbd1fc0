"""Text forms for Vietnamese: one to display, one to match, one to match without accents.

Documents and queries arrive in NFC or NFD, with "hoà" or "hòa" tone placement and with
invisible layout characters. Matching must ignore all of that; display must keep every
character so that offsets into the stored text stay valid.
"""

from __future__ import annotations

import functools
import re
import unicodedata

NORMALIZATION_VERSION: int = 3
"""Stored in index metadata: bump whenever the output of `normalize` (or `fold`) or the cutting of documents
into passages changes (2: headings are no passages; 3: "hoặc" is no longer turned into "họăc"), so that the
next build embeds every document again."""

_TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"  # grave, acute, tilde, hook above, dot below

# In NFD, a tone mark written on the second vowel of a final "oa", "oe" or "uy" (hoà, khoẻ,
# thuý). Not after q: in "quý" the u belongs to the onset and the mark really is on y.
# Not before a letter: with a final consonant (hoàng, thuyết) the placement is fixed. Not before another
# mark: in "hoặc" (NFD: o, a, dot below, breve, c) the vowel is ă, not a, and the syllable has its final c.
_LATE_TONE = re.compile(
    rf"(?<![qQ])([oO](?=[aAeE])|[uU](?=[yY]))(.)([{_TONE_MARKS}])(?![^\W\d_]|[\u0300-\u036f])"
)
# The same places in NFC, where the vowel and its mark are one character ("oà"): most texts have none, and
# then the text is returned composed, without decomposing it first.
_LATE_TONE_COMPOSED = re.compile(r"(?<![qQ])([oO][àáãảạÀÁÃẢẠèéẽẻẹÈÉẼẺẸ]|[uU][ỳýỹỷỵỲÝỸỶỴ])(?![^\W\d_])")
_WHITESPACE = re.compile(r"\s+")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_TOKEN = re.compile(r"\d+(?:[.,/]\d+)+|[^\W_]+")
STOPS = frozenset(".!?:…")  # what may end a sentence
_TOKEN_OR_STOP = re.compile(rf"{_TOKEN.pattern}|[{''.join(STOPS)}]")


def to_display(text: str) -> str:
    """The stored and shown form: NFC with Unix newlines and no BOM, every other character kept."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


def normalize(text: str) -> str:
    """The form used for matching: NFC, one tone placement, no invisibles, single spaces.

    Case is kept because the embedding model is case-aware.
    """
    text = unicodedata.normalize("NFC", _WHITESPACE.sub(" ", _drop_invisible(text)).strip())
    if not _LATE_TONE_COMPOSED.search(text):
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", _LATE_TONE.sub(r"\1\3\2", decomposed))


def fold(text: str) -> str:
    """Lower-case and accent-free, for matching queries typed without diacritics."""
    return fold_normalized(normalize(text))


def fold_normalized(text: str) -> str:
    """:func:`fold` of text already in :func:`normalize`'s form, such as stored sentences: one pass, not two."""
    return text.lower().translate(_fold_table())


@functools.cache
def _fold_table() -> dict[int, str | None]:
    """Every BMP character to itself without marks; lone marks to nothing. Built once (about 30 ms).

    One ``str.translate`` then folds a text at C speed, where decomposing it and testing each
    character's category ran a Python loop per character on every query. đ/Đ have no
    decomposition, so stripping marks would leave them: they are mapped explicitly.
    """
    table: dict[int, str | None] = {ord("đ"): "d", ord("Đ"): "D"}
    for cp in range(0x80, 0x10000):
        decomposed = unicodedata.normalize("NFD", chr(cp))
        bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
        if bare != chr(cp):
            table[cp] = unicodedata.normalize("NFC", bare) or None
    return table


def tokens(text: str) -> list[str]:
    """Lower-case syllables and numbers of the normalized text, for lexical search.

    Numbers keep their internal separators ("1.500.000", "7,63", "9/11/2015") so that
    thousands separators and decimal commas do not break them into meaningless pieces.
    """
    return syllables(normalize(text).lower())


def has_words(text: str) -> bool:
    """Whether ``text`` has any letter or digit: "***" or "---" has nothing to index or answer with."""
    return _LETTER_OR_DIGIT.search(text) is not None


def has_diacritics(text: str) -> bool:
    """Whether normalized ``text`` has any Vietnamese mark or đ: questions are often typed without them."""
    lower = text.lower()
    return fold_normalized(lower) != lower


def folded_syllables(text: str) -> str:
    """The syllables and numbers of normalized text, folded and joined by spaces: what answer cues match
    on, stored with each sentence so that a search only splits it."""
    return " ".join(syllables(fold_normalized(text)))


def syllables(text: str) -> list[str]:
    """The syllables and numbers of text as it is (see :func:`tokens`), with no normalization."""
    return _TOKEN.findall(text)


def syllables_and_stops(text: str) -> list[str]:
    """:func:`syllables`, with the marks that may end a sentence between them (:data:`STOPS`) as items of their
    own ("1.500.000" stays one): where sentences begin, in the same pass."""
    return _TOKEN_OR_STOP.findall(text)


def word_spans(text: str) -> list[tuple[int, int]]:
    """Where the syllables and numbers of ``text`` (:func:`syllables`) stand, as ``(start, end)``."""
    return [m.span() for m in _TOKEN.finditer(text)]


def _drop_invisible(text: str) -> str:
    """Remove format and control characters that are not whitespace (ZWSP, soft hyphen, BOM...).

    Printable characters are never format or control characters, and most texts are printable
    throughout: one C-level check then spares the per-character look-ups on every query.
    """
    if text.isprintable():
        return text
    return "".join(ch for ch in text if ch.isprintable() or ch.isspace() or unicodedata.category(ch) not in ("Cf", "Cc"))
