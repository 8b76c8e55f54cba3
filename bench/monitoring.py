"""Benchmark: what watching a job costs it.

    python bench/monitoring.py [--runs 7] [--rows 20000] [--timeout 1.0]

One job (``failure-rate check`` on a SQLite database filled by ``demo seed``) run as a whole
process, in alternated runs so load drift hits every variant alike:

* plain: no ``[heartbeat]``, no ``[prometheus]``;
* watched: healthchecks-style heartbeats to a local HTTP server that answers at once, and
  a textfile for node_exporter; target: median <= 1.05 x plain;
* hung: heartbeats to a local server that accepts and never answers, ``timeout_s`` =
  ``--timeout``; target: median <= plain + 2 x timeout_s (the start ping runs while the job
  works; the end ping and what is left of the start ping get 2 x timeout_s in all).

Figures are medians of wall time and of CPU time (user + system, from wait4): on a loaded
machine wall time swings with everyone else's work, CPU time much less, so both are shown.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import opsctl_argv


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS in MB and the exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status))


@contextmanager
def answering_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def _ok(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = _ok

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel does, from the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, answering_server() as ok_url, \
            silent_server() as hung_url:
        work = Path(tmp)
        textfiles = work / "textfile"
        textfiles.mkdir()
        env = {"HOME": str(work), "XDG_STATE_HOME": str(work / "state"),
               "XDG_DATA_HOME": str(work / "data"), "XDG_CONFIG_HOME": str(work / "config")}
        subprocess.run(opsctl_argv("demo", "seed", "--rows", str(args.rows), "--no-files",
                                   "--seed", "7"),
                       env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)
        configs = {
            "plain": "",
            "watched": (f'[heartbeat]\nurl = "{ok_url}/ping/{{job}}"\n'
                        f'[prometheus]\ntextfile_dir = "{textfiles}"\n'),
            "hung": (f'[heartbeat]\nurl = "{hung_url}/ping/{{job}}"\n'
                     f"timeout_s = {args.timeout}\n"
                     f'[prometheus]\ntextfile_dir = "{textfiles}"\n'),
        }
        paths = {}
        for name, body in configs.items():
            paths[name] = work / f"{name}.toml"
            paths[name].write_text(body)
        argv = opsctl_argv("failure-rate", "check", "--window", "30d")
        results: dict[str, list[tuple[float, float, float, int]]] = {n: [] for n in configs}
        for _ in range(args.runs):
            for name in configs:  # alternated: plain, watched, hung, plain, ...
                results[name].append(
                    measure(argv, {**env, "OPSCTL_CONFIG": str(paths[name])}))
        assert (textfiles / "opsctl_failure_rate_check.prom").exists()
        assert all(r[3] in (0, 1, 2) for runs in results.values() for r in runs), results

    median = {name: statistics.median(r[0] for r in runs) for name, runs in results.items()}
    cpu = {name: statistics.median(r[1] for r in runs) for name, runs in results.items()}
    rss = {name: max(r[2] for r in runs) for name, runs in results.items()}
    print(f"\n== one failure-rate check, {args.rows:,} rows, SQLite, median of {args.runs} "
          "alternated runs")
    for name in configs:
        print(f"  {name:<8} wall {median[name]:7.3f} s   CPU {cpu[name]:7.3f} s   "
              f"peak RSS {rss[name]:6.1f} MB")
    ratio = median["watched"] / median["plain"]
    print(f"  watched/plain = {ratio:.3f} wall, {cpu['watched'] / cpu['plain']:.3f} CPU  "
          f"(target <= 1.05: {'met' if ratio <= 1.05 else 'MISSED'})")
    extra = median["hung"] - median["plain"]
    limit = 2 * args.timeout
    print(f"  hung - plain  = {extra:.3f} s  (target <= 2 x timeout_s = {limit:.1f} s: "
          f"{'met' if extra <= limit else 'MISSED'})")


if __name__ == "__main__":
    main()
