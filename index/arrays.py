"""Array helpers shared by the index files: mapped views and integer runs."""

from __future__ import annotations

import numpy as np


def mapped_view(array: np.ndarray) -> np.ndarray:
    """``array`` as a plain ndarray over the same (memory-mapped) pages: worker processes still share
    them, and indexing skips ``np.memmap``'s Python-level ``__getitem__``, which a search calls dozens
    of times a query."""
    return np.asarray(array)


def runs(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The integers of every range ``[starts[i], ends[i])``, concatenated: one vectorized pass instead of
    an ``arange`` per range (a search has one range per candidate passage and per query term)."""
    lengths = np.asarray(ends, dtype=np.int64) - starts
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.arange(int(lengths.sum()), dtype=np.int64) + offsets
