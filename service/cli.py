"""The `hoidap` command: a thin layer over the index package and the web app.

Exit codes: 0 success, 2 usage error, 1 any other failure, always with one line on stderr
that says what to do, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from hoidap.index.errors import HoidapError

if TYPE_CHECKING:
    from hoidap.index.distributed import RayOptions
    from hoidap.index.results import SearchResponse

# Imports of the index package (numpy, ONNX Runtime, SQLite ...) are made inside the commands that
# need them: `hoidap --help` and `hoidap ask --server` then start in a fraction of a second.

app = typer.Typer(help="Hỏi Đáp: Vietnamese semantic search and question answering.", add_completion=False,
                  no_args_is_help=True, pretty_exceptions_enable=False)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PAGE = 1000  # documents read at a time by `hoidap documents`
RayAddress = Annotated[str | None, typer.Option(
    envvar="HOIDAP_RAY_ADDRESS", help="with --ray: `auto` joins the cluster running here, or give its address "
                                      "(ray://HOST:10001)")]
DataDir = Annotated[Path, typer.Option("--data-dir", envvar="HOIDAP_DATA_DIR", help="where the index lives")]
Model = Annotated[str | None, typer.Option("--model", envvar="HOIDAP_MODEL",
                                           help="sentence-transformers model name or path (default: multilingual-e5-small, built offline)")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"hoidap {version('hoidap')}", markup=False)
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="print the version and exit")] = False) -> None:
    """Hỏi Đáp: Vietnamese semantic search and question answering."""


def _check_backend(value: str | None) -> str | None:
    if value is None:
        return value
    from hoidap.index.embeddings import BACKENDS

    if value not in BACKENDS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(BACKENDS)}")
    return value


Backend = Annotated[str | None, typer.Option("--backend", envvar="HOIDAP_BACKEND", callback=_check_backend,
                                             help="how the model runs: onnx-int8 (default, fastest), onnx (fp32) or "
                                                  "torch; any of them reads any index of the same model")]


def _check_reader(value: str | None) -> str | None:
    from hoidap.index.reader import SETTINGS

    if value is not None and value not in SETTINGS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(SETTINGS)}")
    return value


ReaderOption = Annotated[str | None, typer.Option(
    "--reader", envvar="HOIDAP_READER", callback=_check_reader,
    help="on (the default): the learned reader finds the best answer's exact phrase; rerank: it also re-orders "
         "close answers (about twice the search time); off")]


def _check_sentence_vectors(value: str | None) -> str | None:
    from hoidap.index.build import SENTENCE_VECTORS

    if value is not None and value not in SENTENCE_VECTORS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(SENTENCE_VECTORS)}")
    return value


SentenceVectors = Annotated[str | None, typer.Option(
    callback=_check_sentence_vectors,
    help="pooled (from each passage's own encoding: the default for a new index) or encoded (each sentence "
         "encoded apart: indexing takes about twice as long); an index keeps its kind unless this is given")]


def _model_for(data_dir: Path, model: str | None) -> str:
    """The chosen model, else the one the existing index was built with, else the default."""
    from hoidap.index.embeddings import resolve_model_name
    from hoidap.index.store import Store

    if model:
        return model
    try:
        return Store.open(data_dir).info.model
    except HoidapError:
        return resolve_model_name(None)


@app.command("index")
def index_cmd(
    paths: Annotated[list[Path] | None, typer.Argument(help="files or folders to index", show_default=False)] = None,
    data_dir: DataDir = Path("data"),
    model: Model = None,
    backend: Backend = None,
    passage_tokens: Annotated[int, typer.Option(min=32, max=512, help="preferred passage size in model tokens")] = 256,
    prune: Annotated[bool, typer.Option(help="remove the indexed files under these paths that are gone (other folders' files, uploads and API documents are kept)")] = False,
    vector_index: Annotated[str | None, typer.Option(
        help="auto (exact below 30,000 passages, else ivf-pq: the default for a new index), flat, hnsw, ivf-sq8 "
             "or ivf-pq; an index keeps its kind unless this is given")] = None,
    sentence_vectors: SentenceVectors = None,
    ray: Annotated[bool, typer.Option("--ray", help="read and embed on a Ray cluster (pip install 'hoidap\\[ray]'): "
                                                    "the one --ray-address names, else a new local one")] = False,
    ray_address: RayAddress = None,
    ray_actors: Annotated[int | None, typer.Option(min=1, help="models embedding side by side on the Ray cluster "
                                                              "(default: one per two of its CPUs)")] = None,
) -> None:
    """Index .txt, .md, .html, .docx and .pdf files; only new and changed files are embedded.

    The previous index keeps answering until the new one is complete.
    """
    from tqdm import tqdm

    from hoidap.index.build import build_index, load_found
    from hoidap.index.documents import discover
    from hoidap.index.embeddings import Embedder
    from hoidap.index.vectors import KINDS

    if not paths:
        raise typer.BadParameter("give the files or folders to index, e.g. `hoidap index ~/tai-lieu`",
                                 param_hint="PATHS")
    if vector_index is not None and vector_index not in ("auto", *KINDS):
        raise typer.BadParameter(f"choose one of auto, {', '.join(KINDS)}", param_hint="--vector-index")
    files = list(discover(paths))  # walked once: counted for the progress bar, then read
    skipped: list[str] = []
    embedder = Embedder(_model_for(data_dir, model), backend=backend)
    with tqdm(total=len(files), desc="indexing", unit="doc", disable=None, leave=False) as bar:
        def indexed(_doc: object) -> None:
            bar.set_description("indexing", refresh=False)
            bar.update()

        with ray_cluster(ray_address, ray_actors) if ray else contextlib.nullcontext() as cluster:
            if cluster is None:
                documents = load_found(files, skipped)
            else:
                from hoidap.index.distributed import loaded
                documents = loaded(files, skipped, cluster)
            report = build_index(documents, data_dir, embedder, passage_tokens, progress=indexed,
                                 prune=paths if prune else (), vector_index=vector_index,
                                 sentence_vectors=sentence_vectors, ray=cluster,
                                 loading=lambda: bar.set_description(f"loading model {embedder.name}"))
    for reason in skipped:
        err.print(f"skipped: {reason}", markup=False)
    if not report.changed:
        out.print(f"nothing changed: {report.unchanged} documents unchanged, nothing re-embedded; "
                  f"the index in {data_dir} is as it was ({report.documents} documents)", markup=False)
        return
    rate = report.passages_per_second
    out.print(f"indexed {report.documents} documents ({report.added} added, {report.updated} updated, "
              f"{report.unchanged} unchanged, {report.removed} removed), {report.passages} passages, "
              f"{report.sentences} sentences in {report.seconds:.1f} s ({rate:.1f} passages/s after {report.model_seconds:.1f} s loading the model) into {data_dir}"
              + (f"; vector index now {report.vector_index}" if report.vector_index else ""), markup=False)


@contextlib.contextmanager
def ray_cluster(address: str | None, actors: int | None) -> Iterator[RayOptions]:
    """The Ray cluster ``--ray`` runs on; a local one keeps its files in a temporary folder and stops at the end."""
    from hoidap.index.distributed import RayOptions, shutdown

    with tempfile.TemporaryDirectory(prefix="hoidap-ray-") as temp:  # short: Ray's socket paths have a limit
        try:
            yield RayOptions(address, actors, Path(temp))
        finally:
            shutdown()


@app.command()
def remove(
    document: Annotated[str, typer.Argument(help="a document id, its source as shown, or its file's path "
                                                 "(any spelling)")],
    data_dir: DataDir = Path("data"),
) -> None:
    """Remove one document from the index."""
    from hoidap.index.build import update_index
    from hoidap.index.embeddings import Embedder
    from hoidap.index.store import Store

    store = Store.open(data_dir)
    doc_id = store.find_document(document)
    if doc_id is None:
        raise HoidapError(f"no document {document!r} in {data_dir}: `hoidap documents` lists them")
    report = update_index(data_dir, Embedder(store.info.model), [], [doc_id])
    out.print(f"removed {document}; {report.documents} documents left in {data_dir}", markup=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question, in Vietnamese")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="passages to return")] = 5,
    answers: Annotated[int, typer.Option("--answers", min=1, max=50, help="answer sentences to return")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON structure")] = False,
    source: Annotated[str | None, typer.Option(help="only documents whose source starts with this (a folder)")] = None,
    formats: Annotated[list[str] | None, typer.Option("--format", help="only this format (txt, md, html, docx, pdf); repeatable")] = None,
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="only documents modified on or after")] = None,
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="only documents modified before")] = None,
    data_dir: DataDir = Path("data"),
    model: Model = None,
    backend: Backend = None,
    reader: ReaderOption = None,
    server: Annotated[str | None, typer.Option(envvar="HOIDAP_URL", help="ask a running server (e.g. "
                                               "http://127.0.0.1:8000) instead of loading the index here")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="HOIDAP_API_KEY", help="the server's API key, if it needs one")] = None,
    min_confidence: Annotated[float | None, typer.Option(
        "--min-confidence", min=0.0, max=1.0,
        help="confidence the best answer needs to count as an answer (default: HOIDAP_MIN_CONFIDENCE, else the "
             "fitted threshold)")] = None,
    exact: Annotated[bool, typer.Option("--exact", help="search the question as typed, without restoring the "
                                                        "diacritics of a question typed without them")] = False,
) -> None:
    """Answer a question from the index: the best sentence first, then each passage with its answers marked.

    When the documents do not answer (the best answer's confidence is under the threshold) it says so and shows
    the closest passages; the exit code is 0 either way."""
    from hoidap.index.errors import QueryError

    try:
        if server:
            from . import client

            body = {"query": question, "top_k": top_k, "answers_k": answers, "source": source, "format": formats or [],
                    "since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
                    "min_confidence": min_confidence, "exact": exact}
            response = client.response(server, client.search(server, body, api_key))
        else:
            from hoidap.index.search import Engine, Filters, check_query

            check_query(question)
            filters = Filters.of(source, formats or (), since, until)
            response = Engine.open(data_dir, model, backend=backend, reader=reader).search(
                question, top_k, filters, min_confidence, not exact, answers_k=answers)
    except QueryError as exc:
        raise typer.BadParameter(str(exc), param_hint="QUESTION") from exc
    if as_json:
        sys.stdout.write(response.model_dump_json(indent=2) + "\n")
    else:
        _print_response(response)


def _print_response(response: SearchResponse) -> None:
    if response.interpreted_query:
        out.print(Text.assemble(("Đã tìm: ", "dim"), (response.interpreted_query, "bold"),
                                ("  (--exact: tìm đúng như đã gõ)", "dim")))
    if not response.answers:
        out.print("Không tìm thấy câu trả lời trong tài liệu.")
        return
    best = response.answers[0]
    if response.answered:
        if best.span:  # the answer phrase first, then the sentence it stands in
            out.print(Text.assemble(("Trả lời: ", "bold"), (best.span.text, "bold green")))
            out.print(Text.assemble(("  ", ""), (best.text, "green"), (f"  (độ tin cậy {best.confidence:.0%})", "dim")))
        else:
            out.print(Text.assemble(("Trả lời: ", "bold"), (best.text, "bold green"),
                                    (f"  (độ tin cậy {best.confidence:.0%})", "dim")))
        out.print(Text(f"  — {best.title} ({best.source})", style="dim"))
    else:
        out.print(Text.assemble(("Không tìm thấy câu trả lời trong tài liệu", "bold yellow"),
                                f" cho câu hỏi “{response.query.strip()}” (độ tin cậy cao nhất {best.confidence:.0%},"
                                f" cần {response.min_confidence:.0%})."))
        out.print(Text("Các đoạn có thể liên quan:", style="bold"))
    for n, result in enumerate(response.results, 1):
        out.print()
        out.print(Text(f"{n}. {result.title}  ·  {result.source}  ·  {result.score:.3f}", style="bold cyan"))
        text = Text(result.text)
        for h in result.highlights:
            text.stylize("bold black on green" if h.best else "black on yellow", h.start, h.end)
        out.print(text)
    out.print(Text(f"\n{response.took_ms:.0f} ms", style="dim"))


@app.command()
def documents(data_dir: DataDir = Path("data"), as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the indexed documents: id, passages, source and title (ids and sources are what `remove` takes)."""
    from hoidap.index.documents import iso_time
    from hoidap.index.store import Store

    store = Store.open(data_dir)
    rows = [dict(r) | {"modified": iso_time(r["modified"])}
            for offset in range(0, store.info.documents, PAGE) for r in store.documents(offset, PAGE)]
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    for r in rows:
        out.print(f"{r['id']}  {r['passages']:>5}  {r['source']}  ·  {r['title']}", markup=False)


@app.command()
def info(data_dir: DataDir = Path("data"), as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What the index holds: documents, passages, sentences, model, dimension, size on disk."""
    from hoidap.index.store import Store

    i = Store.open(data_dir).info
    facts = {"data_dir": str(data_dir), "documents": i.documents, "passages": i.passages, "sentences": i.sentences,
             "model": i.model, "dimension": i.dimension, "sentence_vectors": i.sentence_vectors,
             "built_at": i.built_at, "size_mb": round(i.size_bytes / 2**20, 2)}
    if as_json:
        sys.stdout.write(json.dumps(facts, ensure_ascii=False, indent=2) + "\n")
    else:
        width = max(map(len, facts))
        for key, value in facts.items():
            out.print(f"{key:>{width}}: {value}", markup=False)


@app.command("eval")
def eval_cmd(
    file: Annotated[Path, typer.Argument(help="questions and answers in SQuAD format (JSON)")],
    top_k: Annotated[int, typer.Option("--top-k", min=10, max=50, help="passages retrieved per question")] = 10,
    report: Annotated[Path | None, typer.Option(help="write one JSON line per question here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="keep the evaluation index here (default: a temporary folder)")] = None,
    model: Model = None,
    backend: Backend = None,
    without_diacritics: Annotated[bool, typer.Option(
        "--without-diacritics", help="ask every question with its marks removed, as often typed")] = False,
    sentence_vectors: SentenceVectors = None,
    reader: ReaderOption = None,
    unanswerable: Annotated[bool, typer.Option(
        "--unanswerable", help="measure abstention instead: the paragraphs split in two collections by position "
                               "within each article, every question asked against both")] = False,
    off_topic: Annotated[Path | None, typer.Option(
        "--off-topic", help="with --unanswerable: also ask this SQuAD-format file's questions, as off-topic")] = None,
    min_confidence: Annotated[float | None, typer.Option(
        "--min-confidence", min=0.0, max=1.0,
        help="the threshold the shares are measured at (default: HOIDAP_MIN_CONFIDENCE, else the fitted one)")] = None,
) -> None:
    """Index every paragraph as a document, ask every question, print R@1, R@5, MRR@10, Answer@1, Answer@3.

    With --unanswerable: AUROC of the confidence (correct first answers against same-topic unanswerable
    questions), and at the threshold the shares of correct first answers kept, of unanswerable questions and of
    wrong first answers refused, and the expected calibration error."""
    import dataclasses
    import tempfile
    import time

    from tqdm import tqdm

    from hoidap.index.build import build_index
    from hoidap.index.embeddings import Embedder, resolve_model_name
    from hoidap.index.evaluate import evaluate, load_squad, summarize
    from hoidap.index.search import Engine
    from hoidap.index.store import Store

    started = time.perf_counter()
    documents, questions = load_squad(file)
    if without_diacritics:
        from hoidap.index.text import fold

        questions = [dataclasses.replace(q, text=fold(q.text), marked=q.text) for q in questions]
    if unanswerable or off_topic:
        _eval_abstention(documents, questions, off_topic, top_k, report, as_json, model, backend, sentence_vectors,
                         min_confidence, data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="hoidap-eval-") as tmp:
        target = data_dir or Path(tmp)
        embedder = Embedder(resolve_model_name(model), backend=backend, reader=reader)
        build_index(documents, target, embedder, sentence_vectors=sentence_vectors)
        engine = Engine(Store.open(target), embedder)
        sentence_vectors = engine.store.info.sentence_vectors
        rows = list(tqdm(evaluate(engine, questions, top_k), total=len(questions), desc="asking", unit="q",
                         disable=None, leave=False))
    metrics = summarize(rows, time.perf_counter() - started)
    if report:
        report.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    if as_json:
        facts = {"model": embedder.name, "backend": embedder.backend, "sentence_vectors": sentence_vectors,
                 "reader": embedder.reader_setting if embedder.reader else "off", **dataclasses.asdict(metrics)}
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
    else:
        out.print(f"{metrics.questions} questions over {len(documents)} documents in {metrics.seconds:.1f} s "
                  f"({embedder.name}, {embedder.backend} backend, {sentence_vectors} sentence vectors)", markup=False)
        for name in ("r_at_1", "r_at_5", "mrr_at_10", "answer_at_1", "answer_at_3"):
            out.print(f"{name:>12}: {getattr(metrics, name):.3f}", markup=False)
        if metrics.span_exact is not None:
            out.print(f"answer phrases given for {metrics.span_given:.1%} of the right first answers; over those "
                      f"given, exact match {metrics.span_exact:.3f}, F1 {metrics.span_f1:.3f}", markup=False)
        if metrics.restored_syllables is not None:
            out.print(f"diacritics restored: {metrics.restored_syllables:.1%} of syllables, "
                      f"{metrics.restored_questions:.1%} of whole questions as written; "
                      f"{metrics.restoration_used:.1%} of questions searched restored", markup=False)


def _eval_abstention(documents, questions, off_topic: Path | None, top_k: int, report: Path | None, as_json: bool,
                     model: str | None, backend: str | None, sentence_vectors: str | None,
                     min_confidence: float | None, data_dir: Path | None) -> None:
    """`hoidap eval --unanswerable`: two collections by paragraph position, every question against both."""
    import tempfile
    import time

    from tqdm import tqdm

    from hoidap.index.build import build_index
    from hoidap.index.embeddings import Embedder, resolve_model_name
    from hoidap.index.evaluate import abstention, abstention_summary, load_squad, split_by_position
    from hoidap.index.search import Engine
    from hoidap.index.store import Store

    started = time.perf_counter()
    others = load_squad(off_topic)[1] if off_topic else []
    with tempfile.TemporaryDirectory(prefix="hoidap-eval-") as tmp:
        embedder = Embedder(resolve_model_name(model), backend=backend)
        collections = []
        for n, docs in enumerate(split_by_position(documents)):
            target = (data_dir or Path(tmp)) / f"half-{n}"
            build_index(docs, target, embedder, sentence_vectors=sentence_vectors)
            collections.append((Engine(Store.open(target), embedder, min_confidence=min_confidence), docs))
        threshold = collections[0][0].min_confidence
        rows = list(tqdm(abstention(collections, questions, others, top_k), total=2 * (len(questions) + len(others)),
                         desc="asking", unit="q", disable=None, leave=False))
    summary = abstention_summary(rows, threshold)
    if report:
        report.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    if as_json:
        facts = {"model": embedder.name, "backend": embedder.backend, **summary,
                 "seconds": round(time.perf_counter() - started, 1)}
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
        return
    out.print(f"{len(questions)} questions (+{len(others)} off-topic) against two collections of {len(documents)} "
              f"paragraphs split by position: {summary['answerable']} answerable ({summary['correct']} answered "
              f"correctly first), {summary['same_topic']} same-topic, {summary['other_topic']} other-topic and "
              f"{summary['off_topic']} off-topic unanswerable; threshold {threshold:.2f}", markup=False)
    for name in ("auroc_same_topic", "auroc_other_topic", "auroc_off_topic", "kept_correct", "refused_same_topic",
                 "refused_other_topic", "refused_off_topic", "refused_wrong", "ece"):
        if summary[name] is not None:
            out.print(f"{name:>19}: {summary[name]:.3f}", markup=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOIDAP_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="HOIDAP_PORT", min=1, max=65535)] = 8000,
    data_dir: DataDir = Path("data"),
    model: Model = None,
    backend: Backend = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (each loads the model once)")] = 1,
    forwarded_allow_ips: Annotated[str, typer.Option(
        envvar="HOIDAP_TRUSTED_PROXIES", help="comma-separated addresses of reverse proxies whose X-Forwarded-For "
                                              "gives the real client address (default: none is trusted)")] = "",
    ray: Annotated[bool, typer.Option("--ray", help="serve replicas with Ray Serve (pip install 'hoidap\\[ray]') "
                                                    "on the cluster --ray-address names, else a new local one")] = False,
    ray_address: RayAddress = None,
    replicas: Annotated[int, typer.Option(min=1, help="with --ray: replicas of the app, a CPU each")] = 2,
) -> None:
    """Serve the search page and the JSON API; the model is loaded once, new builds are picked up while serving."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from hoidap.index.bounded import Bounds

    from .header_timeout import HeaderDeadline, header_timeout
    from .settings import Settings, new_secret_key

    Settings.from_env()  # a bad HOIDAP_* setting stops here in one line, not in each worker
    header_timeout()
    Bounds.from_env()
    if workers > 1 and not os.environ.get("HOIDAP_SECRET_KEY", "").strip():
        os.environ["HOIDAP_SECRET_KEY"] = new_secret_key()  # one for all workers: a session works on any of them
    os.environ["HOIDAP_DATA_DIR"] = str(data_dir)
    if model:
        os.environ["HOIDAP_MODEL"] = model
    if backend:
        os.environ["HOIDAP_BACKEND"] = backend
    # Our own access log (hoidap.access) replaces uvicorn's, which would log every question in the URL.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["hoidap"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    log_config["formatters"]["bare"] = {"format": "%(message)s"}  # access lines are JSON, one per line
    log_config["handlers"]["hoidap.access"] = {"class": "logging.StreamHandler", "formatter": "bare",
                                               "stream": "ext://sys.stderr"}
    log_config["loggers"]["hoidap.access"] = {"handlers": ["hoidap.access"], "level": "INFO", "propagate": False}
    err.print(f"Hỏi Đáp: index {data_dir}, page at http://{host}:{port}/ , API docs at http://{host}:{port}/docs"
              + (f", {replicas} Ray Serve replicas" if ray else ""), markup=False)
    if ray:
        from .ray_serve import serve_until_stopped

        with ray_cluster(ray_address, None) as cluster:
            serve_until_stopped(data_dir, model, host, port, replicas, cluster)
        return
    # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default: any local client could then pick its address
    trusted = forwarded_allow_ips.strip()
    uvicorn.run("hoidap.service.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", log_config=log_config, access_log=False, proxy_headers=bool(trusted),
                forwarded_allow_ips=trusted or None, http=HeaderDeadline)


feedback_app = typer.Typer(help="What people said of the answers (POST /api/v1/feedback): list it, or export the "
                                "confirmed answers as a question set for `hoidap eval`.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("list")
def feedback_list(data_dir: DataDir = Path("data"),
                  limit: Annotated[int, typer.Option(min=1, max=10_000, help="rows to show")] = 50,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The latest feedback, newest first: time, verdict, question, the answer it is about."""
    from .feedback import FeedbackStore

    rows = FeedbackStore(data_dir).latest(limit)
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump() for r in rows], ensure_ascii=False, indent=2) + "\n")
        return
    said = {"right": "ĐÚNG ", "wrong": "SAI  ", "answer": "CHỌN "}
    for r in rows:
        out.print(f"{r.at}  {said[r.verdict]}  {r.query}  →  {r.answer}" + (f"  ({r.comment})" if r.comment else ""),
                  markup=False)


@feedback_app.command("export")
def feedback_export(file: Annotated[Path, typer.Argument(help="the SQuAD-format JSON file to write")],
                    data_dir: DataDir = Path("data")) -> None:
    """Write the confirmed answers (said right, or marked as the answer on the document page) as a SQuAD v1.1
    question set, each question with its document as context: `hoidap eval FILE` then measures search on the
    questions staff really asked."""
    from hoidap.index.store import Store

    from .feedback import FeedbackStore, export

    store = Store.open(data_dir)
    confirmed = FeedbackStore(data_dir).confirmed()
    texts = {f.document_id: row["text"] for f in confirmed if (row := store.document(f.document_id))}
    questions = export(confirmed, texts)
    file.write_text(json.dumps(questions, ensure_ascii=False, indent=1), encoding="utf-8")
    count = sum(len(p["qas"]) for article in questions["data"] for p in article["paragraphs"])
    out.print(f"wrote {count} confirmed questions to {file}", markup=False)


@app.command("mcp")
def mcp_cmd(data_dir: DataDir = Path("data"), model: Model = None, backend: Backend = None,
            reader: ReaderOption = None) -> None:
    """Serve the search to an AI assistant as MCP tools (search, get_document, give_feedback) on stdin and stdout.

    Start it from the assistant's MCP settings; `hoidap serve` offers the same tools at /mcp over HTTP."""
    from hoidap.index.search import Engine

    from .feedback import FeedbackStore
    from .mcp_server import build_server
    from .settings import Settings

    engine = Engine.open(data_dir, model, backend=backend, reader=reader)  # no index: one line, exit 1
    build_server(lambda: engine, FeedbackStore(data_dir), Settings.from_env().log_queries).run("stdio")


def main() -> None:
    """Run the command; typer answers usage errors (exit 2), and every other failure is one line and exit 1."""
    logging.basicConfig(level=os.environ.get("HOIDAP_LOG_LEVEL", "WARNING"), format="%(levelname)s %(message)s")
    try:
        app(prog_name="hoidap")
    except HoidapError as exc:
        err.print(f"hoidap: {exc}", markup=False)
        sys.exit(1)
    except Exception as exc:  # the promise is one line, never a traceback
        if os.environ.get("HOIDAP_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            err.print(f"hoidap: the disk is full ({exc.filename or exc.strerror}): free some space and run it again "
                      "(the index was not changed)", markup=False)
        else:
            err.print(f"hoidap: unexpected error ({type(exc).__name__}: {exc}); HOIDAP_DEBUG=1 shows the details",
                      markup=False)
        sys.exit(1)
