"""One embedder for questions, sentences and passages, whatever sentence-transformers model is chosen.

Three backends give nearly the same vectors at different speeds on CPU: ``torch`` runs the
sentence-transformers model as is; ``onnx`` (fp32, same vectors up to rounding) and ``onnx-int8``
(int8 weights, cosine about 0.995 to torch's) run its transformer exported to ONNX in ONNX Runtime,
with tokenization, mean pooling and normalization done here.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np

from . import adapter
from .convert_e5 import MODEL_NAME, ensure_default_model
from .errors import ModelLoadError
from .reader import WEIGHTS, Reader, reader_setting

DEFAULT_MODEL = MODEL_NAME
BACKENDS = ("torch", "onnx", "onnx-int8")
# int8 encodes a question about 4x faster than torch on 2 cores (5.5-6 ms against 22.5, bench/latency.py)
# and scores within 0.005 of its XQuAD-vi Answer@1 (0.8109 against 0.8151 with pooled sentence vectors,
# 0.8168 against 0.8176 with encoded ones; onnx fp32 gives torch's figures).
DEFAULT_BACKEND = "onnx-int8"
# Padded tokens in one ONNX batch. Measured on XQuAD-vi paragraphs and sentences (2 cores): 512 ran
# fastest, 2048 about 30 % slower, 8192 (32 x 256) slower still and 1.5 GB heavier.
MAX_BATCH_TOKENS = 512
_E5_PROMPTS = {"query": "query: ", "passage": "passage: "}

log = logging.getLogger(__name__)


def resolve_model_name(name: str | None = None) -> str:
    """``--model``, else ``$HOIDAP_MODEL``, else the offline default."""
    return name or os.environ.get("HOIDAP_MODEL") or DEFAULT_MODEL


def resolve_backend(backend: str | None = None, model: str = DEFAULT_MODEL) -> str:
    """``--backend``, else ``$HOIDAP_BACKEND``, else the default; an unknown name is refused up front.

    The ONNX files are exported from a local model folder, so when no backend was chosen a model given
    by hub name runs on torch, as sentence-transformers loads it, rather than failing.
    """
    chosen = backend or os.environ.get("HOIDAP_BACKEND")
    if chosen is None:
        local = model == DEFAULT_MODEL or (Path(model) / "modules.json").exists()
        return DEFAULT_BACKEND if local else "torch"
    if chosen not in BACKENDS:
        raise ModelLoadError(f"unknown backend {chosen!r}: choose one of {', '.join(BACKENDS)}")
    return chosen


def resolve_threads() -> int:
    """Threads one ONNX Runtime call may use: ``$HOIDAP_THREADS``, else 1.

    With int8 weights one thread encodes a question as fast as two (about 3 ms on this machine)
    and far faster when the other core is busy, which it leaves to a concurrent request. Batches
    use every core anyway, by running several single-threaded calls at once.
    """
    value = os.environ.get("HOIDAP_THREADS", "1")
    if not value.isdigit() or int(value) < 1:
        raise ModelLoadError(f"HOIDAP_THREADS must be a positive integer, not {value!r}")
    return int(value)


class OnnxEncoder:
    """A mean-pooled sentence-transformers folder whose transformer runs in ONNX Runtime.

    Mirrors the parts of ``SentenceTransformer`` that :class:`Embedder` reads (``prompts``,
    ``max_seq_length``, ``get_embedding_dimension``), so both backends answer the same questions.
    """

    def __init__(self, model_dir: Path, onnx_file: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        from .tokens import tokens_of

        def config(name: str) -> dict:
            path = model_dir / name
            return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

        pooling = config("1_Pooling/config.json")
        modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
        if modes != {"pooling_mode_mean_tokens"}:
            raise ModelLoadError(f"the ONNX backends support mean-pooled models only, not {sorted(modes)}")
        self.prompts: dict[str, str] = config("config_sentence_transformers.json").get("prompts") or {}
        self.max_seq_length = int(config("sentence_bert_config.json").get("max_seq_length") or 512)
        self._dimension = int(pooling["word_embedding_dimension"])
        # One tokenizer both counts and encodes: truncation is done here, so counts are never cut at the limit.
        self.tokens = tokens_of(model_dir)
        pad = config("tokenizer_config.json").get("pad_token") or "<pad>"
        self.pad_id = self.tokens.token_id(pad) or 0
        self.room = self.max_seq_length - self.tokens.special_count
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.workers = max(1, (os.cpu_count() or 1) // threads)

    def get_embedding_dimension(self) -> int:
        return self._dimension

    def token_count(self, text: str) -> int:
        return len(self.tokens.ids([text])[0]) + self.tokens.special_count

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """L2-normalized float32 vectors; batches of similar length, run concurrently on every core.
        Tokens are cut to ``max_seq_length`` before the special tokens, as transformers does."""
        return self._encode([self.tokens.wrap(ids[: self.room]) for ids in self.tokens.ids(texts)], None, batch_size)[0]

    def encode_spans(self, texts: list[str], spans: list[list[tuple[int, int]]],
                     batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of ``texts`` and of the character ``spans`` of each, from one pass per text
        (:func:`span_weights` says which tokens a span averages)."""
        rows, weights = [], []
        none = [(0, 0)]  # a special token covers no character
        for (ids, offsets), text_spans in zip(self.tokens.ids_and_offsets(texts), spans):
            rows.append(self.tokens.wrap(ids[: self.room]))
            offsets = none * len(self.tokens.prefix) + list(offsets[: self.room]) + none * len(self.tokens.suffix)
            weights.append(span_weights(offsets, text_spans))
        return self._encode(rows, weights, batch_size)

    def _encode(self, ids: list[list[int]], weights: list[np.ndarray] | None,
                batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the token ``ids``, and of the spans that ``weights`` pool in each (none if None).

        A batch holds at most ``batch_size`` texts and ``MAX_BATCH_TOKENS`` padded tokens (one text
        at least): attention takes memory in the square of the length, and small batches stay in cache.
        """
        batches: list[list[int]] = []
        for i in sorted(range(len(ids)), key=lambda i: -len(ids[i])):  # longest first: a batch's first sets its width
            if not batches or len(batches[-1]) == batch_size \
                    or len(ids[batches[-1][0]]) * (len(batches[-1]) + 1) > MAX_BATCH_TOKENS:
                batches.append([])
            batches[-1].append(i)

        def run(batch: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
            return self._run([ids[i] for i in batch], None if weights is None else [weights[i] for i in batch])

        if len(batches) <= 1:
            parts = [run(batch) for batch in batches]
        else:  # ONNX Runtime releases the GIL: one single-threaded call per core beats one wide call
            with ThreadPoolExecutor(min(self.workers, len(batches))) as pool:
                parts = list(pool.map(run, batches))
        vectors = np.zeros((len(ids), self._dimension), np.float32)
        spans_of: dict[int, np.ndarray] = {}
        for batch, (pooled, pooled_spans) in zip(batches, parts):
            vectors[batch] = pooled
            spans_of.update(zip(batch, pooled_spans))
        empty = np.zeros((0, self._dimension), np.float32)
        return vectors, np.concatenate([empty, *(spans_of[i] for i in sorted(spans_of))])

    def _run(self, rows: list[list[int]], weights: list[np.ndarray] | None) -> tuple[np.ndarray, list[np.ndarray]]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for n, row in enumerate(rows):
            ids[n, : len(row)] = row
            mask[n, : len(row)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        counted = mask[..., None].astype(np.float32)
        pooled = (hidden * counted).sum(axis=1) / np.maximum(counted.sum(axis=1), 1e-9)
        spans = [] if weights is None else [_unit(w @ h[: w.shape[1]]) for w, h in zip(weights, hidden)]
        return _unit(pooled), spans


def span_weights(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> np.ndarray:
    """Row ``k`` averages the tokens of span ``k``: those whose last character lies inside it.

    A word's token carries the space before it ("▁Phòng" covers " Phòng"), so its first character
    may lie before the span; special tokens cover no character and belong to no span. A span no
    token falls in (none does in practice) gets the mean of all tokens, the text's own vector.
    """
    at = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    inside = (at[:, 1] > at[:, 0]) & (at[:, 1] > bounds[:, :1]) & (at[:, 1] <= bounds[:, 1:])
    inside[~inside.any(axis=1)] = True
    return (inside / inside.sum(axis=1, keepdims=True)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class Embedder:
    """A sentence-transformers model with the prompts its family expects, loaded on first use.

    e5 models were trained with ``query: `` / ``passage: `` prefixes and score poorly without them;
    other models get no prefix unless their own config defines prompts named ``query``/``passage``.
    Loading is deferred so that work which needs no vectors (an index run with nothing changed)
    does not pay seconds for it. The backend changes speed, never which index a model may read:
    an index built with one backend is searched with any other.
    """

    def __init__(self, name: str | None = None, cache_dir: Path | None = None, backend: str | None = None,
                 reader: str | None = None) -> None:
        self.name = resolve_model_name(name)
        self.cache_dir = cache_dir
        self.backend = resolve_backend(backend, self.name)
        self.reader_setting = reader_setting(reader)

    @cached_property
    def reader(self) -> Reader | None:
        """The learned answer reader (:mod:`hoidap.index.reader`), trained from the default model's own
        weights: for that model, unless turned off (``reader="off"``, ``HOIDAP_READER=off``)."""
        if self.name != DEFAULT_MODEL or self.reader_setting == "off" or not WEIGHTS.exists():
            return None
        return Reader(ensure_default_model(self.cache_dir), threads=resolve_threads())

    @cached_property
    def adapter(self) -> adapter.QuestionAdapter | None:
        """The learned question-side adapter (:mod:`hoidap.index.adapter`) of the default model; None for others."""
        if self.name != DEFAULT_MODEL or not adapter.WEIGHTS.exists():
            return None
        return adapter.QuestionAdapter.load()

    @cached_property
    def model(self) -> "SentenceTransformer | OnnxEncoder":  # noqa: F821
        path = str(ensure_default_model(self.cache_dir)) if self.name == DEFAULT_MODEL else self.name
        try:
            model = self._torch_model(path) if self.backend == "torch" else self._onnx_encoder(Path(path))
        except ModelLoadError:
            raise
        except Exception as exc:  # the libraries raise OSError, ValueError, HF and ONNX Runtime errors ...
            raise ModelLoadError(f"cannot load model {self.name!r}: {str(exc).splitlines()[0]}") from exc
        log.info("model %s loaded from %s (%s backend)", self.name, path, self.backend)
        return model

    @staticmethod
    def _torch_model(path: str) -> "SentenceTransformer":  # noqa: F821
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # a CLI answers in one line; weight-loading bars are noise
        hf_logging.disable_progress_bar()
        return SentenceTransformer(path, device="cpu")

    def _onnx_encoder(self, path: Path) -> OnnxEncoder:
        from .onnx_export import ensure_onnx

        if not (path / "modules.json").exists():
            raise ModelLoadError(f"the {self.backend} backend needs a local sentence-transformers folder, "
                                 f"not {self.name!r}")
        return OnnxEncoder(path, ensure_onnx(path, self.backend), resolve_threads())

    @cached_property
    def prompts(self) -> dict[str, str]:
        prompts = dict(self.model.prompts or {})
        if "e5" in self.name.lower() and not prompts:
            prompts = dict(_E5_PROMPTS)
        return {k: prompts[k] for k in ("query", "passage") if prompts.get(k)}

    @cached_property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @cached_property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str], kind: str = "passage", batch_size: int = 32) -> np.ndarray:
        """L2-normalized float32 vectors; ``kind`` is ``"query"`` or ``"passage"`` (sentences are passages)."""
        prefixed = [self.prompts.get(kind, "") + t for t in texts]
        if isinstance(self.model, OnnxEncoder):
            vectors = self.model.encode(prefixed, batch_size)
        else:
            vectors = self.model.encode(prefixed, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_spans(self, texts: list[str], spans: list[list[tuple[int, int]]], kind: str = "passage",
                     batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of ``texts`` as :meth:`encode` gives them, and of the character ``spans`` of each
        (``[(start, end), ...]`` per text, in order) pooled from the same pass ("late chunking").

        A span's vector is the mean of its tokens' vectors, which saw the whole text: one encoding
        instead of one per span, at about half the cost of encoding the spans apart.
        """
        prompt = self.prompts.get(kind, "")
        prefixed = [prompt + t for t in texts]
        shifted = [[(a + len(prompt), b + len(prompt)) for a, b in text_spans] for text_spans in spans]
        if isinstance(self.model, OnnxEncoder):
            return self.model.encode_spans(prefixed, shifted, batch_size)
        tokens = [t.float().numpy() for t in self.model.encode(
            prefixed, batch_size=batch_size, output_value="token_embeddings", show_progress_bar=False)]
        offsets = self.model.tokenizer(prefixed, return_offsets_mapping=True, truncation=True,
                                       max_length=self.max_tokens)["offset_mapping"]
        empty = np.zeros((0, self.dimension), np.float32)
        return (_unit(np.concatenate([empty, *(t.mean(axis=0, keepdims=True) for t in tokens)])),
                _unit(np.concatenate([empty, *(span_weights(o, s) @ t for o, s, t in zip(offsets, shifted, tokens))])))

    def token_count(self, text: str, kind: str = "passage") -> int:
        """Tokens the model would see for ``text``, prompt and special tokens included."""
        prefixed = self.prompts.get(kind, "") + text
        if isinstance(self.model, OnnxEncoder):
            return self.model.token_count(prefixed)
        return len(self.model.tokenizer(prefixed, add_special_tokens=True, truncation=False)["input_ids"])
