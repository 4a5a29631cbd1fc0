"""One embedder for questions, sentences and passages, whatever sentence-transformers model is chosen."""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from .convert_e5 import MODEL_NAME, ensure_default_model
from .errors import ModelLoadError

DEFAULT_MODEL = MODEL_NAME
_E5_PROMPTS = {"query": "query: ", "passage": "passage: "}

log = logging.getLogger(__name__)


def resolve_model_name(name: str | None = None) -> str:
    """``--model``, else ``$HOIDAP_MODEL``, else the offline default."""
    return name or os.environ.get("HOIDAP_MODEL") or DEFAULT_MODEL


class Embedder:
    """A sentence-transformers model with the prompts its family expects, loaded on first use.

    e5 models were trained with ``query: `` / ``passage: `` prefixes and score poorly without them;
    other models get no prefix unless their own config defines prompts named ``query``/``passage``.
    Loading is deferred so that work which needs no vectors (an index run with nothing changed)
    does not pay seconds for it.
    """

    def __init__(self, name: str | None = None, cache_dir: Path | None = None) -> None:
        self.name = resolve_model_name(name)
        self.cache_dir = cache_dir

    @cached_property
    def model(self) -> "SentenceTransformer":  # noqa: F821
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # a CLI answers in one line; weight-loading bars are noise
        hf_logging.disable_progress_bar()
        path = str(ensure_default_model(self.cache_dir)) if self.name == DEFAULT_MODEL else self.name
        try:
            model = SentenceTransformer(path, device="cpu")
        except Exception as exc:  # the library raises OSError, ValueError, HF errors ...
            raise ModelLoadError(f"cannot load model {self.name!r}: {str(exc).splitlines()[0]}") from exc
        log.info("model %s loaded from %s", self.name, path)
        return model

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
        prefix = self.prompts.get(kind, "")
        vectors = self.model.encode([prefix + t for t in texts], batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def token_count(self, text: str, kind: str = "passage") -> int:
        """Tokens the model would see for ``text``, prompt and special tokens included."""
        prefix = self.prompts.get(kind, "")
        return len(self.model.tokenizer(prefix + text, add_special_tokens=True, truncation=False)["input_ids"])
