"""`opsctl failure-rate check` against psql running the same count query, on PostgreSQL.

The rows' created_at are spread evenly over 30 days, so the default 60m window holds
1/720 of the table (about 1,400 of 1,000,000 rows), as a month of history would. A second
measure uses a 7d window (a quarter of the table) to show the query's own cost once the
process start-up no longer dominates. opsctl does the whole job (schema check, lock,
count, alert state, run record); psql only runs the query.

    python bench/failure_rate.py [--rows N] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness import PG_URL, best_of, build_pg_table, opsctl_argv, psql_argv, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = "bench_failure_rate_exports"
SPREAD_S = 30 * 86400

QUERY = f"""
SELECT status,
       CASE WHEN status = 'failed' THEN coalesce(error_type, 'unknown') END AS error_type,
       count(*)
FROM {TABLE}
WHERE created_at >= now() - interval '{{window}}' AND created_at < now()
  AND status IN ('completed', 'failed')
GROUP BY 1, 2
"""

# ~3 % failed: the check answers "ok" (exit 0) so every run takes the same path.
FILL = f"""
INSERT INTO {TABLE} (export_id, user_id, format, status, conversation_count, duration_ms,
                     file_size_bytes, file_path, error_type, error_message, created_at)
SELECT md5(g::text),
       'user-' || (g % 997),
       (ARRAY['json', 'jsonl', 'csv'])[1 + g % 3],
       CASE WHEN g % 100 < 3 THEN 'failed' WHEN g % 100 < 5 THEN 'processing'
            ELSE 'completed' END,
       1 + g % 50,
       200 + g % 5000,
       1000 + g % 100000,
       'exports/' || g || '.json',
       CASE WHEN g % 100 < 3 THEN (ARRAY['timeout', 's3_error', 'auth'])[1 + g % 3] END,
       CASE WHEN g % 100 < 3 THEN 'generated failure' END,
       now() - make_interval(secs => (g::float8 * :spread) / :rows)
FROM generate_series(1, :rows) AS g
"""


def build(rows: int) -> None:
    from sqlalchemy import create_engine, text

    seconds = build_pg_table(TABLE, FILL, {"rows": rows, "spread": SPREAD_S})
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        in_hour = conn.execute(text(
            f"SELECT count(*) FROM {TABLE} WHERE created_at >= now() - interval '60 minutes'"
        )).scalar_one()
    engine.dispose()
    print(f"{rows:,} rows in {TABLE} built in {seconds:.1f} s; "
          f"{in_hour:,} in the last 60 minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    build(args.rows)
    env = {
        "OPSCTL_DATABASE__URL": PG_URL,
        "OPSCTL_SOURCE__TABLE": TABLE,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "XDG_CONFIG_HOME": "/nonexistent",  # no stray user config
    }
    # What any Python process that reads the config and talks to PostgreSQL pays before
    # doing anything: the floor under opsctl's figure, so the ratio can be read honestly.
    floor = best_of(args.runs, "python: import opsctl + sqlalchemy + psycopg",
                    [sys.executable, "-c", "import opsctl.cli.main, opsctl.settings, "
                     "opsctl.adapters.db.database, psycopg"], env)
    for window, interval in (("60m", "60 minutes"), ("7d", "7 days")):
        argv = opsctl_argv("failure-rate", "check", "--window", window)
        best_of(1, "warm-up", argv, env)  # creates opsctl's tables on a fresh database
        ours = best_of(args.runs, f"opsctl failure-rate check --window {window}", argv, env)
        peer = best_of(args.runs, "psql (the same count query)",
                       psql_argv(PG_URL, QUERY.format(window=interval)))
        report(f"failure-rate check, {args.rows:,} rows, window {window} "
               f"(median of {args.runs})", ours, peer)
        print(f"  of which imports alone: {floor.seconds:.3f} s; opsctl's work above them: "
              f"{ours.seconds - floor.seconds:.3f} s")


if __name__ == "__main__":
    main()
