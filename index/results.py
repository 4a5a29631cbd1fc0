"""The one response object of a search: `hoidap ask --json`, the JSON API and the web page all render it."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import BaseModel, Field


def document_url(document_id: str, marked: list[int], at: int | None) -> str:
    """The page link that opens a document with the sentences ``marked`` highlighted, scrolled to sentence ``at``
    (the one route and query form the web page serves: ``/documents/{id}?s=N#s-N``)."""
    query = "&".join(f"s={i}" for i in marked)
    return f"/documents/{quote(document_id, safe='')}" + (f"?{query}" if query else "") + \
        (f"#s-{at}" if at is not None else "")


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
    url: str = Field(description="the web page of the document, this sentence marked and scrolled to (relative to "
                                 "the server)", examples=["/documents/3f2a9c?s=17#s-17"])


class Highlight(BaseModel):
    """A sentence to mark inside a result's passage; offsets are into the passage ``text``."""

    start: int
    end: int
    sentence_id: int = Field(description="the answer's sentence (as in `answers`)")
    score: float = Field(description="the answer's score (as in `answers`)")
    confidence: float = Field(description="the answer's confidence; only answers reaching min_confidence are marked")
    best: bool = Field(False, description="true for the best answer sentence of the whole response, when answered")


class Result(BaseModel):
    """One retrieved passage with its answer sentences marked."""

    document_id: str
    title: str
    source: str
    passage_id: int
    score: float = Field(description="for ranking among this response's results only (not comparable across "
                                     "questions)")
    text: str
    start: int = Field(description="offset of the passage in the document's text")
    end: int
    page: int | None = None
    section: str | None = None
    highlights: list[Highlight]
    url: str = Field(description="the web page of the document at this passage, its marked sentences highlighted "
                                 "(relative to the server)")


_SENTENCE = "Về quan hệ song phương, đến nay, thành phố đã thiết lập quan hệ hữu nghị, hợp tác với 19 địa phương thuộc " \
    "13 quốc gia trên thế giới."
EXAMPLE = {  # shown by the OpenAPI page: a real answer over corpus/, shortened
    "query": "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với bao nhiêu địa phương?",
    "interpreted_query": None, "answered": True, "min_confidence": 0.27,
    "answers": [{"text": _SENTENCE, "score": 3.31, "confidence": 0.98, "document_id": "fedf65871ac4",
                 "title": "hai-phong-doi-ngoai-2016", "source": "corpus/hai-phong-doi-ngoai-2016.txt",
                 "passage_id": 3, "sentence_id": 6, "start": 1520, "end": 1628, "page": None,
                 "section": "Triển khai đồng bộ các hoạt động",
                 "span": {"start": 1593, "end": 1606, "text": "19 địa phương"},
                 "url": "/documents/fedf65871ac4?s=6#s-6"}],
    "results": [{"document_id": "fedf65871ac4", "title": "hai-phong-doi-ngoai-2016",
                 "source": "corpus/hai-phong-doi-ngoai-2016.txt", "passage_id": 3, "score": 2.87,
                 "text": _SENTENCE + " Đặc biệt, năm 2014, thành phố đã nâng cấp quan hệ với Kitakyushu (Nhật Bản)…",
                 "start": 1520, "end": 2301, "page": None, "section": "Triển khai đồng bộ các hoạt động",
                 "highlights": [{"start": 0, "end": 108, "sentence_id": 6, "score": 3.31, "confidence": 0.98,
                                 "best": True}],
                 "url": "/documents/fedf65871ac4?s=6#s-6"}],
    "offset": 0, "total": 27, "took_ms": 21.4,
}


class SearchResponse(BaseModel):
    """What a search answers: the CLI's --json, the API and the web page all render this one object."""

    model_config = {"json_schema_extra": {"examples": [EXAMPLE]}}

    query: str
    interpreted_query: str | None = Field(
        default=None, description="the question with the diacritics it was typed without, as it was searched "
                                  "(\"hai phong\" -> \"hải phòng\"); null when it was searched as typed")
    answered: bool = Field(description="true when the best answer's confidence reaches min_confidence: the documents "
                                       "answer the question; false: they do not (answers and results are then only "
                                       "the closest text, not an answer)")
    min_confidence: float = Field(description="the confidence an answer needed (HOIDAP_MIN_CONFIDENCE or the request's)")
    answers: list[Answer] = Field(description="answer sentences ranked across all results, best first")
    results: list[Result] = Field(description="passages, best first: `top_k` of them from `offset`")
    offset: int = Field(0, description="the rank of the first result, from 0 (paging: the next page starts at "
                                       "offset + top_k)")
    total: int = Field(0, description="how many passages were ranked for this question (the last page ends there)")
    took_ms: float
