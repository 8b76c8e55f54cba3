"""`opsctl metrics report --since 30d` (720 hourly periods) against psql running the same
grouped statement, and its peak RSS.

PostgreSQL: N rows (default 1,000,000) spread over the 30 days before the current hour.
The peer is psql running the statement opsctl sends for the periods it has to compute
(``DbMetricSeries.grouped_query`` with literal values), its output thrown away, so the
ratio is opsctl's own overhead (start-up, the rollup lookup, folding 720 periods, the
JSON line) over the server's work. Two opsctl figures, interleaved with the peer:

- no stored rollups: every period computed (the statement above);
- every period stored (after ``metrics aggregate --store --backfill 30d``): no scan.

    python bench/metrics_report.py [--rows N] [--runs N]

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
from metrics_backfill import PG_FILL  # noqa: E402

SOURCE = "bench_backfill_exports"  # the backfill benchmark's builder, same data shape
DAYS = 30


def grouped_statement(start: datetime, end: datetime) -> str:
    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.metric_series import DbMetricSeries

    db = Database(PG_URL)
    query = DbMetricSeries(db, SOURCE, {}).grouped_query("hourly", start, end)
    return str(query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))


def clear_rollups() -> None:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            if inspect(conn).has_table("opsctl_metric_rollups"):
                conn.execute(text("DELETE FROM opsctl_metric_rollups"))
    finally:
        engine.dispose()


def median(results: list[Measurement]) -> Measurement:
    return Measurement(results[0].label, statistics.median(m.seconds for m in results),
                       max(m.peak_rss_mb for m in results), results[-1].exit_code)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    seconds = build_pg_table(SOURCE, PG_FILL.replace("bench_backfill_exports", SOURCE), {
        "rows": args.rows, "spread": DAYS * 86400, "origin": start.isoformat()})
    print(f"{args.rows:,} rows over {DAYS} days in {SOURCE}, built in {seconds:.1f} s")
    peer_argv = psql_argv(PG_URL, grouped_statement(start, end))
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-state-") as home:
        env = {**opsctl_env(PG_URL, home), "OPSCTL_SOURCE__TABLE": SOURCE}
        argv = opsctl_argv("metrics", "report", "--since", f"{DAYS}d")
        clear_rollups()
        measure("warm-up", argv, env)
        computed, peer = [], []
        for _ in range(args.runs):
            computed.append(measure("opsctl metrics report (720 computed)", argv, env))
            peer.append(measure("psql (the same grouped statement)", peer_argv))
        backfill = opsctl_argv("metrics", "aggregate", "--store", "--backfill", f"{DAYS}d")
        measure("backfill", backfill, env)
        stored = [measure("opsctl metrics report (720 stored)", argv, env)
                  for _ in range(args.runs)]
        clear_rollups()
    title = f"metrics report --since {DAYS}d hourly on PostgreSQL, {args.rows:,} rows"
    report(title + f" (median of {args.runs})", median(computed), median(peer),
           target_ratio=1.5)
    report(title + ": every period stored", median(stored), median(peer))


if __name__ == "__main__":
    main()
