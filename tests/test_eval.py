"""`hoidap eval`: the metric definitions on hand-made ranks, and the command on a small real slice."""

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from hoidap.index.evaluate import answer_rank, document_rank, load_squad, summarize
from tests.conftest import XQUAD

HOIDAP = str(Path(sys.executable).parent / "hoidap")


def test_document_rank_counts_distinct_documents():
    assert document_rank(["a", "a", "b", "c"], "b") == 2
    assert document_rank(["a", "b"], "z") is None


def test_answer_rank_needs_gold_document_and_gold_text():
    answers = [("d1", "Có 19 địa phương."), ("d2", "Đà Nẵng có 19 địa phương."), ("d2", "Hà Nội")]
    assert answer_rank(answers, "d2", ("19 địa phương",)) == 2
    assert answer_rank(answers, "d1", ("19 địa phương",)) == 1
    assert answer_rank(answers, "d3", ("19 địa phương",)) is None
    assert answer_rank([("d1", unicodedata.normalize("NFD", "ở Hà Nội"))], "d1", ("Hà Nội",)) == 1, "NFC both sides"


def test_summary_matches_the_definitions():
    rows = [{"document_rank": 1, "answer_rank": 1}, {"document_rank": 2, "answer_rank": 3},
            {"document_rank": 6, "answer_rank": None}, {"document_rank": None, "answer_rank": None}]
    m = summarize(rows, 1.0)
    assert (m.r_at_1, m.r_at_5, m.answer_at_1, m.answer_at_3) == (0.25, 0.5, 0.25, 0.5)
    assert m.mrr_at_10 == pytest.approx((1 + 1 / 2 + 1 / 6) / 4, abs=1e-4)


def test_eval_on_a_hand_made_file(tmp_path):
    data = {"version": "1.1", "data": [{"title": "Việt Nam", "paragraphs": [
        {"context": "Hà Nội là thủ đô của Việt Nam. Thành phố có khoảng 8 triệu dân.",
         "qas": [{"id": "q1", "question": "Thủ đô của Việt Nam là thành phố nào?",
                  "answers": [{"text": "Hà Nội", "answer_start": 0}]}]},
        {"context": "Phở là món ăn truyền thống. Món phở có nước dùng từ xương bò.",
         "qas": [{"id": "q2", "question": "Nước dùng phở nấu từ gì?",
                  "answers": [{"text": "xương bò", "answer_start": 50}]}]},
        {"context": "Sông Mê Kông chảy qua sáu quốc gia. Sông dài khoảng 4.350 km.",
         "qas": [{"id": "q3", "question": "Sông Mê Kông dài bao nhiêu km?",
                  "answers": [{"text": "4.350 km", "answer_start": 52}]}]},
    ]}]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    report = tmp_path / "report.jsonl"
    proc = subprocess.run([HOIDAP, "eval", str(path), "--json", "--report", str(report), "--backend", "onnx"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert (metrics["questions"], metrics["model"], metrics["backend"]) == (3, "multilingual-e5-small", "onnx")
    assert metrics["r_at_1"] == metrics["answer_at_1"] == 1.0
    rows = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"] and all(r["answer_rank"] == 1 for r in rows)

    proc = subprocess.run([HOIDAP, "eval", str(path), "--json", "--report", str(report), "--without-diacritics"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert rows[2]["question"] == "song me kong dai bao nhieu km?", "asked as typed without marks"
    assert json.loads(proc.stdout)["answer_at_1"] == 1.0


@pytest.mark.skipif(not XQUAD.exists(), reason="shared/eval/xquad-vi is not beside the project")
def test_eval_command_on_a_slice_of_xquad(tmp_path):
    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    data["data"] = data["data"][:2]
    path = tmp_path / "slice.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.run([HOIDAP, "eval", str(path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    documents, questions = load_squad(path)
    assert f"{len(questions)} questions over {len(documents)} documents" in proc.stdout
    values = {k.strip(): float(v) for k, v in (line.split(":") for line in proc.stdout.splitlines()[1:])}
    assert set(values) == {"r_at_1", "r_at_5", "mrr_at_10", "answer_at_1", "answer_at_3"}
    assert values["r_at_1"] > 0.8 and values["answer_at_1"] > 0.5


def test_eval_refuses_a_broken_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = subprocess.run([HOIDAP, "eval", str(bad)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "not a readable SQuAD-format JSON file" in proc.stderr
    assert "Traceback" not in proc.stderr
