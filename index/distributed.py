"""Indexing on a Ray cluster (``hoidap index --ray``): the files are read and decoded by Ray tasks
(:func:`loaded`); the documents to embed then go through a Ray Data pipeline whose stage is an actor pool
(one model per actor) that splits them into passages and sentences and embeds them (:func:`embedded`).
Both come back to the driver in order, which writes the build exactly as local indexing does.

Which documents are new or changed, the SQLite rows, the vector and lexical indexes and the atomic swap
stay :mod:`hoidap.index.build`'s, so a build made with ``--ray`` and one made without it are
interchangeable. Ray is an optional extra (``hoidap[ray]``), imported only here and only when asked for.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .documents import Document, Found, load_document, location
from .embeddings import Embedder
from .errors import DocumentError, HoidapError
from .passages import Passage

log = logging.getLogger(__name__)
DOCUMENTS_PER_TASK = 8  # documents one actor embeds at a time: about the passages a local batch holds


class RayError(HoidapError):
    """Ray is not installed, the cluster cannot be reached, or a pipeline on it failed."""


@dataclass(frozen=True)
class RayOptions:
    """Where to run: ``address`` ``None`` starts a local cluster, ``"auto"`` joins the running one, else
    ``ray://host:port`` or ``host:port``; ``actors`` models embedding side by side (default: one per two
    CPUs of the cluster); ``temp_dir`` holds a local cluster's files."""

    address: str | None = None
    actors: int | None = None
    temp_dir: Path | None = None


def _ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the core worker's notes on stderr
    try:
        import ray
    except ImportError:
        raise RayError("--ray needs Ray: pip install 'hoidap[ray]'") from None
    return ray


def _check_reachable(address: str) -> None:
    """A cluster's address (``host:port`` or ``ray://host:port``) that answers nothing is said at once: Ray
    itself would retry for minutes, logging as it goes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise RayError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def connect(options: RayOptions) -> Any:
    """The ``ray`` module, connected to the cluster ``options`` names (a new local one when none)."""
    ray = _ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR}
        if options.address:
            _check_reachable(options.address)
            kwargs["address"] = options.address
        elif options.temp_dir:
            options.temp_dir.mkdir(parents=True, exist_ok=True)
            kwargs["_temp_dir"] = str(options.temp_dir.resolve())
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayError(f"cannot reach the Ray cluster {options.address or '(local)'}: "
                           f"{str(exc).splitlines()[0]}") from exc
    data = ray.data.DataContext.get_current()
    data.execution_options.preserve_order = True  # the build is written in the order the documents came
    data.enable_progress_bars = False  # hoidap's own progress bar counts the documents written
    # their INFO lines would bury hoidap's own output, and a failed task is said in one line (:func:`_failing`)
    for name in ("ray", "ray.data"):  # after ray.data has set them
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return ray


def _embed_stage(model: str, backend: str, passage_tokens: int, sentence_vectors: str) -> type:
    """The actor class of the embedding stage, its settings bound in (not constructor arguments, which Ray
    would keep in its object store for restarts)."""

    class Embed:
        """One model, loaded once, for every batch of documents the pool gives this actor."""

        def __init__(self) -> None:
            self.embedder = Embedder(model, backend=backend, reader="off")

        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            from .build import document_vectors, split_document

            split = [(doc, split_document(doc, self.embedder, passage_tokens))
                     for doc in map(pickle.loads, batch["document"])]
            vectors = document_vectors(split, self.embedder, sentence_vectors)
            return {"position": batch["position"],
                    "embedded": np.array([pickle.dumps(v) for v in vectors], dtype=object)}

    return Embed


def loaded(files: list[Found], skipped: list[str], options: RayOptions) -> Iterator[Document]:
    """The ``files`` read and decoded by Ray tasks, in order (:func:`hoidap.index.build.load_found`'s twin on
    the cluster: every machine must see the files at the same paths); an unreadable file is noted in
    ``skipped`` and the rest go on."""
    if not files:
        return
    ray = connect(options)
    rows = [{"position": i, "path": str(f.path), "source": f.source} for i, f in enumerate(files)]
    reading = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 64))).map(_read)
    for row in _failing(ray, reading.iter_rows()):
        if row["error"]:
            log.warning("skipped %s", row["error"])
            skipped.append(row["error"])
        else:
            yield pickle.loads(row["document"])


def _read(row: dict[str, Any]) -> dict[str, Any]:
    """One file read as local indexing reads it (:func:`load_document`, held to the same bounds)."""
    path = Path(row["path"])
    try:
        document, error = pickle.dumps(load_document(path, row["source"], location(path))), ""
    except DocumentError as exc:
        document, error = b"", str(exc)
    return {"position": row["position"], "document": document, "error": error}


def embedded(documents: list[Document], embedder: Embedder, passage_tokens: int, sentence_vectors: str,
             options: RayOptions) -> Iterator[tuple[Document, list[Passage], np.ndarray, np.ndarray]]:
    """Each of ``documents`` with its passages and their vectors, in order, split and embedded on the cluster."""
    ray = connect(options)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = options.actors or max(1, cpus // 2)
    rows = [{"position": i, "document": pickle.dumps(doc)} for i, doc in enumerate(documents)]
    stage = _embed_stage(embedder.name, embedder.backend, passage_tokens, sentence_vectors)
    # Ray Data restarts an actor that dies and gives its batch to another (its defaults for actor pools)
    pipeline = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), actors * 4))).map_batches(
        stage, compute=ray.data.ActorPoolStrategy(size=actors), batch_size=DOCUMENTS_PER_TASK, batch_format="numpy",
        num_cpus=max(1, cpus // actors))
    for row in _failing(ray, pipeline.iter_rows()):
        doc = documents[int(row["position"])]
        passages, passage_vectors, sentence_vectors_ = pickle.loads(row["embedded"])
        yield doc, passages, passage_vectors, sentence_vectors_


def _failing(ray: Any, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``rows``; a pipeline that fails (a task that raised past its retries, a cluster lost) is a
    :class:`RayError` of one line."""
    try:
        yield from rows
    except ray.exceptions.RayError as exc:
        # Ray's message holds the task's traceback as text, the original error first ("ValueError: ...")
        lines = [line.strip() for line in str(exc).splitlines()]
        said = next((line for line in lines if re.match(r"[\w.]+(Error|Exception): ", line)), lines[0] if lines else "")
        raise RayError(f"the Ray pipeline failed: {said or type(exc).__name__}") from exc


def shutdown() -> None:
    """Leave the cluster (a local one stops)."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()
