"""The ONNX backends: the same vectors as torch, the same prompts, exported once, and right answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hoidap.index.build import build_index, load_files
from hoidap.index.convert_e5 import ensure_default_model
from hoidap.index.embeddings import DEFAULT_BACKEND, Embedder, OnnxEncoder, span_weights
from hoidap.index.errors import ModelLoadError
from hoidap.index.onnx_export import FILES, ONNX_DIR, write_atomically
from hoidap.index.search import Engine
from hoidap.index.store import Store
from tests.conftest import CORPUS, QUESTION_19, XQUAD

SENTENCES = [
    "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với 19 địa phương thuộc 13 quốc gia.",
    "Thu hút FDI giai đoạn 2010 - 2015 ước đạt 7,63 tỷ USD.",
    "Việt Nam là một quốc gia nằm ở phía đông bán đảo Đông Dương.",
    "Hòa bình, độc lập, tự do, hạnh phúc.",
    "Sản lượng hàng hóa qua cảng ước đạt 153,3 triệu tấn, gấp 2,24 lần năm 2015.",
    "Nguồn vốn ODA đã góp phần chuyển đổi mạnh mẽ kết cấu hạ tầng kỹ thuật của thành phố.",
    "Vịnh Hạ Long được UNESCO công nhận là di sản thiên nhiên thế giới.",
    "Thành phố có bao nhiêu dự án đầu tư trực tiếp nước ngoài?",
    "Ai là Giám đốc Sở Ngoại vụ Hải Phòng?",
    "Phở là món ăn truyền thống nổi tiếng của người Việt.",
]
# Lowest cosine to torch over SENTENCES, both kinds, measured here minus a margin:
# onnx 1.0000 (fp32, only rounding differs), onnx-int8 0.995.
MIN_COSINE = {"onnx": 0.999, "onnx-int8": 0.985}


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(backend="torch")


@pytest.fixture(scope="module", params=["onnx", "onnx-int8"])
def onnx_embedder(request: pytest.FixtureRequest) -> Embedder:
    return Embedder(backend=request.param)


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_vectors_agree_with_torch(onnx_embedder, torch_embedder, kind):
    ours = onnx_embedder.encode(SENTENCES, kind)
    assert ours.dtype == np.float32 and ours.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * torch_embedder.encode(SENTENCES, kind)).sum(axis=1)
    assert cosines.min() > MIN_COSINE[onnx_embedder.backend], cosines


def test_prompts_are_applied(onnx_embedder, torch_embedder):
    assert isinstance(onnx_embedder.model, OnnxEncoder)
    assert onnx_embedder.prompts == torch_embedder.prompts == {"query": "query: ", "passage": "passage: "}
    text = SENTENCES[7]
    query = onnx_embedder.encode([text], "query")[0]
    np.testing.assert_allclose(query, onnx_embedder.model.encode(["query: " + text])[0], atol=1e-6)
    assert float(query @ onnx_embedder.encode([text], "passage")[0]) < 0.99, "the prefix changes the vector"
    for t in SENTENCES[:3]:
        assert onnx_embedder.token_count(t, "query") == torch_embedder.token_count(t, "query")
    assert (onnx_embedder.dimension, onnx_embedder.max_tokens) == (384, 512)


def test_long_text_is_cut_like_torch(onnx_embedder, torch_embedder):
    """Over 512 tokens the model sees the first 510 and the closing special token, as with transformers."""
    long = " ".join(SENTENCES * 20)
    assert onnx_embedder.token_count(long) > 1000
    cosine = float(onnx_embedder.encode([long])[0] @ torch_embedder.encode([long])[0])
    assert cosine > MIN_COSINE[onnx_embedder.backend]


def _passages_of(sentences: list[str], size: int) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """Passages of ``size`` consecutive sentences joined by a space, with each sentence's span in its passage."""
    texts, spans = [], []
    for i in range(0, len(sentences), size):
        text, at = "", []
        for sentence in sentences[i:i + size]:
            text += " " if text else ""
            at.append((len(text), len(text) + len(sentence)))
            text += sentence
        texts.append(text)
        spans.append(at)
    return texts, spans


def test_pooled_span_vectors(onnx_embedder, torch_embedder):
    """Late chunking: the passages' vectors are encode's, and each sentence's vector is pooled from the
    passage's pass: close to the sentence encoded alone, and the same on every backend."""
    texts, spans = _passages_of(SENTENCES, 3)
    vectors, pooled = onnx_embedder.encode_spans(texts, spans)
    assert pooled.shape == (len(SENTENCES), 384) and pooled.dtype == np.float32
    np.testing.assert_allclose(vectors, onnx_embedder.encode(texts), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    alone = (pooled * onnx_embedder.encode(SENTENCES)).sum(axis=1)
    assert alone.min() > 0.85, alone  # measured 0.90-0.997: the passage around them pulls them a little
    cosines = pooled @ onnx_embedder.encode(SENTENCES).T
    passage = np.arange(len(SENTENCES)) // 3
    elsewhere = np.where(passage[:, None] != passage[None, :], cosines, -1).max(axis=1)
    assert (np.diag(cosines) > elsewhere).all(), "nearer its own sentence than any of another passage"
    torch_vectors, torch_pooled = torch_embedder.encode_spans(texts, spans)
    assert (pooled * torch_pooled).sum(axis=1).min() > MIN_COSINE[onnx_embedder.backend]
    np.testing.assert_allclose(torch_vectors, torch_embedder.encode(texts), atol=1e-5)


def test_span_weights_take_a_token_by_its_last_character(onnx_embedder):
    text = "passage: Hải Phòng. Nó có 19 địa phương."
    tokenizer = onnx_embedder.model.tokens
    ids, offsets = tokenizer.ids_and_offsets([text])[0]
    names = ["<s>", *(tokenizer.full.id_to_token(i) for i in ids), "</s>"]
    first, second = (9, 19), (20, len(text))
    weights = span_weights([(0, 0), *offsets, (0, 0)], [first, second, (5, 5)])
    tokens = [[t for t, w in zip(names, row) if w > 0] for row in weights]
    assert tokens[0] == ["▁Hải", "▁Phòng", "."]
    assert tokens[1][0] == "▁Nó" and tokens[1][-1] == "." and "</s>" not in tokens[1]  # "▁Nó" covers " Nó"
    assert len(tokens[2]) == len(names), "a span without tokens gets the whole text's mean"
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)


def test_export_is_cached(onnx_embedder):
    onnx_embedder.model  # exported on first use, if no earlier run did
    folder = ensure_default_model() / ONNX_DIR
    path = folder / FILES[onnx_embedder.backend]
    stamp = path.stat().st_mtime_ns
    again = Embedder(backend=onnx_embedder.backend)
    assert isinstance(again.model, OnnxEncoder)
    assert path.stat().st_mtime_ns == stamp, "a second construction reuses the file"
    assert not list(folder.glob(".*")), "no temporary file is left behind"


def test_interrupted_export_leaves_nothing(tmp_path):
    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half a model")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "model.onnx", fail)
    assert list(tmp_path.iterdir()) == []


def test_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setenv("HOIDAP_BACKEND", "tensorrt")
    with pytest.raises(ModelLoadError, match="unknown backend"):
        Embedder()
    monkeypatch.setenv("HOIDAP_BACKEND", "onnx")
    assert Embedder().backend == "onnx"


def test_a_model_named_for_the_hub_runs_on_torch_unless_told(monkeypatch):
    """ONNX files are exported from a local folder; a hub name still works with no backend chosen."""
    monkeypatch.delenv("HOIDAP_BACKEND", raising=False)
    assert Embedder().backend == DEFAULT_BACKEND
    assert Embedder("intfloat/multilingual-e5-base").backend == "torch"
    assert Embedder("intfloat/multilingual-e5-base", backend="onnx").backend == "onnx"
    assert Embedder(str(ensure_default_model())).backend == DEFAULT_BACKEND, "a local folder is exported"


def test_int8_search_answers_the_acceptance_question(tmp_path):
    embedder = Embedder(backend="onnx-int8")
    build_index(load_files([CORPUS], []), tmp_path, embedder)
    assert "19 địa phương" in Engine(Store.open(tmp_path), embedder).search(QUESTION_19).answers[0].text


def test_sentencepiece_gives_the_ids_and_offsets_of_tokenizers(onnx_embedder):
    """The quick-loading SentencePiece path (index/tokens.py) against the tokenizers library, on the
    corpus, XQuAD-vi's paragraphs and questions (when shared/ is beside the project), and text its
    normalizer changes."""
    tokenizer = onnx_embedder.model.tokens
    assert tokenizer.sentencepiece is not None, "the default model's pieces load through SentencePiece"
    texts = [line for f in sorted(CORPUS.glob("*.txt")) for line in f.read_text(encoding="utf-8").split("\n")]
    for article in json.loads(XQUAD.read_text(encoding="utf-8"))["data"] if XQUAD.exists() else []:
        for paragraph in article["paragraphs"]:
            texts += [paragraph["context"], *(q["question"] for q in paragraph["qas"])]
    texts += [" Đạo luật", "\ufeffChiến tranh", "Ｆｕｌｌ ｗｉｄｔｈ ① ﬁ…", "e\u0301 NFD", "<mask> <s> x", "a  b ", "tab\tnew\nline"]
    texts += ["query: " + t for t in texts[:200]]
    expected = [(e.ids, [tuple(o) for o in e.offsets]) for e in tokenizer.full.encode_batch(texts, add_special_tokens=False)]
    assert tokenizer.ids(texts) == [ids for ids, _ in expected]
    assert [(ids, list(offsets)) for ids, offsets in tokenizer.ids_and_offsets(texts)] == expected
