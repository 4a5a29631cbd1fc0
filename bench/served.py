"""A real ``hoidap serve`` for the benchmarks: started on a free port, returned once /health answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HOIDAP = Path(sys.executable).parent / "hoidap"  # the command of the environment running the benchmark


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path, env: dict[str, str], *options: str, seconds: float = 120,
          log: Path | None = None) -> tuple[subprocess.Popen, int]:
    """``hoidap serve`` over ``data_dir`` with ``env`` and ``options``, and its port, once /api/v1/health
    answers 200; a server that exits or stays silent for ``seconds`` ends the benchmark with one line.
    ``log``: a file for its log (the access log's lines time each request inside the server)."""
    port = free_port()
    server = subprocess.Popen([str(HOIDAP), "serve", "--port", str(port), "--data-dir", str(data_dir), *options],
                              env=env, stdout=subprocess.DEVNULL,
                              stderr=log.open("w") if log else subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return server, port
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.terminate()
    raise SystemExit(f"the server did not answer /api/v1/health within {seconds:.0f} s")
