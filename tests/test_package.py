"""Hỏi Đáp as a package: built with ``python -m build``, installed in a fresh virtualenv outside the
checkout, it indexes, answers and serves its pages; the command line starts without PyTorch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx

from .conftest import CORPUS, QUESTION_19, ROOT, free_port, wait_until_serving

TORCH = "torch==2.13.0"  # as the Makefile pins it: an unpinned torch pulls a CUDA build of several GB


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{args}: {proc.stderr[-2000:]}"
    return proc.stdout


def test_the_wheel_works_in_a_fresh_virtualenv_elsewhere(tmp_path: Path):
    dist = tmp_path / "dist"
    # as a user runs it: the sdist first, then the wheel built from the sdist (so the sdist is complete)
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    wheel = next(dist.glob("hoidap-*.whl"))
    assert next(dist.glob("hoidap-*.tar.gz"))
    venv.create(tmp_path / "env", with_pip=True)
    pip = tmp_path / "env" / "bin" / "pip"
    quiet = ("--quiet", "--disable-pip-version-check")
    run(pip, "install", *quiet, TORCH, cwd=tmp_path)
    run(pip, "install", *quiet, wheel, cwd=tmp_path)

    elsewhere = tmp_path / "work"  # no corpus/, templates/ or source tree around
    shutil.copytree(CORPUS, elsewhere / "tai-lieu")
    hoidap = tmp_path / "env" / "bin" / "hoidap"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOIDAP_")}
    assert run(hoidap, "--version", cwd=elsewhere, env=env).startswith("hoidap ")
    assert "indexed 2 documents" in run(hoidap, "index", "tai-lieu", cwd=elsewhere, env=env)
    answer = json.loads(run(hoidap, "ask", "--json", QUESTION_19, cwd=elsewhere, env=env))
    assert "19 địa phương" in answer["answers"][0]["text"]
    assert answer["answers"][0]["source"] == "tai-lieu/hai-phong-doi-ngoai-2016.txt"

    port = free_port()
    server = subprocess.Popen([hoidap, "serve", "--port", str(port)], cwd=elsewhere, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, lambda: server.poll() is None)
        home = httpx.get(url + "/", timeout=30)
        page = httpx.get(url + "/search", params={"q": QUESTION_19}, timeout=30)
        css = httpx.get(url + "/static/style.css", timeout=30)
        docs = httpx.get(url + "/docs", timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert home.status_code == 200 and 'href="/static/style.css"' in home.text
    assert page.status_code == 200 and "19 địa phương" in page.text
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and ".result" in css.text
    assert docs.status_code == 200


def test_ask_on_onnx_imports_neither_torch_nor_sentence_transformers(corpus_data_dir: Path):
    code = ("import sys\n"
            "from hoidap.service.cli import main\n"
            f"sys.argv = ['hoidap', 'ask', '--json', {QUESTION_19!r}, '--data-dir', {str(corpus_data_dir)!r}]\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "loaded = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
            "print(json.dumps(loaded), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "19 địa phương" in json.loads(proc.stdout)["answers"][0]["text"]
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
