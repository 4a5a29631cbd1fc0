"""The `hoidap` command as users run it: real processes, exit codes, one-line errors, never a traceback."""

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import CORPUS, QUESTION_19, QUESTION_FDI

HOIDAP = str(Path(sys.executable).parent / "hoidap")


def to_cp1258(text: str) -> bytes:
    """Windows-1258 has the letters â ê ô ơ ư ă đ precomposed but the five tone marks as combining characters."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = []
    for ch in text:
        parts = unicodedata.normalize("NFD", ch)
        out.append(unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
                   + "".join(c for c in parts if c in tones))
    return "".join(out).encode("cp1258")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([HOIDAP, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, proc
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if code == 1:
        assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr


def test_index_then_ask_json(tmp_path):
    index = run("index", str(CORPUS), "--data-dir", str(tmp_path))
    assert index.returncode == 0, index.stderr
    assert "indexed 2 documents" in index.stdout
    ask = run("ask", "--json", QUESTION_19, "--data-dir", str(tmp_path))
    assert ask.returncode == 0, ask.stderr
    response = json.loads(ask.stdout)
    assert "19 địa phương" in response["answers"][0]["text"]
    assert set(response) == {"query", "interpreted_query", "answered", "min_confidence", "answers", "results",
                            "offset", "total", "took_ms"}
    assert response["answered"] is True
    assert set(response["answers"][0]) >= {"text", "score", "confidence", "document_id", "title", "source",
                                           "passage_id", "start", "end"}
    assert set(response["results"][0]) >= {"document_id", "title", "source", "passage_id", "score", "text",
                                           "highlights"}
    fdi = json.loads(run("ask", "--json", QUESTION_FDI, "--data-dir", str(tmp_path)).stdout)
    assert "7,63 tỷ USD" in fdi["answers"][0]["text"]


def test_reindex_with_nothing_changed_says_so(tmp_path):
    data = tmp_path / "data"
    assert run("index", str(CORPUS), "--data-dir", str(data)).returncode == 0
    again = run("index", str(CORPUS), "--data-dir", str(data))
    assert again.returncode == 0 and again.stdout.startswith("nothing changed: 2 documents unchanged")


def test_remove_a_document(tmp_path):
    data = tmp_path / "data"
    run("index", str(CORPUS), "--data-dir", str(data))
    proc = run("remove", str(CORPUS / "hai-phong-doi-ngoai-2016.txt"), "--data-dir", str(data))
    assert proc.returncode == 0 and "1 documents left" in proc.stdout
    assert_one_line_error(run("remove", "nope", "--data-dir", str(data)), 1, "no document 'nope'")


def test_ask_in_the_terminal_shows_best_answer_first(corpus_data_dir):
    proc = run("ask", QUESTION_19, "--top-k", "2", "--data-dir", str(corpus_data_dir))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("Trả lời:") and "19 địa phương" in first
    assert "hai-phong-doi-ngoai-2016" in proc.stdout


def test_a_question_typed_without_accents_is_answered(corpus_data_dir):
    proc = run("ask", "--json", "hai phong thiet lap quan he huu nghi hop tac voi bao nhieu dia phuong",
               "--data-dir", str(corpus_data_dir))
    assert proc.returncode == 0, proc.stderr
    assert "19 địa phương" in json.loads(proc.stdout)["answers"][0]["text"]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_backend_is_chosen_on_the_command_line(corpus_data_dir, backend):
    """An index built with the default backend answers through any other one."""
    proc = run("ask", "--json", QUESTION_19, "--backend", backend, "--data-dir", str(corpus_data_dir))
    assert proc.returncode == 0, proc.stderr
    assert "19 địa phương" in json.loads(proc.stdout)["answers"][0]["text"]


def test_unknown_backend_is_a_usage_error(corpus_data_dir):
    assert_one_line_error(run("ask", QUESTION_19, "--backend", "tensorrt", "--data-dir", str(corpus_data_dir)),
                          2, "tensorrt")


def test_info(corpus_data_dir):
    proc = run("info", "--json", "--data-dir", str(corpus_data_dir))
    facts = json.loads(proc.stdout)
    assert facts["documents"] == 2 and facts["model"] == "multilingual-e5-small" and facts["dimension"] == 384
    assert facts["sentence_vectors"] == "pooled"


def test_index_needs_a_path_and_data_dir_defaults_to_data(tmp_path):
    shutil.copytree(CORPUS, tmp_path / "corpus")
    assert_one_line_error(run("index", cwd=tmp_path), 2, "give the files or folders to index")
    assert run("index", "corpus", cwd=tmp_path).returncode == 0
    assert (tmp_path / "data" / "current").exists()


def test_one_folder_by_any_spelling_is_one_set_of_documents(tmp_path):
    """Absolute, relative and through a symlink: the same files, indexed once, shown from the folder's name."""
    docs = tmp_path / "srv" / "docs"
    shutil.copytree(CORPUS, docs / "gen")
    (tmp_path / "link").symlink_to(docs / "gen")
    data = str(tmp_path / "data")
    assert run("index", str(docs / "gen"), "--data-dir", data).returncode == 0
    for cwd, spelling in ((docs, "gen"), (tmp_path / "srv", "docs/gen"), (tmp_path, "link"), (docs, "./gen/../gen")):
        again = run("index", spelling, "--data-dir", data, cwd=cwd)
        assert again.returncode == 0 and "nothing changed: 2 documents" in again.stdout, again
    listed = json.loads(run("documents", "--json", "--data-dir", data).stdout)
    assert sorted(d["source"] for d in listed) == ["gen/hai-phong-doi-ngoai-2016.txt", "gen/hai-phong-doi-ngoai-2020.txt"]
    ask = run("ask", QUESTION_19, "--data-dir", data)
    assert str(tmp_path) not in ask.stdout and "gen/hai-phong-doi-ngoai-2016.txt" in ask.stdout
    assert str(tmp_path) not in run("ask", "--json", QUESTION_19, "--data-dir", data).stdout
    removed = run("remove", "./gen/hai-phong-doi-ngoai-2016.txt", "--data-dir", data, cwd=docs)
    assert removed.returncode == 0 and "1 documents left" in removed.stdout, removed
    assert_one_line_error(run("remove", "gen/hai-phong-doi-ngoai-2016.txt", "--data-dir", data), 1,
                          "hoidap documents")
    assert run("index", str(tmp_path / "link" / "hai-phong-doi-ngoai-2016.txt"), "--data-dir", data).returncode == 0
    assert len(json.loads(run("documents", "--json", "--data-dir", data).stdout)) == 2


def test_version_and_documents(corpus_data_dir):
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("hoidap 0.")
    listed = run("documents", "--data-dir", str(corpus_data_dir))
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and all("corpus/hai-phong-doi-ngoai-20" in line for line in lines)
    doc_id = lines[0].split()[0]
    assert json.loads(run("documents", "--json", "--data-dir", str(corpus_data_dir)).stdout)[0]["id"] == doc_id


def test_ask_a_running_server(live_url, corpus_data_dir):
    """--server gives what the local index gives, and the same exit codes, without loading anything."""
    local = json.loads(run("ask", "--json", QUESTION_FDI, "--data-dir", str(corpus_data_dir)).stdout)
    remote = json.loads(run("ask", "--json", QUESTION_FDI, "--server", live_url).stdout)
    assert [a["text"] for a in remote["answers"]] == [a["text"] for a in local["answers"]]
    assert "7,63 tỷ USD" in run("ask", QUESTION_FDI, "--server", live_url).stdout
    assert_one_line_error(run("ask", "  ", "--server", live_url), 2, "empty")
    assert_one_line_error(run("ask", QUESTION_FDI, "--server", "http://127.0.0.1:9"), 1, "hoidap serve")


def test_ask_without_index_prints_one_line_and_exits_1(tmp_path):
    assert_one_line_error(run("ask", QUESTION_19, "--data-dir", str(tmp_path / "none")), 1,
                          "no index in", "hoidap index")


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_is_a_usage_error(corpus_data_dir, question):
    assert_one_line_error(run("ask", question, "--data-dir", str(corpus_data_dir)), 2, "empty")


@pytest.mark.parametrize("args,needle", [
    (["ask", QUESTION_19, "--top-k", "0"], "top-k"),
    (["frobnicate"], "No such command"),
    (["ask"], "Missing argument"),
    (["index", "--sentence-vectors", "late"], "'late' is not one of pooled, encoded"),
])
def test_usage_errors_exit_2(args, needle):
    assert_one_line_error(run(*args), 2, needle)


def test_missing_folder(tmp_path):
    assert_one_line_error(run("index", str(tmp_path / "nope"), "--data-dir", str(tmp_path)), 1, "no such file")


def test_folder_without_documents(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("index", str(tmp_path / "empty"), "--data-dir", str(tmp_path / "d")), 1,
                          "no documents to index")


def test_unreadable_and_binary_files_are_skipped_and_the_rest_indexed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "hai-phong-doi-ngoai-2016.txt", docs)
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02garbage\x00")
    (docs / "empty.md").write_text("")
    (docs / "legacy.txt").write_bytes(to_cp1258("Hà Nội là thủ đô của Việt Nam."))
    proc = run("index", str(docs), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    assert "indexed 2 documents" in proc.stdout
    assert "binary.txt: binary file" in proc.stderr and "empty.md: empty document" in proc.stderr
    legacy = run("ask", "--json", "Thủ đô của Việt Nam là gì?", "--data-dir", str(tmp_path / "d"))
    assert "Hà Nội là thủ đô của Việt Nam." in json.loads(legacy.stdout)["answers"][0]["text"]


def test_model_mismatch_is_one_line(corpus_data_dir):
    proc = run("ask", QUESTION_19, "--model", "sentence-transformers/all-MiniLM-L6-v2",
               "--data-dir", str(corpus_data_dir))
    assert_one_line_error(proc, 1, "was built with model")


def test_damaged_index_is_one_line(corpus_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(corpus_data_dir, data, symlinks=True)
    db = (data / "current").resolve() / "index.sqlite3"
    db.write_bytes(b"this is not a database" * 10)
    assert_one_line_error(run("ask", QUESTION_19, "--data-dir", str(data)), 1, "damaged")


def test_no_color_is_honoured(corpus_data_dir):
    """Colours only for a terminal that wants them: NO_COLOR wins even where colour is forced."""
    def ask(**env: str) -> str:
        return subprocess.run([HOIDAP, "ask", QUESTION_FDI, "--data-dir", str(corpus_data_dir)], capture_output=True,
                              text=True, timeout=300, env={**os.environ, **env}).stdout

    assert "\x1b[1;32m" in ask(FORCE_COLOR="1")
    assert "32m" not in ask(FORCE_COLOR="1", NO_COLOR="1") and "7,63 tỷ USD" in ask(NO_COLOR="1")


def test_a_date_out_of_range_is_one_line_and_exit_2(corpus_data_dir):
    proc = run("ask", "FDI", "--since", "0001-01-01", "--data-dir", str(corpus_data_dir))
    assert proc.returncode == 2 and "out of range" in proc.stderr and "Traceback" not in proc.stderr
