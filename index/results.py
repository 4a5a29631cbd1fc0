"""The one response object of a search: `hoidap ask --json`, the JSON API and the web page all render it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AnswerSpan(BaseModel):
    """The words of an answer sentence that answer the question ("19 địa phương"), as the reader read them."""

    start: int = Field(description="offset in the whole document's text")
    end: int
    text: str


class Answer(BaseModel):
    """One answer sentence; ``start``/``end`` are character offsets into the whole document's text."""

    text: str
    score: float = Field(description="for ranking among this response's answers only")
    confidence: float = Field(description="estimated probability (0 to 1, calibrated) that this sentence answers "
                                          "the question")
    document_id: str
    title: str
    source: str
    passage_id: int
    sentence_id: int
    start: int
    end: int
    page: int | None = Field(None, description="1-based page of a PDF, where the format has pages")
    section: str | None = Field(None, description="the heading the sentence stands under, where there is one")
    span: AnswerSpan | None = Field(None, description="the exact answer phrase inside the sentence, when the reader "
                                                      "is confident of one")


class Highlight(BaseModel):
    """A sentence to mark inside a result's passage; offsets are into the passage ``text``."""

    start: int
    end: int
    score: float
    confidence: float = Field(description="the answer's confidence; only answers reaching min_confidence are marked")
    best: bool = Field(False, description="true for the best answer sentence of the whole response, when answered")


class Result(BaseModel):
    """One retrieved passage with its answer sentences marked."""

    document_id: str
    title: str
    source: str
    passage_id: int
    score: float
    text: str
    start: int = Field(description="offset of the passage in the document's text")
    end: int
    page: int | None = None
    section: str | None = None
    highlights: list[Highlight]


class SearchResponse(BaseModel):
    query: str
    interpreted_query: str | None = Field(
        default=None, description="the question with the diacritics it was typed without, as it was searched "
                                  "(\"hai phong\" -> \"hải phòng\"); null when it was searched as typed")
    answered: bool = Field(description="true when the best answer's confidence reaches min_confidence: the documents "
                                       "answer the question; false: they do not (answers and results are then only "
                                       "the closest text, not an answer)")
    min_confidence: float = Field(description="the confidence an answer needed (HOIDAP_MIN_CONFIDENCE or the request's)")
    answers: list[Answer] = Field(description="answer sentences ranked across all results, best first")
    results: list[Result] = Field(description="passages, best first")
    took_ms: float
