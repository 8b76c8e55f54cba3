"""``opsctl runs stats`` over a large run history, on SQLite and PostgreSQL.

    python bench/runs_stats.py [--rows 100000] [--runs 5] [--no-postgres]

Fills ``opsctl_runs`` with N runs of the five jobs, all inside the default 7-day window
(the worst case: every row is aggregated), then times the whole ``opsctl runs stats``
process against the plain tool (sqlite3, psql) computing the same statistics on the same
data. Target: under 1 s per backend at 100,000 runs.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import PG_URL, best_of, opsctl_argv, psql_argv, report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 1.0
# What DbRunHistory computes, written out for the plain tools ({since} filled in): the
# grouped scan, then each job's tail from its last success (one join here, where opsctl
# sends the ranges it learnt from the first statement), then the p95 below.
PEER_SQL = """
SELECT job, count(*), sum(CASE WHEN exit_code IN (0, 1, 2) THEN 0 ELSE 1 END),
       avg(duration_ms), max(finished_at),
       max(CASE WHEN exit_code IN (0, 1, 2) THEN finished_at END)
  FROM opsctl_runs WHERE finished_at >= {since} GROUP BY job;
WITH bounds AS (
  SELECT job, coalesce(max(CASE WHEN exit_code IN (0, 1, 2) THEN finished_at END),
                       max(finished_at)) AS tail_start
    FROM opsctl_runs WHERE finished_at >= {since} GROUP BY job)
SELECT r.id, r.job, r.finished_at, r.state, r.exit_code
  FROM opsctl_runs r JOIN bounds b ON r.job = b.job AND r.finished_at >= b.tail_start;
"""
PEER_P95 = {
    "postgresql": "SELECT job, percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) "
                  "FROM opsctl_runs WHERE finished_at >= {since} GROUP BY job;",
    # No percentile_cont in sqlite3: the plain tool streams the sorted durations, as we do.
    "sqlite": "SELECT job, duration_ms, count(*) OVER (PARTITION BY job) FROM opsctl_runs "
              "WHERE finished_at >= {since} ORDER BY job, duration_ms;",
}


def generate(rows: int, now: datetime, seed: int = 7) -> Iterator[dict[str, object]]:
    """Runs spread over the last 6 days, mostly ok, some warnings, alerts and failures."""
    from opsctl.jobs.runner import JOB_NAMES

    rng = random.Random(seed)
    span = timedelta(days=6).total_seconds()
    codes = [0] * 80 + [1] * 8 + [2] * 5 + [3] * 5 + [78, 143]
    for i in range(rows):
        finished = now - timedelta(seconds=span * (rows - i) / rows)
        duration = int(rng.lognormvariate(7, 1.2))
        code = rng.choice(codes)
        yield {
            "job": JOB_NAMES[i % len(JOB_NAMES)], "run_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "host": "bench", "started_at": finished - timedelta(milliseconds=duration),
            "finished_at": finished, "state": "ok" if code < 3 else "error", "exit_code": code,
            "duration_ms": duration, "summary": {"n": i}, "error": None,
        }


def fill(url: str, rows: int, now: datetime) -> float:
    from opsctl.adapters.db import migrations, tables
    from opsctl.adapters.db.database import Database

    db = Database(url)
    start = time.perf_counter()
    try:
        migrations.ensure_schema(db)
        batch: list[dict[str, object]] = []
        with db.begin() as conn:
            for row in generate(rows, now):
                batch.append(row)
                if len(batch) == 10_000:
                    conn.execute(tables.runs.insert(), batch)
                    batch = []
            if batch:
                conn.execute(tables.runs.insert(), batch)
        with db.connect() as conn:  # fresh planner statistics, as autovacuum would give
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    finally:
        db.dispose()
    return time.perf_counter() - start


def in_process_seconds(url: str, since: datetime) -> float:
    """The queries alone (no interpreter start-up), best of three."""
    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.run_history import DbRunHistory
    from opsctl.jobs.runs_stats import SUCCESS_EXIT_CODES

    db = Database(url, read_only=True)
    try:
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            DbRunHistory(db).job_totals(since, SUCCESS_EXIT_CODES)
            timings.append(time.perf_counter() - start)
        return min(timings)
    finally:
        db.dispose()


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """User + system CPU of one run of ``argv`` (the client only: a PostgreSQL server's
    work is not in it), which a busy machine inflates far less than wall time."""
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def bench(backend: str, url: str, rows: int, runs: int, home: Path) -> bool:
    now = datetime.now(UTC)
    print(f"\n-- {backend}: filling {rows:,} runs ...", flush=True)
    print(f"   filled in {fill(url, rows, now):.1f} s")
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
           "XDG_CONFIG_HOME": str(home / "config"), "OPSCTL_DATABASE__URL": url,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    since = now - timedelta(days=7) + timedelta(minutes=1)  # what opsctl computes, a bit later
    if backend == "sqlite":
        literal = f"'{since.replace(tzinfo=None):%Y-%m-%d %H:%M:%S.%f}'"
        sql = PEER_SQL.format(since=literal) + PEER_P95["sqlite"].format(since=literal)
        db_path = url.removeprefix("sqlite:///")
        peer_argv = ["sqlite3", db_path, sql]
        peer = best_of(runs, "sqlite3 (same 3 statements)", peer_argv)
    else:
        literal = f"'{since.isoformat()}'::timestamptz"
        sql = PEER_SQL.format(since=literal) + PEER_P95["postgresql"].format(since=literal)
        peer_argv = psql_argv(url, sql)
        peer = best_of(runs, "psql (same 3 statements)", peer_argv)
    ours = best_of(runs, "opsctl runs stats", opsctl_argv("runs", "stats"), env)
    # Any database command pays the interpreter, typer, settings and SQLAlchemy first;
    # `db init` on an up-to-date schema is that floor with no work on top.
    floor = best_of(runs, "opsctl db init (no work)", opsctl_argv("db", "init"), env)
    report(f"runs stats over {rows:,} runs, {backend}", ours, peer)
    queries = in_process_seconds(url, now - timedelta(days=7))
    met = ours.seconds < TARGET_S
    print(f"  floor: opsctl db init, up to date        {floor.seconds:8.3f} s"
          f"  (runs stats adds {ours.seconds - floor.seconds:.3f} s)")
    print(f"  queries alone, in process                {queries:8.3f} s")
    print(f"  CPU of the client process (user+sys)     "
          f"{cpu_seconds(opsctl_argv('runs', 'stats'), env):8.3f} s opsctl, "
          f"{cpu_seconds(peer_argv, env):.3f} s {peer.label.split()[0]}")
    print(f"  load average while measuring             {os.getloadavg()[0]:8.2f}"
          f" on {os.cpu_count()} CPUs (wall times above grow with it; CPU times do not)")
    print(f"  target: whole command under {TARGET_S:.0f} s: {'met' if met else 'MISSED'}"
          f" (exit {ours.exit_code})")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (median)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    ok = True
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-runs-") as tmp:
        home = Path(tmp)
        ok &= bench("sqlite", f"sqlite:///{home / 'opsctl.db'}", args.rows, args.runs, home)
        if not args.no_postgres:
            ok &= with_postgres(lambda url: bench("postgresql", url, args.rows, args.runs, home))
    return 0 if ok else 1


def with_postgres(body: object) -> bool:
    """A throwaway database on the benchmark server, so no one's tables are touched."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(PG_URL)
    name = f"opsctl_bench_runs_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        assert callable(body)
        return bool(body(url))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
