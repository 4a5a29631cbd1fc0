"""One embedder for questions, sentences and passages, whatever sentence-transformers model is chosen."""

from __future__ import annotations

import logging
import os
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
    """A loaded sentence-transformers model with the prompts its family expects.

    e5 models were trained with ``query: `` / ``passage: `` prefixes and score poorly without them;
    other models get no prefix unless their own config defines prompts named ``query``/``passage``.
    """

    def __init__(self, name: str | None = None, cache_dir: Path | None = None, threads: int | None = None) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # a CLI answers in one line; weight-loading bars are noise
        hf_logging.disable_progress_bar()
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.name = resolve_model_name(name)
        path = str(ensure_default_model(cache_dir)) if self.name == DEFAULT_MODEL else self.name
        try:
            self.model = SentenceTransformer(path, device="cpu")
        except Exception as exc:  # the library raises OSError, ValueError, HF errors ...
            raise ModelLoadError(f"cannot load model {self.name!r}: {str(exc).splitlines()[0]}") from exc
        prompts = dict(self.model.prompts or {})
        if "e5" in self.name.lower() and not prompts:
            prompts = dict(_E5_PROMPTS)
        self.prompts = {k: prompts[k] for k in ("query", "passage") if prompts.get(k)}
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        log.info("model %s loaded (dimension %d, max %d tokens)", self.name, self.dimension, self.max_tokens)

    def encode(self, texts: list[str], kind: str = "passage", batch_size: int = 32,
               progress: bool = False) -> np.ndarray:
        """L2-normalized float32 vectors; ``kind`` is ``"query"`` or ``"passage"`` (sentences are passages)."""
        prefix = self.prompts.get(kind, "")
        vectors = self.model.encode([prefix + t for t in texts], batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def token_count(self, text: str, kind: str = "passage") -> int:
        """Tokens the model would see for ``text``, prompt and special tokens included."""
        prefix = self.prompts.get(kind, "")
        return len(self.model.tokenizer(prefix + text, add_special_tokens=True, truncation=False)["input_ids"])
