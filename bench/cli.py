"""What one `hoidap` command costs a person at a terminal: wall time and peak memory of the process.

    .venv/bin/python bench/cli.py [--runs 10]

Indexes corpus/ into a temporary folder with the default settings, runs each command once to warm
the file cache (and the one-time model conversion), then ``--runs`` times, taking turns:
- ``hoidap --help``;
- ``hoidap ask QUESTION`` on that index (the default backend, onnx-int8: the model is loaded, one
  question encoded and searched, the answer printed);
- ``hoidap ask --server URL QUESTION`` against a ``hoidap serve`` over the same index.
Prints the p50 and max wall time and the peak resident memory (``ru_maxrss`` of each process).
Targets (issue "Ship it"): ask p50 ≤ 1.5 s and ≤ 400 MB; --help ≤ 0.3 s; --server p50 ≤ 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from served import HOIDAP, serve  # noqa: E402

QUESTIONS = ["Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với bao nhiêu địa phương?",
             "Vốn FDI thu hút giai đoạn 2010 - 2015 là bao nhiêu?", "hai phong hop tac voi bao nhieu dia phuong"]


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one run of ``hoidap args``, which must succeed."""
    started = time.perf_counter()
    process = subprocess.Popen([str(HOIDAP), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"hoidap {' '.join(args[:2])} failed: {process.stderr.read().decode()[-500:]}")
    process.stderr.close()
    process.returncode = 0
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOIDAP_")}
    with tempfile.TemporaryDirectory(prefix="hoidap-bench-cli-") as tmp:
        data = str(Path(tmp) / "data")
        subprocess.run([str(HOIDAP), "index", str(ROOT / "corpus"), "--data-dir", data], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        server, port = serve(Path(data), env)
        url = f"http://127.0.0.1:{port}"
        commands = {"hoidap --help": lambda n: ["--help"],
                    "hoidap ask (local index)": lambda n: ["ask", QUESTIONS[n % 3], "--data-dir", data],
                    "hoidap ask --server": lambda n: ["ask", QUESTIONS[n % 3], "--server", url]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        memory: dict[str, float] = dict.fromkeys(commands, 0.0)
        try:
            for n in range(runs + 1):  # the first turn warms the file cache and is not counted
                for name, args in commands.items():
                    seconds, mb = timed(args(n), env)
                    if n:
                        times[name].append(seconds)
                        memory[name] = max(memory[name], mb)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{runs} runs each, taking turns (corpus/ indexed, default settings)")
    print(f"{'command':<26} {'p50 s':>7} {'max s':>7} {'peak MB':>8}")
    for name in commands:
        print(f"{name:<26} {statistics.median(times[name]):>7.2f} {max(times[name]):>7.2f} {memory[name]:>8.0f}")


if __name__ == "__main__":
    main()
