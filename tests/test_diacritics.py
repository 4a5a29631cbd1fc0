"""A question typed without diacritics is read with them put back, from the collection's own words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from hoidap.index import diacritics
from hoidap.index.lexical import LexicalIndex
from hoidap.index.text import normalize
from hoidap.service.app import create_app

from .conftest import QUESTION_19
from .test_pages import Page

ROOT = Path(__file__).resolve().parent.parent
TRAIN_DATA = ROOT.parent / "shared" / "train"
PLAIN_19 = "hai phong hop tac voi bao nhieu dia phuong"
READ_19 = "Hải phòng hợp tác với bao nhiêu địa phương"  # its first letter a capital, as a question's is


def collection(*texts: str) -> LexicalIndex:
    return LexicalIndex.build([normalize(t) for t in texts])[0]


def test_marks_come_from_the_collection_and_the_question_words():
    terms = collection("Hải Phòng hợp tác với Kitakyushu.", "Thành phố Hải Phòng có cảng biển lớn.",
                       "Hai bên ký kết hợp tác.")
    typed = "Hai Phong hop tac voi bao nhieu dia phuong?"
    restored = diacritics.restore(typed, terms, prior=diacritics.NO_PRIOR)
    # "bao nhiêu" comes from the built-in question words; the typed case and punctuation are kept
    assert restored.text == "Hải Phòng hợp tác với bao nhiêu dia phuong?"
    assert restored.changed == 6
    # general Vietnamese (the committed counts) knows the word this collection does not write
    assert diacritics.restore(typed, terms).text == "Hải Phòng hợp tác với bao nhiêu địa phương?"


def test_context_chooses_between_marked_forms():
    """"hai" is "hai" (two) or "hải" (as in Hải Phòng): the next syllable decides."""
    terms = collection("Hai bên ký kết.", "Hai người bạn.", "Hai năm sau.", "Thành phố Hải Phòng.")
    assert diacritics.restore("hai phong", terms).text == "Hải phòng"  # a question begins with a capital
    assert diacritics.restore("hai ben", terms).text == "Hai bên"


def test_general_vietnamese_knows_how_questions_end():
    """The collection writes "ở đầu" (at the head of) often and "ở đâu" (where) never; a question ends with
    "ở đâu" (the committed counts of questions), while "ở đầu thành phố" keeps its meaning."""
    texts = ["Ở đầu làng có cây đa.", "Đầu năm nay, cảng mở ở đầu phía bắc.", "Cảng biển ở đầu thành phố."]
    terms = collection(*texts, *(f"Văn bản số {i}." for i in range(50)))
    assert diacritics.restore("cang bien o dau", terms, prior=diacritics.NO_PRIOR).text == "Cảng biển ở đầu"
    assert diacritics.restore("cang bien o dau", terms).text == "Cảng biển ở đâu"
    assert diacritics.restore("cang bien o dau thanh pho", terms).text == "Cảng biển ở đầu thành phố"


def test_general_vietnamese_is_saved_and_read_back_as_counted(tmp_path: Path):
    prior = diacritics.Prior.of(["Cảng Hải Phòng ở đầu thành phố."], ["Cảng ở đâu?"], ["thành phố", "cảng biển"])
    prior.save(tmp_path / "prior.json.gz")
    first = (tmp_path / "prior.json.gz").read_bytes()
    prior.save(tmp_path / "prior.json.gz")
    assert (tmp_path / "prior.json.gz").read_bytes() == first, "the same counts give the same bytes"
    read = diacritics.Prior.load(tmp_path / "prior.json.gz")
    assert read == prior
    assert read.counts["thành_phố"] == 1 + diacritics.WORD_WEIGHT and read.asked["đâu"] == (1, 0, 1)
    assert read.edges("đâu")[1] > 0 > read.edges("cảng")[1]  # "đâu" ends a question more often than most


@pytest.mark.skipif(not (TRAIN_DATA / "mlqa-vi.dev.json").exists(), reason="no training data in ../shared/train")
def test_the_committed_counts_are_reproduced(tmp_path: Path):
    """The committed record's command (pyvi's word list fetched from PyPI) gives the committed bytes."""
    record = json.loads((ROOT / "index" / "models" / "syllable_prior.json").read_text(encoding="utf-8"))
    subprocess.run([sys.executable, str(ROOT / "train" / "syllable_prior.py"), "--seed", str(record["seed"]),
                    "--out", str(tmp_path)], check=True, cwd=ROOT, timeout=300, capture_output=True)
    assert (tmp_path / "syllable_prior.json.gz").read_bytes() == diacritics.PRIOR_PATH.read_bytes()
    again = json.loads((tmp_path / "syllable_prior.json").read_text(encoding="utf-8"))
    assert again["figures"] == record["figures"]
    assert again["figures"]["with_prior"]["syllables"] > again["figures"]["without_prior"]["syllables"]


def test_the_nearest_passage_decides_what_the_collection_leaves_open():
    """"doi thu" is "đối thủ" (rivals) in most of the collection, "đội thủ" (the defence) in the passage the
    question is about; that passage also writes the team's name with capitals, which the question typed in
    lower case gets back."""
    panthers = "Đội thủ của Carolina Panthers chỉ thua 308 điểm; Panthers đứng thứ sáu ở Hà Nội."
    texts = [f"Văn bản số {i}." for i in range(200)] + ["Đối thủ mạnh.", "Hai đối thủ.", "Đối thủ cũ."] + [panthers]
    terms = collection(*texts)
    plain = "doi thu panthers thua bao nhieu diem"
    alone = diacritics.restore(plain, terms, prior=diacritics.NO_PRIOR)  # the collection alone
    assert alone.text == "Đối thủ panthers thua bao nhiêu điểm"
    nearby = diacritics.Nearby.of([normalize(panthers)])
    assert diacritics.restore(plain, terms, nearby).text == "Đội thủ Panthers thua bao nhiêu điểm"
    assert nearby.written_as(["ở", "hà", "nội"], 1, alone=False) == "Hà"
    assert nearby.written_as(["thua", "308"], 0, alone=True) is None
    assert "đội" not in nearby.written  # the first word of a sentence is capitalized whatever it is


def test_names_and_acronyms_are_written_as_the_nearest_passage_writes_them():
    """Capitals come back as the passage writes them where no sentence begins: the whole of an acronym, and
    the part of a name a pair shows ("Vương quốc Anh": "anh" alone is also "brother")."""
    passage = normalize("Báo cáo của IPCC năm 2007 nói về Vương quốc Anh. IPCC đã xin lỗi. Anh trai tôi ở đó.")
    texts = [f"Văn bản số {i}." for i in range(50)] + ["Anh ấy là anh trai.", passage]
    terms, nearby = collection(*texts), diacritics.Nearby.of([passage])
    read = diacritics.restore("ipcc da xin loi vuong quoc anh", terms, nearby, prior=diacritics.NO_PRIOR)
    assert read.text == "IPCC đã xin lỗi Vương quốc Anh"
    assert "anh_trai" not in nearby.written, "written so only where a sentence begins"
    # "anh" has other marked forms ("ảnh", "ánh") in general Vietnamese: alone, it is not taken for the name
    assert diacritics.restore("toi va anh trai", terms, nearby).text == "Tôi và anh trai"


def test_engine_reads_with_the_passage_the_typed_question_matches(engine):
    nearby = engine._nearby(PLAIN_19)
    assert "địa_phương" in nearby.terms and nearby.written  # a passage of corpus/, with its names
    assert engine._nearby("zzzz qqqq") is diacritics.NOWHERE  # nothing matches: the collection alone decides


def test_questions_typed_with_marks_are_not_restored():
    assert diacritics.wants_restoring(PLAIN_19)
    assert diacritics.wants_restoring("hai phong hợp tac voi bao nhieu dia phuong")  # one mark of nine
    assert not diacritics.wants_restoring(QUESTION_19)
    assert not diacritics.wants_restoring("Vốn FDI năm 2015 là bao nhiêu?")
    assert not diacritics.wants_restoring("2015")


def test_the_plain_question_is_searched_restored(engine):
    response = engine.search(PLAIN_19)
    assert response.interpreted_query == READ_19
    assert response.answered and response.answers[0].span.text == "19 địa phương"
    assert response.query == PLAIN_19, "the question as typed stays the query"


def test_restoring_is_trusted_more_than_the_folded_match(engine):
    """Searched restored, the best answer is the same and surer than when matched through folded terms."""
    restored, typed = engine.search(PLAIN_19), engine.search(PLAIN_19, restore=False)
    assert typed.interpreted_query is None
    assert restored.answers[0].sentence_id == typed.answers[0].sentence_id
    assert restored.answers[0].confidence > typed.answers[0].confidence


@pytest.mark.parametrize("question", [QUESTION_19, "What is the capital of France?", "FDI"])
def test_no_interpretation_for_marked_or_foreign_questions(engine, question):
    assert engine.search(question).interpreted_query is None


@pytest.fixture(scope="module")
def client(corpus_data_dir: Path):
    with TestClient(create_app(corpus_data_dir)) as client:
        yield client


def test_the_api_says_how_it_read_the_question(client: TestClient):
    body = client.get("/api/v1/search", params={"q": PLAIN_19}).json()
    assert body["interpreted_query"] == READ_19
    assert "19 địa phương" in body["answers"][0]["text"]
    exact = client.post("/api/v1/search", json={"query": PLAIN_19, "exact": True}).json()
    assert exact["interpreted_query"] is None
    assert client.get("/api/v1/search", params={"q": QUESTION_19}).json()["interpreted_query"] is None


def test_the_page_offers_both_readings(client: TestClient):
    page = Page(client.get("/search", params={"q": PLAIN_19, "source": "corpus/"}).text)
    links = {text: href for href, text in page.links}
    suggestion = parse_qs(urlsplit(links[READ_19]).query)
    assert suggestion == {"q": [READ_19], "source": ["corpus/"]}
    exact = parse_qs(urlsplit(links[PLAIN_19]).query)
    assert exact == {"q": [PLAIN_19], "exact": ["1"], "source": ["corpus/"]}

    as_typed = client.get("/search", params={"q": PLAIN_19, "exact": "1"}).text
    assert "Có phải bạn muốn hỏi" not in as_typed and "19 địa phương" in as_typed
    assert "Có phải bạn muốn hỏi" not in client.get("/search", params={"q": QUESTION_19}).text
