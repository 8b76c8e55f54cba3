"""Text mode must not cost more than JSON mode: `opsctl files cleanup` of N files (default
100,000) in `--output text` under a pseudo-terminal (progress bar drawn, stderr a tty)
against the same run in `--output json`, both under `script` so both pay for the pty.

The data is the local files-cleanup benchmark's (one-byte files over 256 directories,
rows on PostgreSQL), reset before every run, runs alternated so load drift hits both.
Files stay in the page cache: what is compared is opsctl's own work per file, where a
progress bar redrawn per file would show. Target: text <= 1.1x JSON.

    python bench/text_mode.py [--rows N] [--runs N]

Use a database of your own: OPSCTL_BENCH_DATABASE_URL=postgresql+psycopg://.../bench_x
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

from files_cleanup import TABLE, build, reset
from harness import PG_URL, Measurement, measure, opsctl_argv, report

ROOT = Path(__file__).resolve().parent.parent


def under_pty(argv: list[str]) -> list[str]:
    return ["script", "-qec", shlex.join(argv), "/dev/null"]


def median(results: list[Measurement]) -> Measurement:
    return Measurement(results[0].label, statistics.median(m.seconds for m in results),
                       max(m.peak_rss_mb for m in results), results[-1].exit_code)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    build(args.rows)
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-text-") as tmp:
        work = Path(tmp)
        root = work / "exports"
        env = {"OPSCTL_DATABASE__URL": PG_URL, "OPSCTL_SOURCE__TABLE": TABLE,
               "OPSCTL_STORAGE__ROOT": str(root), "PYTHONPATH": str(ROOT),
               "HOME": str(work), "XDG_STATE_HOME": str(work / "state"), "COLUMNS": "80"}
        measure("db init", opsctl_argv("db", "init"), env)
        json_argv = under_pty(opsctl_argv("files", "cleanup"))
        text_argv = under_pty([sys.executable, "-m", "opsctl", "--output", "text", "files",
                               "cleanup"])
        json_runs, text_runs = [], []
        for _ in range(args.runs):
            reset(args.rows, root, sync=False)
            json_runs.append(measure("opsctl --output json (pty)", json_argv, env))
            reset(args.rows, root, sync=False)
            text_runs.append(measure("opsctl --output text (pty, progress bar)", text_argv,
                                     env))
    report(f"files cleanup of {args.rows:,} files: text mode against JSON mode "
           f"(median of {args.runs})", median(text_runs), median(json_runs), target_ratio=1.1)


if __name__ == "__main__":
    main()
