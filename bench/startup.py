"""Startup cost: `opsctl --version` and `--help` against `python -c "import typer"`, a whole
small job against importing its stack, and what a Prometheus textfile adds to that job.

Cron runs opsctl every minute; a CLI that imports its database driver and AWS SDK just to
print its version wastes that on every run. Targets: `--version` within 1.5x of importing
typer alone; the 60-minute `failure-rate check` on PostgreSQL, whole process (schema
check, lock, count, alert state, run record), within 1.1x of merely importing the stack
it is built on (typer, sqlalchemy, psycopg, pydantic_settings, rich.console,
pythonjsonlogger): what is left for opsctl's own modules, its connection and its
statements; the same job writing a Prometheus textfile within 1.05x of it without.

Runs alternate between the sides so load drift hits both alike. Figures are medians of
wall time and of CPU time (user + system, from wait4): on a shared machine wall time
mostly measures the wait for a core, CPU time what the run itself cost; the load average
is printed next to each figure.

    python bench/startup.py [--runs N] [--rows N] [--skip-database]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import PG_URL, build_pg_table, measure, opsctl_argv

ROOT = Path(__file__).resolve().parent.parent
TABLE = "bench_startup_exports"

STACK = ("import typer, sqlalchemy, psycopg, pydantic_settings, rich.console, "
         "pythonjsonlogger.json")


@dataclass(frozen=True)
class Figure:
    label: str
    wall: float
    cpu: float
    rss_mb: float


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} on {os.cpu_count()} cores"


def interleaved(runs: int, commands: list[tuple[str, list[str], dict[str, str] | None]]
                ) -> list[Figure]:
    taken: list[list[tuple[float, float, float]]] = [[] for _ in commands]
    for _ in range(runs):
        for results, (label, argv, env) in zip(taken, commands, strict=True):
            m = measure(label, argv, env)
            results.append((m.seconds, m.cpu_seconds, m.peak_rss_mb))
    return [Figure(label, statistics.median(r[0] for r in results),
                   statistics.median(r[1] for r in results), max(r[2] for r in results))
            for results, (label, _, _) in zip(taken, commands, strict=True)]


def show(title: str, ours: Figure, peer: Figure, target: float) -> None:
    wall, cpu = ours.wall / peer.wall, ours.cpu / peer.cpu
    print(f"\n== {title}  [{load()}]")
    for fig in (peer, ours):
        print(f"  {fig.label:<44} wall {fig.wall:6.3f} s  cpu {fig.cpu:6.3f} s  "
              f"peak RSS {fig.rss_mb:5.1f} MB")
    print(f"  ratio: wall {wall:.2f}, cpu {cpu:.2f}  (target <= {target:.2f}: "
          f"{'met' if max(wall, cpu) <= target else 'met on cpu' if cpu <= target else 'MISSED'})")


def bench_cli(runs: int) -> None:
    typer_only = ('python -c "import typer"', [sys.executable, "-c", "import typer"], None)
    for args, target in ((["--version"], 1.5), (["--help"], 2.0)):
        ours, peer = interleaved(runs, [
            (f"opsctl {' '.join(args)}", [sys.executable, "-m", "opsctl", *args],
             {"COLUMNS": "100"}),
            typer_only,
        ])
        show(f"opsctl {' '.join(args)} (median of {runs})", ours, peer, target)


def build(rows: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from failure_rate import FILL, SPREAD_S
    from failure_rate import TABLE as FAILURE_RATE_TABLE

    seconds = build_pg_table(TABLE, FILL.replace(FAILURE_RATE_TABLE, TABLE),
                             {"rows": rows, "spread": SPREAD_S})
    print(f"{rows:,} rows in {TABLE} built in {seconds:.1f} s")


def bench_job(runs: int, rows: int) -> None:
    build(rows)
    env = {
        "OPSCTL_DATABASE__URL": PG_URL,
        "OPSCTL_SOURCE__TABLE": TABLE,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "XDG_CONFIG_HOME": "/nonexistent",  # no stray user config
    }
    argv = opsctl_argv("failure-rate", "check", "--window", "60m")
    measure("warm-up", argv, env)  # creates opsctl's tables on a fresh database
    with tempfile.TemporaryDirectory() as textfiles:
        watched = {**env, "OPSCTL_PROMETHEUS__TEXTFILE_DIR": textfiles}
        ours, stack, prom = interleaved(runs, [
            ("opsctl failure-rate check --window 60m", argv, env),
            ("python -c 'import <the stack>'", [sys.executable, "-c", STACK], None),
            ("the same, [prometheus] textfile_dir set", argv, watched),
        ])
        written = sorted(p.name for p in Path(textfiles).iterdir())
    show(f"failure-rate check on PostgreSQL, {rows:,} rows, whole process "
         f"(median of {runs})", ours, stack, 1.1)
    show(f"the same job writing a Prometheus textfile ({', '.join(written) or 'NONE'})",
         prom, ours, 1.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-database", action="store_true")
    args = parser.parse_args()
    bench_cli(args.runs)
    if not args.skip_database:
        bench_job(args.runs, args.rows)


if __name__ == "__main__":
    main()
