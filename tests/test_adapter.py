"""The question-side adapter (index.adapter): real committed weights, the real default model, a real index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from hoidap.index.adapter import WEIGHTS, QuestionAdapter
from hoidap.index.embeddings import Embedder
from hoidap.index.search import Engine
from tests.conftest import QUESTION_19
from tests.test_reader import QUESTION_PARTNERS, WITH_NUMBER, WITHOUT_NUMBER

ROOT = Path(__file__).resolve().parent.parent
TRAIN_DATA = ROOT.parent / "shared" / "train"

# (question, the sentence that answers it, a near-duplicate that does not)
PAIRS = [
    (QUESTION_PARTNERS, WITH_NUMBER, WITHOUT_NUMBER),
    ("Kim ngạch xuất khẩu năm 2015 đạt bao nhiêu?", "Kim ngạch xuất khẩu năm 2015 đạt 7,63 tỷ USD.",
     "Kim ngạch xuất khẩu năm 2015 tăng mạnh so với năm trước."),
    ("Ai là người sáng lập công ty?", "Công ty được ông Nguyễn Văn An sáng lập.",
     "Công ty có nhiều người sáng lập và cổ đông."),
    ("Thành phố được thành lập vào năm nào?", "Thành phố được thành lập vào năm 1888.",
     "Thành phố được thành lập từ lâu đời."),
]


def test_weights_are_committed_small_and_recorded() -> None:
    record = json.loads(WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
    assert WEIGHTS.stat().st_size < 1_000_000 and load_file(str(WEIGHTS))["W"].shape == (384, 384)
    assert record["seed"] == 0 and "train/question_adapter.py" in record["command"]
    mlqa = record["figures"]["mlqa_vi"]
    assert mlqa["after"]["article"] > mlqa["before"]["article"]  # it was kept because Vietnamese gained


def test_adapted_questions_prefer_the_sentence_holding_the_answer() -> None:
    """Against a near-duplicate without the answer, the adapted question's margin is wider than the model's
    own, and on the right side each time (the model alone puts "Ai ...?" on the wrong one)."""
    embedder = Embedder()
    assert embedder.adapter is not None
    for question, answer, duplicate in PAIRS:
        q = embedder.encode([question], "query")
        s = embedder.encode([answer, duplicate], "passage")
        own, adapted = s @ q[0], s @ embedder.adapter(q)[0]
        assert adapted[0] > adapted[1], question
        assert adapted[0] - adapted[1] > own[0] - own[1], question


def test_adapted_vectors_are_unit_length() -> None:
    adapter = QuestionAdapter.load()
    vectors = np.random.default_rng(0).normal(size=(3, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert np.allclose(np.linalg.norm(adapter(vectors), axis=1), 1.0, atol=1e-5)


def test_search_ranks_with_the_adapter_and_keeps_the_models_cosine_for_confidence(engine: Engine) -> None:
    c = engine.candidates(QUESTION_19)
    q = engine.embedder.encode([QUESTION_19], "query")
    vectors = engine.store.sentence_vectors_of(c.sentence_ids)
    assert np.allclose(c.sentence_dense, vectors @ q[0], atol=1e-5)
    assert np.allclose(c.sentence_match, vectors @ engine.embedder.adapter(q)[0], atol=1e-5)
    assert not np.allclose(c.sentence_match, c.sentence_dense)


def test_another_model_gets_no_adapter() -> None:
    assert Embedder("intfloat/multilingual-e5-base").adapter is None  # decided by name: nothing is loaded


@pytest.mark.skipif(not (TRAIN_DATA / "mlqa-vi.dev.json").exists(), reason="no training data in ../shared/train")
def test_training_script_smoke(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "train" / "question_adapter.py"), "--smoke", "--out", str(tmp_path)],
                   check=True, cwd=ROOT, timeout=300, capture_output=True)
    record = json.loads((tmp_path / "question_adapter.json").read_text(encoding="utf-8"))
    assert record["steps"] == 3 and record["figures"]["mlqa_vi"]["after"]["questions"] > 0
    assert load_file(str(tmp_path / "question_adapter.safetensors"))["W"].any()  # it learned something
