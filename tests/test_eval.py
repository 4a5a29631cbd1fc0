"""`hoidap eval`: the metric definitions on hand-made ranks, and the command on a small real slice."""

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from hoidap.index.evaluate import (abstention_summary, answer_rank, auroc, calibration_error, document_rank,
                                   load_squad, split_by_position, summarize)
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

    full = subprocess.run([HOIDAP, "eval", str(path), "--report", "/dev/full"], capture_output=True, text=True,
                          timeout=300)  # writing the report finds the disk full: one line, exit 1
    assert full.returncode == 1 and "the disk is full" in full.stderr and "Traceback" not in full.stderr

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
    metric_lines = [line for line in proc.stdout.splitlines()[1:] if re.fullmatch(r"\s*\w+: [\d.]+", line)]
    values = {k.strip(): float(v) for k, v in (line.split(":") for line in metric_lines)}
    assert set(values) >= {"r_at_1", "r_at_5", "mrr_at_10", "answer_at_1", "answer_at_3"}
    assert values["r_at_1"] > 0.8 and values["answer_at_1"] > 0.5


def test_eval_refuses_a_broken_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = subprocess.run([HOIDAP, "eval", str(bad)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "not a readable SQuAD-format JSON file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_auroc_and_calibration_on_hand_made_scores():
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0 and auroc([0.1], [0.9]) == 0.0
    assert auroc([0.9, 0.8, 0.5], [0.1, 0.5]) == pytest.approx(5.5 / 6), "a tie counts half"
    assert auroc([], [0.1]) is None
    assert calibration_error([0.9, 0.1], [True, False]) == pytest.approx(0.1)
    assert calibration_error([0.75, 0.75, 0.75, 0.75], [True, True, True, False]) == pytest.approx(0.0)
    assert calibration_error([1.0, 0.0], [False, True]) == pytest.approx(1.0), "the ends fall in a bin"


def test_abstention_shares_on_a_hand_made_set():
    def row(case, correct, confidence):
        return {"case": case, "correct": correct, "confidence": confidence}

    rows = [row("answerable", True, 0.9), row("answerable", True, 0.6), row("answerable", True, 0.2),
            row("answerable", False, 0.4), row("answerable", False, 0.1),
            row("same_topic", False, 0.1), row("same_topic", False, 0.3), row("same_topic", False, 0.7),
            row("off_topic", False, 0.05), row("off_topic", False, 0.01)]
    s = abstention_summary(rows, 0.5)
    assert (s["answerable"], s["correct"], s["same_topic"], s["off_topic"], s["other_topic"]) == (5, 3, 3, 2, 0)
    assert s["kept_correct"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["refused_same_topic"] == pytest.approx(2 / 3, abs=1e-4) and s["refused_off_topic"] == 1.0
    assert s["refused_wrong"] == 1.0 and s["refused_other_topic"] is None
    assert s["auroc_same_topic"] == pytest.approx(auroc([0.9, 0.6, 0.2], [0.1, 0.3, 0.7]), abs=1e-4)
    assert s["auroc_off_topic"] == 1.0
    assert s["ece"] == pytest.approx(calibration_error([r["confidence"] for r in rows],
                                                       [r["correct"] for r in rows]), abs=1e-4)


def test_split_by_position_alternates_paragraphs_within_each_article(tmp_path):
    data = {"data": [{"title": t, "paragraphs": [{"context": f"{t} đoạn {p}.", "qas": [
        {"id": f"{t}{p}", "question": "?", "answers": [{"text": "đoạn", "answer_start": 0}]}]} for p in range(n)]}
        for t, n in (("A", 3), ("B", 1))]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    even, odd = split_by_position(load_squad(path)[0])
    assert [d.id for d in even] == ["a0p0", "a0p2", "a1p0"] and [d.id for d in odd] == ["a0p1"]


@pytest.mark.skipif(not XQUAD.exists(), reason="shared/eval/xquad-vi is not beside the project")
def test_eval_unanswerable_on_a_slice(tmp_path):
    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    other = {"data": data["data"][5:6]}
    data["data"] = data["data"][:2]
    path, off = tmp_path / "slice.json", tmp_path / "other.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    off.write_text(json.dumps(other, ensure_ascii=False), encoding="utf-8")
    report = tmp_path / "rows.jsonl"
    proc = subprocess.run([HOIDAP, "eval", str(path), "--unanswerable", "--off-topic", str(off), "--json",
                           "--report", str(report)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    n = len(load_squad(path)[1])
    n_off = len(load_squad(off)[1])
    assert (facts["answerable"], facts["same_topic"], facts["off_topic"]) == (n, n, 2 * n_off)
    for key in ("auroc_same_topic", "auroc_off_topic", "kept_correct", "refused_same_topic", "refused_off_topic",
                "refused_wrong", "ece"):
        assert 0.0 <= facts[key] <= 1.0, key
    assert facts["auroc_same_topic"] > 0.8 and facts["refused_off_topic"] > 0.8
    rows = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 * (n + n_off) and {r["case"] for r in rows} == {"answerable", "same_topic", "off_topic"}
    proc = subprocess.run([HOIDAP, "eval", str(path), "--unanswerable", "--min-confidence", "0.5"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "threshold 0.50" in proc.stdout and "auroc_same_topic" in proc.stdout
