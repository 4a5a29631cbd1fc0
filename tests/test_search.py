"""End to end on corpus/: questions in, the right highlighted sentence out."""

import unicodedata

import pytest

from hoidap.index.errors import QueryError
from tests.conftest import QUESTION_19, QUESTION_FDI


def test_answers_the_two_acceptance_questions(engine):
    assert "19 địa phương" in engine.search(QUESTION_19).answers[0].text
    assert "7,63 tỷ USD" in engine.search(QUESTION_FDI).answers[0].text


def test_answer_offsets_point_into_the_document(engine):
    response = engine.search(QUESTION_19)
    for answer in response.answers:
        doc = engine.store.document(answer.document_id)
        assert doc["text"][answer.start:answer.end] == answer.text
    for result in response.results:  # only answers sure enough to show are marked
        for h in result.highlights:
            assert result.text[h.start:h.end].strip() and h.confidence >= response.min_confidence
    best = [(r, h) for r in response.results for h in r.highlights if h.best]
    assert len(best) == 1, "exactly one sentence is set apart as the best answer"
    result, h = best[0]
    assert result.text[h.start:h.end] == response.answers[0].text


@pytest.mark.parametrize("variant", [
    unicodedata.normalize("NFD", QUESTION_19),
    QUESTION_19.replace("hòa", "hoà"),
    "  " + QUESTION_19.replace(" ", "\u00a0 ") + "\u200b",
])
def test_unicode_variants_find_the_same_answer(engine, variant):
    assert engine.search(variant).answers[0].sentence_id == engine.search(QUESTION_19).answers[0].sentence_id


def test_old_tone_marks_in_a_question_match(engine):
    """Both tone-mark conventions: "hoà" and "hòa" normalize alike, so the vectors are identical."""
    a = engine.search("Hoạt động ngoại giao văn hoá của Hải Phòng").answers[0]
    b = engine.search("Hoạt động ngoại giao văn hóa của Hải Phòng").answers[0]
    assert (a.sentence_id, round(a.score, 5)) == (b.sentence_id, round(b.score, 5))


def test_results_are_ranked_and_sized(engine):
    response = engine.search(QUESTION_FDI, top_k=3)
    assert len(response.results) == 3
    assert [r.score for r in response.results] == sorted((r.score for r in response.results), reverse=True)
    assert [a.score for a in response.answers] == sorted((a.score for a in response.answers), reverse=True)
    assert response.took_ms > 0


@pytest.mark.parametrize("query", ["", "   ", "\u200b\n", "x" * 1001])
def test_bad_questions_are_refused(engine, query):
    with pytest.raises(QueryError):
        engine.search(query)


@pytest.mark.parametrize("top_k", [0, -1, 51])
def test_bad_top_k_is_refused(engine, top_k):
    with pytest.raises(QueryError):
        engine.search(QUESTION_19, top_k=top_k)
