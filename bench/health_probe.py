"""Benchmark: a probe of 8 checks whose slowest answers in 1 s takes about 1 s, not the sum.

    python bench/health_probe.py [--checks 8] [--slow 1.0] [--runs 3]

A local HTTP server answers ``/slow`` after ``--slow`` seconds and everything else at once.
The probe runs ``--checks`` checks of every kind against it and a SQLite database (one of
them the slow HTTP check). Figures:

* the probe's own ``duration_ms`` (from its summary event) against the slowest check: the
  parallelism itself, target <= 1.2;
* opsctl's wall time, process start included, against ``curl`` fetching the slow URL alone
  (the plain tool doing only the slowest part of the work), and opsctl's peak RSS;
* opsctl's fixed cost: the same command probing one fast check, so the difference between
  the two wall times shows what the slow check adds.
"""

from __future__ import annotations

import argparse
import json
import os
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
from harness import Measurement, best_of, opsctl_argv, report

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def http_server(slow_s: float) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/slow"):
                time.sleep(slow_s)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

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


def checks_toml(url: str, port: int, root: Path, count: int) -> str:
    kinds = [
        f'name = "slow-api"\nkind = "http"\nurl = "{url}/slow"\ntimeout_s = 10',
        'name = "db"\nkind = "database"',
        f'name = "port"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}',
        f'name = "disk"\nkind = "disk"\npath = "{root}"\nmin_free_percent = 0',
        'name = "runs"\nkind = "sql"\nquery = "SELECT count(*) FROM opsctl_runs"\n'
        "warning = 1000000",
        'name = "probe-fresh"\nkind = "freshness"\njob = "health.probe"\nmax_age = "1h"',
    ]
    while len(kinds) < count:
        kinds.append(f'name = "api-{len(kinds)}"\nkind = "http"\nurl = "{url}/fast"')
    blocks = "".join(f"\n[[health.checks]]\n{block}\n" for block in kinds[:count])
    return f"[health]\ntimeout_s = 30\n{blocks}"


def probe_duration_ms(env: dict[str, str]) -> tuple[int, str, int]:
    """One run whose JSON summary is read: the probe's own duration, state and exit code."""
    proc = subprocess.run(opsctl_argv("health", "probe"), env={**os.environ, **env},
                          capture_output=True, text=True, check=False)
    summary = [json.loads(line) for line in proc.stdout.splitlines()
               if '"health_probe"' in line][-1]
    return int(summary["duration_ms"]), str(summary["state"]), proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=8)
    parser.add_argument("--slow", type=float, default=1.0, help="seconds of the slow check")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="opsctl-bench-health-") as tmp, \
            http_server(args.slow) as url:
        root = Path(tmp)
        config = root / "opsctl.toml"
        port = int(url.rsplit(":", 1)[1])
        config.write_text(checks_toml(url, port, root, args.checks), encoding="utf-8")
        env = {
            "HOME": str(root), "XDG_STATE_HOME": str(root / "state"),
            "XDG_DATA_HOME": str(root / "data"), "XDG_CONFIG_HOME": str(root / "config"),
            "OPSCTL_CONFIG": str(config), "OPSCTL_DATABASE__URL": f"sqlite:///{root}/o.db",
            "PYTHONPATH": str(REPO),
        }
        probe_duration_ms(env)  # first run creates the database and a fresh history

        durations = [probe_duration_ms(env) for _ in range(args.runs)]
        own_ms = sorted(d for d, _, _ in durations)[len(durations) // 2]
        states = {(state, code) for _, state, code in durations}

        ours = best_of(args.runs, f"opsctl health probe ({args.checks} checks)",
                       opsctl_argv("health", "probe"), env)
        fixed = best_of(args.runs, "opsctl health probe --check port",
                        opsctl_argv("health", "probe", "--check", "port"), env)
        curl = best_of(args.runs, "curl (the slow check alone)",
                       ["curl", "-s", "-o", "/dev/null", f"{url}/slow"])

    print(f"\n== health probe: {args.checks} checks, slowest {args.slow:g} s, "
          f"median of {args.runs}; states {sorted(states)}")
    ratio = own_ms / 1000 / args.slow
    verdict = "met" if ratio <= 1.2 else "MISSED"
    print(f"  probe duration_ms (its own clock)        {own_ms / 1000:8.3f} s")
    print(f"  ratio probe / slowest check = {ratio:.2f}  (target <= 1.2: {verdict})")
    report("opsctl process wall time vs curl of the slowest URL", ours, curl)
    show_fixed(fixed, ours)


def show_fixed(fixed: Measurement, ours: Measurement) -> None:
    print(f"  {fixed.label:<40} {fixed.seconds:8.3f} s   peak RSS {fixed.peak_rss_mb:6.1f} MB")
    print(f"  added by the full probe over that fixed cost: {ours.seconds - fixed.seconds:.3f} s")


if __name__ == "__main__":
    main()
