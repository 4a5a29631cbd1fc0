"""index.vectors on a small clustered collection: row order, recall, reconstruct, save/open, auto, damage."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from hoidap.index import vectors

N, DIM = 4000, 384
APPROXIMATE = [k for k in vectors.KINDS if k != "flat"]


def _normalized(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """40 topics with variation in a 32-dim subspace plus noise; queries are rows moved off the data."""
    rng = np.random.default_rng(7)
    basis = np.linalg.qr(rng.standard_normal((DIM, 32)))[0].T
    topics = _normalized(rng.standard_normal((40, DIM)))
    x = _normalized(0.6 * topics[rng.integers(0, 40, N)] + 0.5 * _normalized(rng.standard_normal((N, 32))) @ basis
                    + 0.3 * _normalized(rng.standard_normal((N, DIM))))
    q = x[rng.choice(N, 100, replace=False)]
    q = _normalized(q + 0.3 * _normalized(rng.standard_normal((100, 32))) @ basis
                    + 0.2 * _normalized(rng.standard_normal((100, DIM))))
    return x, q


@pytest.fixture(scope="module")
def built(data: tuple[np.ndarray, np.ndarray]) -> dict[str, faiss.Index]:
    return {kind: vectors.build_vector_index(data[0], kind) for kind in vectors.KINDS}


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_rows_follow_input_order(kind: str, data: tuple[np.ndarray, np.ndarray], built: dict) -> None:
    x, _ = data
    rows = np.arange(0, N, 97)
    _, ids = built[kind].search(x[rows], 1)
    assert built[kind].ntotal == N
    assert np.mean(ids[:, 0] == rows) >= (1.0 if kind == "flat" else 0.95)


@pytest.mark.parametrize("kind", APPROXIMATE)
def test_recall_against_exact(kind: str, data: tuple[np.ndarray, np.ndarray], built: dict) -> None:
    _, q = data
    _, exact = built["flat"].search(q, 10)
    _, found = built[kind].search(q, 10)
    assert vectors.recall(found, exact) >= 0.9


def test_exact_search_matches_flat(data: tuple[np.ndarray, np.ndarray], built: dict) -> None:
    x, q = data
    _, exact = built["flat"].search(q, 10)
    assert vectors.recall(vectors.exact_search(x, q, 10, chunk=1500), exact) == 1.0


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_reconstruct(kind: str, data: tuple[np.ndarray, np.ndarray], built: dict) -> None:
    x, _ = data
    rows = [0, 17, N - 1, 17]
    got = vectors.reconstruct(built[kind], rows)
    if kind in ("flat", "hnsw"):
        np.testing.assert_array_equal(got, x[rows])
    else:  # 8-bit codes: close, not equal
        assert np.abs(got - x[rows]).max() < 0.01
        assert np.min(np.sum(got * x[rows], axis=1)) > 0.999
    assert vectors.reconstruct(built[kind], []).shape == (0, DIM)


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_save_open_round_trip(kind: str, data: tuple[np.ndarray, np.ndarray], built: dict, tmp_path: Path) -> None:
    _, q = data
    path = tmp_path / f"{kind}.faiss"
    vectors.save(built[kind], path)
    opened = vectors.open_index(path)
    assert vectors.effort_of(opened) == vectors.effort_of(built[kind])
    d0, i0 = built[kind].search(q, 10)
    d1, i1 = opened.search(q, 10)
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(d1, d0)
    np.testing.assert_array_equal(vectors.reconstruct(opened, [3, 5]), vectors.reconstruct(built[kind], [3, 5]))


def test_approximate_kinds_are_tuned(built: dict) -> None:
    for kind in APPROXIMATE:
        assert vectors.effort_of(built[kind]) is not None
    assert vectors.effort_of(built["flat"]) is None


def test_auto_is_exact_for_small_collections(data: tuple[np.ndarray, np.ndarray]) -> None:
    assert vectors.choose_kind(N) == "flat"
    assert isinstance(vectors.build_vector_index(data[0][:500]), faiss.IndexFlatIP)
    assert vectors.choose_kind(vectors.EXACT_LIMIT + 1) == vectors.LARGE_KIND != "flat"


def test_unknown_kind_is_refused(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="unknown vector index kind"):
        vectors.build_vector_index(data[0], "lsh")


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8"])
@pytest.mark.parametrize("cut", [1, 7, 17, 4096, "half"])
def test_truncated_file_is_refused(kind: str, cut: int | str, built: dict, tmp_path: Path) -> None:
    """Cutting 1 to 7 bytes off an ivf file fools faiss's own mapped reader; the trailer catches it."""
    path = tmp_path / "index.faiss"
    vectors.save(built[kind], path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 if cut == "half" else len(data) - cut])
    with pytest.raises(RuntimeError):
        vectors.open_index(path)


def test_file_without_trailer_is_refused(built: dict, tmp_path: Path) -> None:
    path = tmp_path / "plain.faiss"
    faiss.write_index(built["flat"], str(path))
    with pytest.raises(RuntimeError, match="truncated"):
        vectors.open_index(path)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        vectors.open_index(tmp_path / "absent.faiss")
