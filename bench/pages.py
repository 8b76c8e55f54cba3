"""What ``--html`` costs: ``status --html`` against ``status``, and the size of a month's
report page.

    python bench/pages.py [--rows 100000] [--runs 7] [--history 5000]

Seeds the source table (``opsctl demo seed``, 31 days) and a run history with failures on
the database at ``OPSCTL_BENCH_DATABASE_URL`` (use a database of your own), then runs
``opsctl status`` and ``opsctl status --html`` alternately, so load drift on a shared
machine hits both alike, and compares their medians. Target: at most 0.1 s more with the
page. Then writes ``metrics report --html --since 30d`` (hourly, 720 periods). Target:
a page under 1 MB.

Wall and CPU time are both printed: on a shared machine with more runnable processes
than cores, wall time is mostly the wait for a core and swings by more than the 0.1 s
being measured, while the CPU a run uses stays put.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import PG_URL, Measurement, measure, opsctl_argv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXTRA_TARGET_S = 0.1
PAGE_LIMIT_BYTES = 1_000_000
ERRORS = ["database_unavailable", "storage_unavailable", "archive_unavailable", "config"]
# The page's own cost in a fresh interpreter, as status --html pays it: importing the
# pages adapter (jinja2), building the view, rendering (templates from the warm bytecode
# cache) and the atomic write. The whole-process comparison below carries the database's
# noise; this is the marginal cost itself.
PAGE_ONLY = """
import json, sys, time
from pathlib import Path
from datetime import datetime, timedelta, UTC
t0, c0 = time.perf_counter(), time.process_time()
from opsctl.adapters.pages import StatusView, render_status_page, write_page
from opsctl.locations import cache_dir
import os
event = json.loads(sys.stdin.read())
now = datetime.now(UTC)
failed = [{"job": "logs.cleanup", "started_at": now - timedelta(hours=i), "exit_code": 3,
           "state": "error", "error_kind": "archive_unavailable",
           "error_message": "archive s3://bucket/prefix unreachable <timeout> [/x]"}
          for i in range(20)]
view = StatusView.from_summary(event, state=event["state"], message=event["message"],
                               generated_at=now, host="bench", failed_runs=failed,
                               threshold=0.1, warning=0.05)
write_page(Path(sys.argv[1]), render_status_page(view, redact=str,
                                           cache_dir=cache_dir(os.environ) / "templates"))
print(time.perf_counter() - t0, time.process_time() - c0)
"""


def fill_history(url: str, runs: int, now: datetime) -> None:
    """``runs`` runs of the five jobs over the last 7 days, 5 % of them failed."""
    from opsctl.adapters.db import migrations, tables
    from opsctl.adapters.db.database import Database
    from opsctl.jobs.runner import JOB_NAMES

    rng = random.Random(13)
    db = Database(url)
    try:
        migrations.ensure_schema(db)
        rows = []
        for i in range(runs):
            finished = now - timedelta(days=7) * (runs - i) / runs
            failed = rng.random() < 0.05
            kind = rng.choice(ERRORS)
            rows.append({
                "job": JOB_NAMES[i % len(JOB_NAMES)], "run_id": str(uuid.uuid4()),
                "host": "bench", "started_at": finished - timedelta(seconds=2),
                "finished_at": finished, "state": "error" if failed else "ok",
                "exit_code": 3 if failed else 0, "duration_ms": 2000, "summary": {},
                "error": {"kind": kind, "message": f"{kind}: run {i} <could not> [/connect]"}
                if failed else None,
            })
        with db.begin() as conn:
            conn.execute(tables.runs.delete())
            conn.execute(tables.runs.insert(), rows)
    finally:
        db.dispose()


def alternate(runs: int, plain: list[str], paged: list[str], env: dict[str, str]
              ) -> tuple[list[Measurement], list[Measurement]]:
    a, b = [], []
    for i in range(runs):
        order = [(plain, a), (paged, b)] if i % 2 == 0 else [(paged, b), (plain, a)]
        for argv, into in order:
            # status exits 2 while a job is overdue or an alert is open: its verdict.
            into.append(measure("opsctl status" + (" --html" if argv is paged else ""),
                                argv, env, expected=(0, 1, 2)))
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--history", type=int, default=5000)
    args = parser.parse_args()
    env = {"OPSCTL_DATABASE__URL": PG_URL}
    now = datetime.now(UTC)

    seeded = measure("seed", opsctl_argv("demo", "seed", "--rows", str(args.rows), "--days",
                                         "31", "--seed", "7", "--no-files", "--truncate"), env)
    assert seeded.exit_code == 0, "demo seed failed"
    fill_history(PG_URL, args.history, now)
    print(f"{args.rows:,} exports over 31 days, {args.history:,} runs of history "
          f"on {PG_URL.rsplit('/', 1)[-1]}")

    with tempfile.TemporaryDirectory() as work:
        status_page = Path(work) / "status.html"
        plain, paged = alternate(args.runs, opsctl_argv("status"),
                                 opsctl_argv("status", "--html", str(status_page)), env)
        assert status_page.exists(), "status --html wrote no page"
        base = statistics.median(m.seconds for m in plain)
        with_page = statistics.median(m.seconds for m in paged)
        cpu_base = statistics.median(m.cpu_seconds for m in plain)
        cpu_page = statistics.median(m.cpu_seconds for m in paged)
        extra, cpu_extra = with_page - base, cpu_page - cpu_base
        print(f"\n== status --html against status (median of {args.runs}, alternated)")
        print(f"  opsctl status          {base:7.3f} s wall  {cpu_base:6.3f} s CPU   peak RSS "
              f"{max(m.peak_rss_mb for m in plain):6.1f} MB")
        print(f"  opsctl status --html   {with_page:7.3f} s wall  {cpu_page:6.3f} s CPU   peak RSS "
              f"{max(m.peak_rss_mb for m in paged):6.1f} MB   page "
              f"{status_page.stat().st_size / 1000:.1f} kB")
        print(f"  extra for the page: {extra:+.3f} s wall (ratio {with_page / base:.2f}), "
              f"{cpu_extra:+.3f} s CPU (target <= +{EXTRA_TARGET_S:.1f} s: "
              f"{'met' if cpu_extra <= EXTRA_TARGET_S else 'MISSED'} on CPU, "
              f"{'met' if extra <= EXTRA_TARGET_S else 'MISSED'} on wall)")

        event = subprocess.run(opsctl_argv("status"), env={**os.environ, **env},
                               capture_output=True, text=True, check=False).stdout
        summary = json.loads(event.splitlines()[-1])
        costs = [tuple(map(float, subprocess.run(
            [sys.executable, "-c", PAGE_ONLY, str(Path(work) / "page-only.html")],
            input=json.dumps(summary), capture_output=True, text=True, check=True
        ).stdout.split())) for _ in range(args.runs)]
        wall = statistics.median(c[0] for c in costs)
        cpu = statistics.median(c[1] for c in costs)
        print(f"  the page alone in a fresh interpreter (import jinja2, render, write): "
              f"median {wall:.3f} s wall, {cpu:.3f} s CPU (target <= {EXTRA_TARGET_S:.1f} s: "
              f"{'met' if cpu <= EXTRA_TARGET_S else 'MISSED'} on CPU)")

        report_page = Path(work) / "report.html"
        report_plain, report_paged = [], []
        for i in range(3):
            for paged_run in ((False, True) if i % 2 == 0 else (True, False)):
                argv = opsctl_argv("metrics", "report", "--since", "30d", "--period", "hourly",
                                   *(["--html", str(report_page)] if paged_run else []))
                # (the order alternates so load drift hits both alike)
                (report_paged if paged_run else report_plain).append(
                    measure("metrics report", argv, env))
        size = report_page.stat().st_size
        r_base = statistics.median(m.seconds for m in report_plain)
        r_page = statistics.median(m.seconds for m in report_paged)
        print("\n== metrics report --html --since 30d, hourly (720 periods; median of 3)")
        print(f"  metrics report         {r_base:7.3f} s")
        print(f"  metrics report --html  {r_page:7.3f} s   peak RSS "
              f"{max(m.peak_rss_mb for m in report_paged):6.1f} MB   ratio {r_page / r_base:.2f}")
        print(f"  page {size / 1000:.1f} kB (target < {PAGE_LIMIT_BYTES / 1e6:.0f} MB: "
              f"{'met' if size < PAGE_LIMIT_BYTES else 'MISSED'})")


if __name__ == "__main__":
    main()
