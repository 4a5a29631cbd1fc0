"""The store: atomic swap, crash safety, one build at a time, damaged files and model mismatch refused."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hoidap.index.build import build_index, load_files, update_index
from hoidap.index.documents import Document, content_hash, document_id
from hoidap.index.errors import CorruptIndexError, HoidapError, IndexBusyError, ModelMismatchError, NoIndexError
from hoidap.index.search import Engine
from hoidap.index.store import Store, build_lock
from tests.conftest import CORPUS, QUESTION_19

HOIDAP = Path(sys.executable).parent / "hoidap"


@pytest.fixture
def data_dir(tmp_path, corpus_data_dir):
    """A private copy of the corpus index that a test may damage."""
    target = tmp_path / "data"
    shutil.copytree(corpus_data_dir, target, symlinks=True)
    return target


def test_large_collections_get_an_approximate_index(tmp_path, embedder):
    """The kind can be forced; an approximate index still answers through the same search path."""
    data = tmp_path / "data"
    build_index(load_files([CORPUS], []), data, embedder, vector_index="hnsw")
    store = Store.open(data)
    assert store.query("SELECT value FROM meta WHERE key = 'vector_index'")[0][0] == '"hnsw"'
    assert "19 địa phương" in Engine(store, embedder).search(QUESTION_19).answers[0].text


def _kind(data_dir: Path) -> tuple[str, str]:
    store = Store.open(data_dir)
    return store.info.vector_index, store.query("SELECT value FROM meta WHERE key = 'vector_index'")[0][0]


def test_a_forced_vector_index_is_kept_until_another_is_asked_for(data_dir, embedder):
    """Asking for another kind rebuilds the vector index from the stored vectors (nothing re-embedded);
    uploads and a plain re-index keep the kind asked for; asking for auto chooses by size again."""
    assert _kind(data_dir) == ("auto", '"flat"')
    before = Store.open(data_dir)
    report = build_index(load_files([CORPUS], []), data_dir, embedder, vector_index="hnsw")
    assert (report.changed, report.vector_index, report.unchanged, report.updated) == (True, "hnsw", 2, 0)
    np.testing.assert_array_equal(Store.open(data_dir).sentence_vectors, before.sentence_vectors)
    assert _kind(data_dir) == ("hnsw", '"hnsw"')
    text = "Năm 2022, Hải Phòng khánh thành cầu Hoàng Văn Thụ dài 2,2 km bắc qua sông Cấm."
    update_index(data_dir, embedder, [Document("api:cau", "Cầu", "api:cau", "txt", text, content_hash(text))], [])
    assert _kind(data_dir) == ("hnsw", '"hnsw"')
    assert not build_index(load_files([CORPUS], []), data_dir, embedder).changed
    assert build_index(load_files([CORPUS], []), data_dir, embedder, vector_index="auto").vector_index == "auto"
    assert _kind(data_dir) == ("auto", '"flat"')


def test_index_metadata(corpus_data_dir):
    info = Store.open(corpus_data_dir).info
    assert (info.model, info.dimension, info.documents) == ("multilingual-e5-small", 384, 2)
    assert info.passages > 2 and info.sentences > info.passages
    assert info.built_at and info.size_bytes > 0


def test_rebuild_swaps_whole_and_keeps_one_previous_build(data_dir, embedder):
    first = (data_dir / "current").resolve()
    build_index(load_files([CORPUS / "hai-phong-doi-ngoai-2016.txt"], []), data_dir, embedder, prune=[CORPUS])
    second = (data_dir / "current").resolve()
    assert second != first and first.exists(), "a server may still be reading the previous build"
    assert Store.open(data_dir).info.documents == 1
    build_index(load_files([CORPUS], []), data_dir, embedder)
    third = (data_dir / "current").resolve()
    assert sorted(p.name for p in (data_dir / "builds").iterdir()) == sorted([second.name, third.name])


def test_a_build_being_read_is_never_removed(data_dir, embedder, monkeypatch):
    """A server reading an older build keeps it through any number of commits, with a relative data dir as
    `make serve` gives (the previous build was compared unresolved and removed under it); once nothing reads
    it, the next commit removes it."""
    monkeypatch.chdir(data_dir.parent)
    relative = Path(data_dir.name)
    served = Store.open(relative)
    engine = Engine(served, embedder)
    one, both = list(load_files([CORPUS / "hai-phong-doi-ngoai-2016.txt"], [])), list(load_files([CORPUS], []))
    for documents in (one, both, one):
        build_index(documents, relative, embedder, prune=[CORPUS])
        assert served.path.exists()
        assert "19 địa phương" in engine.search(QUESTION_19).answers[0].text
        assert len(served.documents(0, 10)) == 2
    del engine, served
    build_index(both, relative, embedder, prune=[CORPUS])
    assert len(list((data_dir / "builds").iterdir())) == 2, "the new build and the previous one"


def test_unchanged_documents_are_not_re_embedded(data_dir, embedder, tmp_path):
    old = Store.open(data_dir)
    report = build_index(load_files([CORPUS], []), data_dir, embedder)
    assert not report.changed and report.unchanged == 2
    assert (data_dir / "current").resolve() == old.path, "no new build when nothing changed"


def test_changed_new_and_pruned_documents(data_dir, embedder, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs)
    build_index(load_files([docs], []), data_dir, embedder, prune=[docs, CORPUS])  # new ids, the old ones pruned
    before = Store.open(data_dir)
    changed = docs / "hai-phong-doi-ngoai-2020.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\nThành phố Cảng có 126 đối tác thương mại mới.\n",
                       encoding="utf-8")
    (docs / "moi.txt").write_text("Hải Phòng có Lễ hội Hoa Phượng đỏ vào tháng Năm.", encoding="utf-8")
    report = build_index(load_files([docs], []), data_dir, embedder)
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 1, 1, 0)
    after = Store.open(data_dir)
    kept = [d for d in before.hashes() if d in after.hashes() and before.hashes()[d] == after.hashes()[d]]
    assert len(kept) == 1
    doc, _, vectors, _ = after.stored_document(kept[0])
    assert np.allclose(vectors, before.stored_document(kept[0])[2]), "unchanged vectors are copied as they were"
    (docs / "moi.txt").unlink()
    report = build_index(load_files([docs], []), data_dir, embedder, prune=[docs])
    assert report.removed == 1 and Store.open(data_dir).info.documents == 2


def test_pruning_never_removes_uploads_or_api_documents(data_dir, embedder):
    """They exist only in the index: a folder run with --prune removes files no longer given, not them."""
    text = "Cầu Hoàng Văn Thụ bắc qua sông Cấm."
    extra = [Document(document_id(s), "Cầu", s, "txt", text, content_hash(text)) for s in ("api:cau", "upload:cau.txt")]
    update_index(data_dir, embedder, extra, [])
    report = build_index(load_files([CORPUS / "hai-phong-doi-ngoai-2016.txt"], []), data_dir, embedder,
                         prune=[CORPUS])
    assert report.removed == 1
    assert sorted(r["source"] for r in Store.open(data_dir).documents()) == [
        "api:cau", "corpus/hai-phong-doi-ngoai-2016.txt", "upload:cau.txt"]


def test_pruning_a_folder_keeps_the_other_folders(data_dir, embedder, tmp_path):
    """`hoidap index other --prune` removes what is gone from `other` only: corpus/'s documents, indexed from
    another folder, stay."""
    other = tmp_path / "khac"
    other.mkdir()
    (other / "a.txt").write_text("Cầu Rồng dài 666 mét.", encoding="utf-8")
    (other / "b.txt").write_text("Cầu Trần Thị Lý dài 731 mét.", encoding="utf-8")
    build_index(load_files([other], []), data_dir, embedder)
    (other / "b.txt").unlink()
    report = build_index(load_files([other], []), data_dir, embedder, prune=[other])
    assert report.removed == 1
    assert sorted(r["source"] for r in Store.open(data_dir).documents()) == [
        "corpus/hai-phong-doi-ngoai-2016.txt", "corpus/hai-phong-doi-ngoai-2020.txt", "khac/a.txt"]


def test_failed_build_leaves_the_previous_index(data_dir, embedder, tmp_path):
    before = (data_dir / "current").resolve()
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs)

    def boom(_doc):
        raise RuntimeError("crash in the middle of indexing")

    with pytest.raises(RuntimeError):
        build_index(load_files([docs], []), data_dir, embedder, progress=boom)
    assert (data_dir / "current").resolve() == before
    assert not list((data_dir / "builds").glob(".tmp-*"))
    assert Store.open(data_dir).info.documents == 2


def test_killed_build_leaves_the_old_index_answering(data_dir, embedder, tmp_path):
    """kill -9 while `hoidap index` writes its new build: the old index is untouched and still answers."""
    big = tmp_path / "big"
    big.mkdir()
    for i in range(40):  # enough work that the build is surely still running when it is killed
        shutil.copy(CORPUS / "hai-phong-doi-ngoai-2016.txt", big / f"doc{i}.txt")
    before = (data_dir / "current").resolve()
    proc = subprocess.Popen([HOIDAP, "index", str(big), "--data-dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((data_dir / "builds").glob(".tmp-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the build ended before it could be killed"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (data_dir / "current").resolve() == before
    engine = Engine(Store.open(data_dir), embedder)
    assert "19 địa phương" in engine.search(QUESTION_19).answers[0].text
    # the next build cleans up what the killed one left
    build_index(load_files([CORPUS], []), data_dir, embedder)
    assert not list((data_dir / "builds").glob(".tmp-*"))


def test_second_build_is_refused_while_one_runs(data_dir, embedder):
    with build_lock(data_dir):
        with pytest.raises(IndexBusyError, match="another `hoidap index` is running"):
            build_index(load_files([CORPUS], []), data_dir, embedder)


def test_no_index(tmp_path):
    with pytest.raises(NoIndexError, match="run `hoidap index` first"):
        Store.open(tmp_path)


@pytest.mark.parametrize("victim", ["index.sqlite3", "passages.faiss", "passages.npy", "sentences.npy"])
def test_truncated_files_are_reported_as_damaged(data_dir, victim):
    path = (data_dir / "current").resolve() / victim
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptIndexError, match="rebuild it with `hoidap index`"):
        Store.open(data_dir)


def test_index_from_another_version_is_refused(data_dir):
    import sqlite3

    db = sqlite3.connect((data_dir / "current").resolve() / "index.sqlite3")
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(CorruptIndexError, match="another version"):
        Store.open(data_dir)


def test_a_rebuild_after_an_upgrade_keeps_documents_that_have_no_file(data_dir, embedder):
    """An index from another schema version cannot be opened, but its documents table can: a document added
    through the API (no file on disk to index again) is embedded again, not dropped."""
    import sqlite3

    text = "Năm 2022, Hải Phòng khánh thành cầu Hoàng Văn Thụ dài 2,2 km bắc qua sông Cấm."
    uploaded = Document("api:cau", "Cầu Hoàng Văn Thụ", "api:cau", "txt", text, content_hash(text))
    update_index(data_dir, embedder, [uploaded], [])
    db = sqlite3.connect((data_dir / "current").resolve() / "index.sqlite3")
    db.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")  # as an older version left it,
    for name in ("hai-phong-doi-ngoai-2016.txt", "hai-phong-doi-ngoai-2020.txt"):  # files known by paths as typed
        typed = f"../elsewhere/corpus/{name}"
        db.execute("UPDATE documents SET id = ?, source = ? WHERE source = ?", (document_id(typed), typed, f"corpus/{name}"))
    db.commit()
    db.close()
    with pytest.raises(CorruptIndexError, match="another version"):
        Store.open(data_dir)

    report = build_index(load_files([CORPUS], []), data_dir, embedder)

    store = Store.open(data_dir)
    assert "api:cau" in store.hashes() and report.documents == len(store.hashes()) == 3, "the files are not added twice"
    assert sorted(r["source"] for r in store.documents()) == ["api:cau", "corpus/hai-phong-doi-ngoai-2016.txt",
                                                             "corpus/hai-phong-doi-ngoai-2020.txt"]
    answer = Engine(store, embedder).search("Cầu Hoàng Văn Thụ dài bao nhiêu km?").answers[0]
    assert answer.document_id == "api:cau" and "2,2 km" in answer.text


def test_each_kind_of_sentence_vectors_is_kept_until_another_is_asked_for(data_dir, embedder):
    """The corpus index has pooled sentence vectors (the default); indexing with encoded ones re-embeds
    every document and answers the same; then an upload, and indexing without saying, keep encoded."""
    pooled = Store.open(data_dir)
    report = build_index(load_files([CORPUS], []), data_dir, embedder, sentence_vectors="encoded")
    assert (report.updated, report.unchanged) == (2, 0), "another kind of vectors: every document re-embedded"
    encoded = Store.open(data_dir)
    assert (pooled.info.sentence_vectors, encoded.info.sentence_vectors) == ("pooled", "encoded")
    np.testing.assert_allclose(pooled.passage_vectors, encoded.passage_vectors, atol=1e-5)
    cosines = (np.asarray(pooled.sentence_vectors) * encoded.sentence_vectors).sum(axis=1)
    assert 0.75 < cosines.min() and cosines.max() < 0.9999, "pooled in context: near, not equal, to encoded"
    assert "19 địa phương" in Engine(encoded, embedder).search(QUESTION_19).answers[0].text

    text = "Năm 2022, Hải Phòng khánh thành cầu Hoàng Văn Thụ dài 2,2 km bắc qua sông Cấm."
    report = update_index(data_dir, embedder, [Document("api:cau", "Cầu", "api:cau", "txt", text, content_hash(text))],
                          [])
    updated = Store.open(data_dir)
    assert (report.added, report.updated, updated.info.sentence_vectors) == (1, 0, "encoded")
    np.testing.assert_array_equal(updated.sentence_vectors[:encoded.info.sentences], encoded.sentence_vectors)
    assert not build_index(load_files([CORPUS], []), data_dir, embedder).changed


def test_a_sentence_its_passage_does_not_hold_as_normalized_is_encoded_alone(embedder):
    from hoidap.index.build import _pooled

    passages = ["Hải Phòng là thành phố cảng. Nó có 19 địa phương hợp tác.", "Vốn FDI đạt 7,63 tỷ USD."]
    sentences = [["Hải Phòng là thành phố cảng.", "Một câu không có ở đây."], ["Vốn FDI đạt 7,63 tỷ USD."]]
    _, vectors = _pooled(passages, sentences, embedder)
    np.testing.assert_allclose(vectors[1], embedder.encode([sentences[0][1]])[0], atol=1e-6)
    alone = embedder.encode([sentences[0][0], sentences[1][0]])
    assert (vectors[[0, 2]] * alone).sum(axis=1).max() < 0.999, "the others are pooled"


def test_unknown_kind_of_sentence_vectors_is_refused(data_dir, embedder):
    with pytest.raises(HoidapError, match="choose pooled or encoded"):
        build_index(load_files([CORPUS], []), data_dir, embedder, sentence_vectors="late")


def test_other_model_is_refused(corpus_data_dir):
    with pytest.raises(ModelMismatchError, match="built with model 'multilingual-e5-small'"):
        Engine.open(corpus_data_dir, model="sentence-transformers/all-MiniLM-L6-v2")


def test_model_chosen_by_path(tmp_path, embedder):
    """Any sentence-transformers folder works by path; the index remembers it and queries use it."""
    from hoidap.index.convert_e5 import ensure_default_model

    model_dir = tmp_path / "my-model"
    shutil.copytree(ensure_default_model(), model_dir)
    data_dir = tmp_path / "data"
    from hoidap.index.embeddings import Embedder

    build_index(load_files([CORPUS], []), data_dir, Embedder(str(model_dir)))
    engine = Engine.open(data_dir)
    assert engine.embedder.name == str(model_dir)
    assert "19 địa phương" in engine.search(QUESTION_19).answers[0].text
