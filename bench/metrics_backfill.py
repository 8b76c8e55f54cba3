"""`opsctl metrics aggregate --store --backfill 60d` against psql running the same grouped
statement, and its peak RSS.

PostgreSQL: N rows (default 1,000,000) spread over the 60 days before the current hour,
so the backfill covers every row in 1,440 hourly periods. The peer is psql running the
very statement opsctl sends (``DbPeriodMetrics.periods_query`` with literal values), with
its output thrown away: the ratio is opsctl's own overhead (start-up, schema check, lock,
folding 1,440 periods in Python, the upsert, the run record) over the server's work.

Two opsctl figures, interleaved with the peer so load drift hits all alike:

- a first backfill (the rollup table emptied before each run): 1,440 rows inserted;
- a rerun over stored rollups: everything computed again, nothing written.

    python bench/metrics_backfill.py [--rows N] [--runs N]

Use a database of your own: OPSCTL_BENCH_DATABASE_URL=postgresql+psycopg://.../bench_x
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import PG_URL, Measurement, build_pg_table, measure, opsctl_argv, psql_argv, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metrics import opsctl_env  # noqa: E402

TABLE = "bench_backfill_exports"
DAYS = 60

PG_FILL = f"""
INSERT INTO {TABLE} (export_id, user_id, format, status, conversation_count, duration_ms,
                     file_size_bytes, file_path, error_type, error_message, created_at)
SELECT md5(g::text), 'user-' || (g % 997), (ARRAY['json', 'jsonl', 'csv', 'parquet'])[1 + g % 4],
       CASE WHEN g % 12 = 0 THEN 'failed' WHEN g % 50 = 1 THEN 'processing'
            ELSE 'completed' END,
       1 + g % 50,
       (hashtext(g::text) & 1023) * 10,
       CASE WHEN g % 12 <> 0 THEN hashtext((g * 7)::text) & 1048575 END,
       'exports/' || g || '.json',
       CASE WHEN g % 12 = 0 THEN (ARRAY['timeout', 'quota', 's3_error', 'oom', 'auth'])
                                 [1 + (g / 12) % 5] END,
       CASE WHEN g % 12 = 0 THEN 'generated failure' END,
       CAST(:origin AS timestamptz) + make_interval(secs => (g::float8 * :spread) / (:rows + 1))
FROM generate_series(1, :rows) AS g
"""


def window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(days=DAYS), end


def grouped_statement(start: datetime, end: datetime) -> str:
    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.period_metrics import DbPeriodMetrics

    db = Database(PG_URL)
    query = DbPeriodMetrics(db, TABLE, {}).periods_query(start, end, timedelta(hours=1))
    return str(query.compile(dialect=db.engine.dialect,
                             compile_kwargs={"literal_binds": True}))


def clear_rollups() -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM opsctl_metric_rollups"))
    finally:
        engine.dispose()


def median(label: str, results: list[Measurement]) -> Measurement:
    return Measurement(label, statistics.median(m.seconds for m in results),
                       max(m.peak_rss_mb for m in results), results[-1].exit_code)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    start, end = window()
    seconds = build_pg_table(TABLE, PG_FILL, {
        "rows": args.rows, "spread": DAYS * 86400, "origin": start.isoformat()})
    print(f"{args.rows:,} rows over {DAYS} days in {TABLE}, built in {seconds:.1f} s")
    sql = grouped_statement(start, end)
    peer_argv = psql_argv(PG_URL, sql)
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-state-") as home:
        env = {**opsctl_env(PG_URL, home), "OPSCTL_SOURCE__TABLE": TABLE}
        argv = opsctl_argv("metrics", "aggregate", "--store", "--backfill", f"{DAYS}d")
        measure("warm-up", argv, env)  # creates opsctl's tables, warms the cache
        first: list[Measurement] = []
        rerun: list[Measurement] = []
        peer: list[Measurement] = []
        for _ in range(args.runs):
            clear_rollups()
            first.append(measure("opsctl backfill (1,440 inserted)", argv, env))
            peer.append(measure("psql (the same grouped statement)", peer_argv))
            rerun.append(measure("opsctl backfill (1,440 unchanged)", argv, env))
    title = f"metrics backfill 60d hourly on PostgreSQL, {args.rows:,} rows (median of {args.runs})"
    same = median(peer[0].label, peer)
    report(title, median(first[0].label, first), same, target_ratio=1.5, rss_limit_mb=100)
    report(title + ": rerun", median(rerun[0].label, rerun), same, target_ratio=1.5,
           rss_limit_mb=100)


if __name__ == "__main__":
    main()
