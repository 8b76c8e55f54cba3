"""Startup cost: `opsctl --version` and `--help` against `python -c "import typer"`, and a
whole small job against importing its stack.

Cron runs opsctl every minute; a CLI that imports its database driver and AWS SDK just to
print its version wastes that on every run. Targets: `--version` within 1.5x of importing
typer alone; the 60-minute `failure-rate check` on PostgreSQL, whole process (schema
check, lock, count, alert state, run record), within 1.1x of merely importing the stack
it is built on (typer, sqlalchemy, psycopg, pydantic_settings, rich.console,
pythonjsonlogger): what is left for opsctl's own modules, its connection and its
statements. Runs are interleaved so load drift hits both sides alike.

    python bench/startup.py [--runs N] [--rows N] [--skip-database]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from harness import PG_URL, Measurement, measure, opsctl_argv, report

ROOT = Path(__file__).resolve().parent.parent

STACK = ("import typer, sqlalchemy, psycopg, pydantic_settings, rich.console, "
         "pythonjsonlogger.json")


def interleaved(runs: int, commands: list[tuple[str, list[str], dict[str, str] | None]]
                ) -> list[Measurement]:
    taken: list[list[Measurement]] = [[] for _ in commands]
    for _ in range(runs):
        for results, (label, argv, env) in zip(taken, commands, strict=True):
            results.append(measure(label, argv, env))
    return [Measurement(r[0].label, statistics.median(m.seconds for m in r),
                        max(m.peak_rss_mb for m in r), r[-1].exit_code) for r in taken]


def bench_cli(runs: int) -> None:
    typer_only = ('python -c "import typer"', [sys.executable, "-c", "import typer"], None)
    for args, target in ((["--version"], 1.5), (["--help"], 2.0)):
        ours, peer = interleaved(runs, [
            (f"opsctl {' '.join(args)}", [sys.executable, "-m", "opsctl", *args],
             {"COLUMNS": "100"}),
            typer_only,
        ])
        report(f"startup: opsctl {' '.join(args)} (median of {runs})", ours, peer,
               target_ratio=target)


def bench_job(runs: int, rows: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from failure_rate import TABLE, build

    build(rows)
    env = {
        "OPSCTL_DATABASE__URL": PG_URL,
        "OPSCTL_SOURCE__TABLE": TABLE,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "XDG_CONFIG_HOME": "/nonexistent",  # no stray user config
    }
    argv = opsctl_argv("failure-rate", "check", "--window", "60m")
    measure("warm-up", argv, env)  # creates opsctl's tables on a fresh database
    ours, stack = interleaved(runs, [
        ("opsctl failure-rate check --window 60m", argv, env),
        ("python -c 'import <the stack>'", [sys.executable, "-c", STACK], None),
    ])
    report(f"startup: failure-rate check on PostgreSQL, {rows:,} rows, whole process "
           f"(median of {runs})", ours, stack, target_ratio=1.1)


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
