"""The JSON API as a chatbot builder uses it: one set of filter names, paging, links that open the answer."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from hoidap.index.results import SearchResponse
from hoidap.service.app import create_app

from .conftest import QUESTION_19, QUESTION_FDI
from .test_pages import Page


@pytest.fixture(scope="module")
def client(corpus_data_dir: Path):
    with TestClient(create_app(corpus_data_dir)) as client:
        yield client


def without_time(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "took_ms"}


def test_get_and_post_take_the_same_filters_and_give_the_same_response(client: TestClient):
    params = {"q": QUESTION_FDI, "top_k": 3, "offset": 1, "answers_k": 2, "source": "corpus/", "format": "txt",
              "since": "2000-01-01T00:00:00", "until": "2100-01-01T00:00:00"}
    by_get = client.get("/api/v1/search", params=params)
    body = {"query": QUESTION_FDI} | {k: v for k, v in params.items() if k != "q"}
    by_post = client.post("/api/v1/search", json=body)
    old_names = {"query": QUESTION_FDI, "top_k": 3, "offset": 1, "answers_k": 2, "source_prefix": "corpus/",
                 "formats": ["txt"], "modified_after": params["since"], "modified_before": params["until"]}
    by_old_names = client.post("/api/v1/search", json=old_names)  # accepted until version 2
    assert by_get.status_code == by_post.status_code == by_old_names.status_code == 200
    assert without_time(by_get.json()) == without_time(by_post.json()) == without_time(by_old_names.json())
    response = by_get.json()
    assert len(response["results"]) == 3 and len(response["answers"]) == 2 and response["offset"] == 1
    assert "7,63 tỷ USD" in response["answers"][0]["text"]


def test_unknown_fields_are_named_in_the_422(client: TestClient):
    r = client.post("/api/v1/search", json={"query": "FDI", "sauce": "corpus/"})
    assert r.status_code == 422 and "sauce" in r.json()["error"]["message"]


def test_answers_k_and_top_k_are_separate(client: TestClient):
    one_passage = client.get("/api/v1/search", params={"q": QUESTION_19, "top_k": 1, "answers_k": 5}).json()
    one_answer = client.get("/api/v1/search", params={"q": QUESTION_19, "top_k": 10, "answers_k": 1}).json()
    assert len(one_passage["results"]) == 1 and len(one_passage["answers"]) == 5
    assert len(one_answer["results"]) == 10 and len(one_answer["answers"]) == 1
    assert one_passage["answers"][0] == one_answer["answers"][0]  # the best answer does not depend on either


@pytest.mark.parametrize("page_size", [4, 10])
def test_pages_neither_repeat_nor_skip_passages(client: TestClient, page_size: int):
    first = client.get("/api/v1/search", params={"q": QUESTION_19, "top_k": page_size}).json()
    total = first["total"]
    assert total > 2 * page_size
    seen = []
    for offset in range(0, total + page_size, page_size):
        page = client.get("/api/v1/search", params={"q": QUESTION_19, "top_k": page_size, "offset": offset}).json()
        assert page["offset"] == offset and page["total"] == total
        assert len(page["results"]) == max(0, min(page_size, total - offset))
        seen += [r["passage_id"] for r in page["results"]]
    assert len(seen) == total == len(set(seen))
    assert seen[:page_size] == [r["passage_id"] for r in first["results"]]
    assert any(h["best"] for r in first["results"] for h in r["highlights"]), "the best answer's passage is on page 1"


def test_every_url_opens_its_sentence_marked(client: TestClient):
    response = client.get("/api/v1/search", params={"q": QUESTION_19, "top_k": 5}).json()
    for answer in response["answers"]:
        url = urlsplit(answer["url"])
        assert url.fragment == f"s-{answer['sentence_id']}"
        page = client.get(f"{url.path}?{url.query}")
        assert page.status_code == 200
        marks = {attrs.get("id"): text for attrs, text in Page(page.text).marks}
        assert marks == {url.fragment: answer["text"]}
    for result in response["results"]:
        ids = [h["sentence_id"] for h in result["highlights"]]
        assert set(ids) <= {a["sentence_id"] for a in response["answers"]}
        url = urlsplit(result["url"])
        page = client.get(f"{url.path}?{url.query}")
        assert f'id="{url.fragment}"' in page.text  # the link's target is on the page: the passage's sentence
        marked = {attrs.get("id") for attrs, _ in Page(page.text).marks}
        assert marked == {f"s-{i}" for i in ids}


def test_times_are_iso_8601(client: TestClient):
    listed = client.get("/api/v1/documents").json()["documents"][0]
    detail = client.get(f"/api/v1/documents/{listed['id']}").json()
    for doc in (listed, detail):
        assert datetime.fromisoformat(doc["modified"]).tzinfo is not None
        assert datetime.fromisoformat(doc["indexed_at"]).tzinfo is not None


def test_openapi_describes_the_response(client: TestClient):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    response = schemas["SearchResponse"]
    assert response.get("examples"), "Swagger shows a real example, not 'string'"
    SearchResponse.model_validate(response["examples"][0])  # and it is one the API could send
    for model, field in (("Answer", "score"), ("Result", "score"), ("Answer", "url"), ("Highlight", "sentence_id"),
                         ("SearchResponse", "total")):
        assert schemas[model]["properties"][field].get("description"), (model, field)


def test_metadata_on_upload_is_refused_not_dropped(tmp_path: Path, corpus_data_dir: Path):
    import shutil

    from hoidap.service.settings import Settings

    data_dir = tmp_path / "data"
    shutil.copytree(corpus_data_dir, data_dir, symlinks=True)
    key = "khoa-api-thu-nghiem"
    with TestClient(create_app(data_dir, settings=Settings(api_keys=(key,), reload_interval=0)),
                    headers={"Authorization": f"Bearer {key}"}) as c:
        r = c.post("/api/v1/documents", json={"title": "A", "text": "Một câu.", "metadata": {"phong": "ke-toan"}})
        assert r.status_code == 422 and "metadata" in r.json()["error"]["message"]
