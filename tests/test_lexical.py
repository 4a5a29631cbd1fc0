"""Lexical matching: syllables, bigrams, accent folding; and what kind of answer a question wants."""

import json

import numpy as np
import pytest

from index.lexical import LexicalIndex, lexical_terms
from index.question import Expected, folded_terms, offers
from index.text import normalize
from tests.conftest import QUESTION_19

ACCENTLESS_19 = "hai phong thiet lap quan he huu nghi hop tac voi bao nhieu dia phuong"


def test_terms_hold_syllables_bigrams_and_folded_forms():
    terms = lexical_terms("Đầu tư nước ngoài")
    assert {"đầu", "tư", "đầu_tư", "~dau", "~dau_tu", "~nuoc_ngoai"} <= set(terms)


def test_exact_tones_rank_above_folded_matches():
    index = LexicalIndex.build(["Hai phòng họp lớn", "Hải Phòng là thành phố cảng"])
    exact = index.scores(lexical_terms("Hải Phòng"))
    assert exact[1] > exact[0] > 0, "both fold to 'hai phong'; the right tones win"
    folded = index.scores(lexical_terms("hai phong"))
    assert folded[0] > 0 and folded[1] > 0


def test_unknown_terms_score_zero():
    index = LexicalIndex.build(["Hải Phòng", "Hà Nội"])
    assert not np.any(index.scores(lexical_terms("xyzzy")))
    assert not np.any(index.scores([]))


@pytest.mark.parametrize("question,answer", [
    (ACCENTLESS_19, "19 địa phương"),
    ("hai phong hop tac voi bao nhieu dia phuong", "19 địa phương"),  # the README's example, short
    ("von fdi thu hut giai doan 2010 2015 la bao nhieu", "7,63 tỷ USD"),
])
def test_accent_free_question_finds_the_answer(engine, question, answer):
    assert answer in engine.search(question).answers[0].text


def test_a_question_typed_plainly_leans_on_the_folded_words(engine):
    """Without diacritics the dense signal is scaled down (Weights.plain_dense); another language is not."""
    assert engine.candidates("hai phong hop tac voi bao nhieu dia phuong").plain
    assert not engine.candidates(QUESTION_19).plain
    assert not engine.candidates("How many localities has the city cooperated with?").plain


def test_hybrid_fuses_both_retrievers(engine):
    """The candidate pool holds the dense and the lexical top passages, each measured both ways."""
    c = engine.candidates(QUESTION_19)
    assert len(c.passage_ids) == len(c.passage_dense) == len(c.passage_lexical)
    assert c.passage_lexical.max() > 0 and np.all(c.passage_dense > 0)
    assert len(c.sentence_ids) == len(c.sentence_dense) == len(c.sentence_lexical) == len(c.sentence_passage)


@pytest.mark.parametrize("question,kind", [
    (QUESTION_19, "number"),
    (ACCENTLESS_19, "number"),
    ("hai phong ket nghia voi kitakyushu khi nao", "time"),
    ("bao cao nam 2020 noi gi ve dau tu", None),  # "báo cáo", a report, not "bao cao" (how high)
    ("ai la giam doc so ngoai vu", None),  # folded "ai" is also "ái": one-syllable question words need their marks
    ("Hải Phòng kết nghĩa với Kitakyushu khi nào?", "time"),
    ("Ai là Giám đốc Sở Ngoại vụ Hải Phòng?", "person"),
    ("Lễ hội Hoa Phượng đỏ được tổ chức ở đâu?", "place"),
    ("Công tác đối ngoại có vai trò gì?", None),
])
def test_answer_kind(question, kind):
    assert Expected.of(question).kind == kind


def offered(sentence: str) -> dict[str, list[str]]:
    """What the index stores of a sentence for answer cues, decoded as a search reads it."""
    return json.loads(offers(normalize(sentence)))


def test_evidence_wants_something_new_of_the_kind():
    how_many = Expected.of(QUESTION_19)
    assert how_many.unit == "dia"
    assert how_many.evidence(offered("Thành phố đã hợp tác với 19 địa phương thuộc 13 quốc gia.")) == 2, "number + asked unit"
    assert how_many.evidence(offered("Thành phố có 13 quốc gia bạn.")) == 1, "a number, not of the asked unit"
    assert how_many.evidence(offered("Hải Phòng đã thiết lập quan hệ hữu nghị.")) == 0
    who = Expected.of("Ai là thủ quân lớn tuổi nhất chơi trong trận Super Bowl?")
    assert who.evidence(offered("Năm đó, Peyton Manning là thủ quân lớn tuổi nhất.")) == 1
    assert who.evidence(offered("Anh ấy là thủ quân lớn tuổi nhất chơi trong trận Super Bowl.")) == 0, "names only what was asked"
    assert Expected.of("Công tác đối ngoại có vai trò gì?").evidence(offered("Năm 2015 có 19 địa phương.")) == 0


def test_offers_keep_the_words_after_every_number():
    offer = offered("Vốn FDI đạt 7,63 tỷ USD, với 1.500.000 lao động và 19 địa phương.")
    assert {"ty", "usd", "lao", "dong", "dia", "phuong"} <= set(offer["units"])
    assert {"7,63", "1.500.000", "19"} <= set(offer["number"])
    assert "usd" in offer["name"], "capitalized words are names"


def test_coverage_counts_the_questions_content_words_here_or_just_before():
    who = Expected.of("Ai là thủ quân lớn tuổi nhất chơi trong trận Super Bowl?")
    assert "ai" not in who.terms and "la" not in who.terms, "question and function words do not count"
    restated = folded_terms("Anh ấy là thủ quân lớn tuổi nhất chơi trong trận Super Bowl.")
    assert who.coverage(restated) == 1.0
    named = folded_terms("Kỷ lục trước đó do John Elway nắm giữ.")
    assert who.coverage(named) == 0.0
    assert who.coverage(named, before=restated) == 1.0, "the sentence before says what this one is about"
    assert Expected.of("ai la thu quan lon tuoi nhat").coverage(restated) == 1.0, "typed without accents"
    assert Expected.of("Ai là ai?").coverage(restated) == 0.0, "nothing to cover"
