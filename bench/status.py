"""``opsctl status`` and ``opsctl schedule show`` on PostgreSQL: 100k runs, 1M exports.

    python bench/status.py [--rows 1000000] [--runs 100000] [--repeat 7]

In a database of its own (created and dropped here), fills the source table with the
README's indexes and ``opsctl_runs`` with a week of history, then measures:

1. the statements both reports send, captured from opsctl itself, run in process
   (connect included) against ``psql`` running the very same statements;
   target: opsctl at most 1.5 times psql;
2. the whole processes against ``opsctl --version`` (alternated runs, medians);
   target: at most 0.2 s above it, plus CPU times and an `opsctl db init` floor;
3. the plans: no sequential scan of the export table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import build_pg_table, measure, opsctl_argv, psql_argv
from runs_stats import fill, with_postgres

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TABLE = "export_logs"
# 60 days up to now, ~8 % failed; files expire 7 days after creation, and those older
# than 8 days were already cleaned (status expired), so a day's worth is pending.
PG_FILL = f"""
INSERT INTO {TABLE} (export_id, user_id, format, status, conversation_count, duration_ms,
                     file_size_bytes, file_path, error_type, error_message, created_at,
                     expires_at)
SELECT md5(g::text), 'user-' || (g % 997), (ARRAY['json', 'jsonl', 'csv'])[1 + g % 3],
       CASE WHEN g % 12 = 0 THEN 'failed'
            WHEN now() - created > interval '8 days' THEN 'expired'
            ELSE 'completed' END,
       1 + g % 50, (hashtext(g::text) & 1023) * 10, 1000,
       'exports/' || g || '.json',
       CASE WHEN g % 12 = 0 THEN 'timeout' END, NULL,
       created, created + interval '7 days'
FROM (SELECT g, now() - make_interval(secs => (:rows - g)::float8 * :spread / :rows) AS created
      FROM generate_series(1, :rows) AS g) AS s
"""
CLEANUP_INDEX = (f"CREATE INDEX ix_{TABLE}_cleanup_pending ON {TABLE} (id) "
                 "WHERE status <> 'expired' AND file_path IS NOT NULL")


def captured_statements(url: str) -> tuple[list[str], float]:
    """Run both reports' reads in process, as the CLI does; return every statement as
    sent (parameters inlined, for psql) and the median seconds of the reads."""
    import psycopg
    from sqlalchemy import event

    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.job_status import DbJobStatus
    from opsctl.exit_codes import JOB_SUCCEEDED
    from opsctl.settings import load_settings
    from opsctl.settings.data import SourceSettings

    settings = load_settings(environ={"HOME": "/nonexistent"})
    schedules = settings.schedule.jobs()
    now = datetime.now(UTC)
    since = {job: now - timedelta(minutes=71) for job in schedules}
    statements: list[str] = []

    def reads(record: bool) -> float:
        db = Database(url, read_only=True)
        if record:
            @event.listens_for(db.engine, "before_cursor_execute")
            def _capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
                statements.append(psycopg.ClientCursor(cursor.connection).mogrify(
                    statement, params))
        started = time.perf_counter()
        source = DbJobStatus(db, SourceSettings())
        try:
            source.snapshot(list(schedules), JOB_SUCCEEDED, since, failed_runs=20)
            source.open_alerts()
            source.pending(now - timedelta(hours=1), now, now - timedelta(days=30))
        finally:
            source.close()
            db.dispose()
        return time.perf_counter() - started

    reads(record=True)
    return statements, statistics.median(reads(record=False) for _ in range(7))


def psql_seconds(url: str, statements: list[str], repeat: int) -> float:
    sql = ";\n".join(s for s in statements if not s.lstrip().upper().startswith("SET "))
    argv = psql_argv(url, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n" + sql +
                     ";\nCOMMIT;")
    return statistics.median(measure("psql", argv).seconds for _ in range(repeat))


def plans(url: str, statements: list[str]) -> list[str]:
    """Every plan node that reads the export table, one line each."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    found = []
    try:
        with engine.connect() as conn:
            for statement in statements:
                if TABLE not in statement:
                    continue
                plan = conn.execute(text("EXPLAIN " + statement.replace(":", r"\:"))).scalars()
                found += [line.strip() for line in plan if TABLE in line]
    finally:
        engine.dispose()
    return found


COMMANDS = {"version": ("--version",), "db init (no work)": ("db", "init"),
            "status": ("status",), "schedule show": ("schedule", "show")}


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """User + system CPU of the client process, which load inflates far less than wall."""
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def alternated(env: dict[str, str], repeat: int) -> dict[str, tuple[float, float]]:
    """Median wall and median CPU seconds per command, the commands taking turns."""
    wall: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeat):
        for name, args in COMMANDS.items():
            wall[name].append(measure(name, opsctl_argv(*args), env).seconds)
            cpu[name].append(cpu_seconds(opsctl_argv(*args), env))
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]))
            for name in COMMANDS}


def bench(url: str, rows: int, runs: int, repeat: int) -> bool:
    from sqlalchemy import create_engine, text

    print(f"-- filling {rows:,} exports and {runs:,} runs (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs) ...", flush=True)
    import harness

    harness.PG_URL = url
    build_pg_table(TABLE, PG_FILL, {"rows": rows, "spread": 60 * 86400})
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(CLEANUP_INDEX))
    engine.dispose()
    fill(url, runs, datetime.now(UTC))
    statements, ours = captured_statements(url)
    peer = psql_seconds(url, statements, repeat)
    ratio = ours / peer
    print(f"\n== the reports' {len(statements)} statements, PostgreSQL")
    print(f"  psql, same statements, one transaction   {peer:8.3f} s")
    print(f"  opsctl reads in process (connect incl.)   {ours:8.3f} s")
    print(f"  ratio opsctl/psql = {ratio:.2f}  (target <= 1.5: "
          f"{'met' if ratio <= 1.5 else 'MISSED'})")
    env = {"OPSCTL_DATABASE__URL": url, "HOME": "/nonexistent",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    medians = alternated(env, repeat)
    print(f"\n== whole processes, {repeat} alternated runs, medians (wall / client CPU)")
    ok = ratio <= 1.5
    base_wall, base_cpu = medians["version"]
    floor_wall, floor_cpu = medians["db init (no work)"]
    for name, (wall, cpu) in medians.items():
        line = f"  opsctl {name:<18} {wall:7.3f} s / {cpu:6.3f} s"
        if name in ("status", "schedule show"):
            met = wall - base_wall <= 0.2
            ok &= met
            line += (f"   +{wall - base_wall:.3f} s wall, +{cpu - base_cpu:.3f} s CPU over "
                     f"--version (target <= 0.2: {'met' if met else 'MISSED'}); "
                     f"+{wall - floor_wall:.3f} s wall, +{cpu - floor_cpu:.3f} s CPU over "
                     "db init")
        print(line)
    reads = plans(url, statements)
    seq = [line for line in reads if "Seq Scan" in line]
    print("\n== plan nodes reading the export table")
    for line in reads:
        print(f"  {line}")
    print(f"  sequential scans of {TABLE}: {len(seq)} (target 0: {'met' if not seq else 'MISSED'})")
    print(f"  load average now {os.getloadavg()[0]:.1f}: wall times grow with it, ratios less")
    return ok and not seq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    return 0 if with_postgres(lambda url: bench(url, args.rows, args.runs, args.repeat)) else 1


if __name__ == "__main__":
    sys.exit(main())
