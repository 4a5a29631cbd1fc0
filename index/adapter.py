"""A learned question-side adapter: the question's vector as it best matches the sentence that answers it.

The default model embeds a question near sentences that talk about the same thing; the sentence that
answers it is often a neighbour of the one that only repeats its words. A linear map on the question's
vector alone, ``q -> normalize(q + q W)``, trained so that the answer sentence's (pooled) vector ranks
first among its article's sentences, sharpens that without touching the index or the model: the
sentences' vectors stay as built, and a search pays one 384 x 384 product. Its cosine is the ranking's
sentence signal (``Weights.sentence_dense``); the confidence keeps the model's own cosine, which its
calibration was fitted on.

``W`` is learned by ``train/question_adapter.py`` (English SQuAD v1.1 train; MLQA-vi measures it) and
committed in ``models/question_adapter.safetensors`` with its record ``question_adapter.json``. It is the
default model's: another model gets none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).parent / "models" / "question_adapter.safetensors"


class QuestionAdapter:
    """``q -> normalize(q + q W)`` for L2-normalized question vectors (rows)."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> "QuestionAdapter":
        from safetensors.numpy import load_file

        return cls(load_file(str(path))["W"])

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        adapted = vectors + vectors @ self.matrix
        return (adapted / np.linalg.norm(adapted, axis=-1, keepdims=True)).astype(np.float32)
