"""``hoidap serve --ray``: the same FastAPI app as ``hoidap serve``, as N Ray Serve replicas behind Serve's proxy.

Each replica builds the app in its own process (:func:`hoidap.service.app.create_app`) over the data dir,
so it memory-maps the live build and picks up a new one as the single server does: health, metrics, keys,
limits and the pages behave the same. The ``HOIDAP_*`` settings of the command's environment are given to
every replica, with one secret key for all (a session signed by one replica is valid on the others).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from hoidap.index.distributed import RayOptions, connect

from .settings import new_secret_key

APP_NAME = "hoidap"


class Replica:
    """One replica's state: where the data dir is and which model to load; the app is built at its start."""

    def __init__(self, data_dir: str, model: str | None) -> None:
        self.data_dir = data_dir
        self.model = model

    def __serve_build_asgi_app__(self) -> Any:
        from .app import create_app

        return create_app(Path(self.data_dir), self.model)


def replica_env() -> dict[str, str]:
    """The settings every replica gets: this process's ``HOIDAP_*``, and one secret key for all."""
    env = {k: v for k, v in os.environ.items() if k.startswith("HOIDAP_")}
    if not env.get("HOIDAP_SECRET_KEY", "").strip():
        env["HOIDAP_SECRET_KEY"] = new_secret_key()
    return env


def deploy(data_dir: Path, model: str | None, host: str, port: int, replicas: int, cluster: RayOptions) -> None:
    """Start Serve's proxy on ``host:port`` and ``replicas`` replicas of the app (a CPU each); returns when they
    answer."""
    connect(cluster)
    from ray import serve

    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # hoidap says where it serves; Serve's INFO repeats it
    serve.start(http_options={"host": host, "port": port})
    deployment = serve.deployment(serve.ingress()(Replica), name="Hoidap", num_replicas=replicas,
                                  ray_actor_options={"num_cpus": 1, "runtime_env": {"env_vars": replica_env()}})
    serve.run(deployment.bind(str(data_dir.resolve()), model), name=APP_NAME, route_prefix="/")


def serve_until_stopped(data_dir: Path, model: str | None, host: str, port: int, replicas: int,
                        cluster: RayOptions) -> None:
    """:func:`deploy`, then wait for Ctrl-C or SIGTERM, then take the deployment down."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        deploy(data_dir, model, host, port, replicas, cluster)
        stop.wait()
    finally:
        import ray

        if ray.is_initialized():
            from ray import serve

            serve.shutdown()
