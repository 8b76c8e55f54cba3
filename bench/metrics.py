"""`opsctl metrics aggregate` against psql running the equivalent SQL, and its peak RSS.

PostgreSQL: N rows (default 1,000,000) spread over ten days, all inside the window asked
for with --since/--until, so every row is aggregated. Two psql figures:

- the plain SQL a person would write for the same numbers (three aggregate
  queries: per-format counts with percentile_cont, overall percentiles, top errors), which
  is the target's baseline (ratio <= 1.3);
- the very statements opsctl sends (breakdown by format/status/error, overall
  percentiles, per-format p95), one after the other, which isolates opsctl's own
  overhead (Python start-up, config, schema check, run record) from its cheaper plan.

opsctl overlaps its statements on separate connections. Runs are interleaved (opsctl,
psql, psql, opsctl, ...) so a machine whose load changes treats all three alike. A second
size, 100,000 rows, shows that opsctl's memory does not grow with the window.

SQLite: the same rows in a file. opsctl streams the sorted durations through Python
(SQLite has no percentile_cont), so the figure to watch is peak RSS; the peer is the
sqlite3 shell running the counts and the sorted scan with its output thrown away.

    python bench/metrics.py [--rows N] [--runs N] [--skip-sqlite]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    PG_URL,
    Measurement,
    best_of,
    build_pg_table,
    measure,
    opsctl_argv,
    psql_argv,
    report,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = "bench_metrics_exports"
SINCE, UNTIL = "2026-11-01T00:00:00Z", "2026-11-11T00:00:00Z"
SPREAD_S = 10 * 86400

# 5 % failed over five error types, 2 % still processing, durations 0..10 s, sizes 0..1 MB.
PG_FILL = f"""
INSERT INTO {TABLE} (export_id, user_id, format, status, conversation_count, duration_ms,
                     file_size_bytes, file_path, error_type, error_message, created_at)
SELECT md5(g::text), 'user-' || (g % 997), (ARRAY['json', 'jsonl', 'csv', 'parquet'])[1 + g % 4],
       CASE WHEN g % 20 = 0 THEN 'failed' WHEN g % 50 = 1 THEN 'processing'
            ELSE 'completed' END,
       1 + g % 50,
       (hashtext(g::text) & 1023) * 10,
       CASE WHEN g % 20 <> 0 THEN hashtext((g * 7)::text) & 1048575 END,
       'exports/' || g || '.json',
       CASE WHEN g % 20 = 0 THEN (ARRAY['timeout', 'quota', 's3_error', 'oom', 'auth'])
                                 [1 + (g / 20) % 5] END,
       CASE WHEN g % 20 = 0 THEN 'generated failure' END,
       timestamptz '2026-11-01 00:00:00+00' + make_interval(secs => (g::float8 * :spread) / :rows)
FROM generate_series(1, :rows) AS g
"""

WINDOW_SQL = f"created_at >= '{SINCE}' AND created_at < '{UNTIL}'"
PLAIN_SQL = f"""
SELECT format, count(*), count(*) FILTER (WHERE status = 'completed'),
       count(*) FILTER (WHERE status = 'failed'),
       avg(duration_ms) FILTER (WHERE status = 'completed'),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
           FILTER (WHERE status = 'completed'),
       sum(file_size_bytes) FILTER (WHERE status = 'completed'),
       avg(file_size_bytes) FILTER (WHERE status = 'completed')
FROM {TABLE} WHERE {WINDOW_SQL} GROUP BY format;
SELECT avg(duration_ms), percentile_cont(ARRAY[0.5, 0.95, 0.99])
           WITHIN GROUP (ORDER BY duration_ms)
FROM {TABLE} WHERE {WINDOW_SQL} AND status = 'completed';
SELECT coalesce(error_type, 'unknown'), count(*) FROM {TABLE}
WHERE {WINDOW_SQL} AND status = 'failed' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5;
"""

SQLITE_FILL = f"""
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :rows)
INSERT INTO {TABLE} (export_id, user_id, format, status, conversation_count, duration_ms,
                     file_size_bytes, error_type, created_at)
SELECT hex(randomblob(16)), 'user-' || (x % 997),
       CASE x % 4 WHEN 0 THEN 'json' WHEN 1 THEN 'jsonl' WHEN 2 THEN 'csv' ELSE 'parquet' END,
       CASE WHEN x % 20 = 0 THEN 'failed' WHEN x % 50 = 1 THEN 'processing'
            ELSE 'completed' END,
       1 + x % 50, abs(random() % 1024) * 10,
       CASE WHEN x % 20 <> 0 THEN abs(random() % 1048576) END,
       CASE WHEN x % 20 = 0 THEN 'error_' || ((x / 20) % 5) END,
       strftime('%Y-%m-%d %H:%M:%f', '2026-11-01', '+' || (x * :spread / :rows) || ' seconds')
           || '000'
FROM g
"""


def statements(url: str) -> list[str]:
    """The SQL opsctl sends for this window, compiled with its literal values."""
    from datetime import datetime

    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.metrics import DbMetricsSource

    db = Database(url)
    source = DbMetricsSource(db, TABLE, {})
    start, end = (datetime.fromisoformat(ts.replace("Z", "+00:00")) for ts in (SINCE, UNTIL))
    queries = [source.breakdown_query(start, end)]
    if db.is_sqlite:
        queries.append(source.sorted_durations_query(start, end))
    else:
        formats = ["csv", "json", "jsonl", "parquet"]
        queries += [
            source.percentiles_query(start, end),
            source.format_p95_query(start, end, formats),
        ]
    dialect = db.engine.dialect
    return [
        str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True})) for q in queries
    ]


def build_postgres(rows: int) -> None:
    seconds = build_pg_table(TABLE, PG_FILL, {"rows": rows, "spread": SPREAD_S})
    print(f"{rows:,} rows in PostgreSQL {TABLE}, built in {seconds:.1f} s")


def build_sqlite(path: Path, rows: int) -> None:
    from sqlalchemy import create_engine, text

    from opsctl.adapters.db.tables import source_indexes, source_table

    engine = create_engine(f"sqlite:///{path}")
    table = source_table(TABLE, {})
    started = time.perf_counter()
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(text(SQLITE_FILL), {"rows": rows, "spread": SPREAD_S})
        for index in source_indexes(table):
            index.create(conn)
        conn.execute(text("ANALYZE"))
    engine.dispose()
    print(f"{rows:,} rows in SQLite {path}, built in {time.perf_counter() - started:.1f} s")


def opsctl_env(url: str, home: str) -> dict[str, str]:
    return {
        "OPSCTL_DATABASE__URL": url,
        "OPSCTL_SOURCE__TABLE": TABLE,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "XDG_CONFIG_HOME": "/nonexistent",  # no stray user config
        "XDG_STATE_HOME": home,
    }


def interleaved(
    runs: int, commands: list[tuple[str, list[str], dict[str, str] | None]]
) -> list[Measurement]:
    """Median time and peak RSS of each command, measured in turns."""
    taken: list[list[Measurement]] = [[] for _ in commands]
    for _ in range(runs):
        for results, (label, argv, env) in zip(taken, commands, strict=True):
            results.append(measure(label, argv, env))
    return [
        Measurement(
            results[0].label,
            statistics.median(m.seconds for m in results),
            max(m.peak_rss_mb for m in results),
            results[-1].exit_code,
        )
        for results in taken
    ]


def bench_postgres(rows: int, runs: int, home: str) -> None:
    build_postgres(rows)
    env = opsctl_env(PG_URL, home)
    argv = opsctl_argv("metrics", "aggregate", "--since", SINCE, "--until", UNTIL)
    best_of(1, "warm-up", argv, env)  # creates opsctl's tables on a fresh database
    same = ";\n".join(statements(PG_URL))
    ours, plain, peer = interleaved(
        runs,
        [
            ("opsctl metrics aggregate", argv, env),
            ("psql (plain SQL: the 3 aggregate queries)", psql_argv(PG_URL, PLAIN_SQL), None),
            ("psql (opsctl's 3 statements, in turn)", psql_argv(PG_URL, same), None),
        ],
    )
    title = f"metrics aggregate on PostgreSQL, {rows:,} rows (median of {runs})"
    report(title, ours, plain, target_ratio=1.3, rss_limit_mb=100)
    report(f"{title}: overhead over the same statements", ours, peer)


def bench_sqlite(rows: int, runs: int, home: str) -> None:
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-") as tmp:
        path = Path(tmp) / "exports.db"
        build_sqlite(path, rows)
        env = opsctl_env(f"sqlite:///{path}", home)
        argv = opsctl_argv("metrics", "aggregate", "--since", SINCE, "--until", UNTIL)
        best_of(1, "warm-up", argv, env)
        script = Path(tmp) / "statements.sql"
        script.write_text(";\n".join(statements(f"sqlite:///{path}")) + ";\n")
        ours = best_of(runs, "opsctl metrics aggregate", argv, env)
        peer = best_of(
            runs,
            "sqlite3 (counts + sorted scan)",
            ["sh", "-c", f'sqlite3 "{path}" < "{script}" > /dev/null'],
        )
        report(
            f"metrics aggregate on SQLite, {rows:,} rows (median of {runs})",
            ours,
            peer,
            rss_limit_mb=150,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-state-") as home:
        for rows in sorted({min(100_000, args.rows), args.rows}):
            bench_postgres(rows, args.runs, home)
        if not args.skip_sqlite:
            bench_sqlite(args.rows, args.runs, home)


if __name__ == "__main__":
    main()
