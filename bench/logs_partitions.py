"""``opsctl logs cleanup`` on a partitioned table against psql doing the same work.

    python bench/logs_partitions.py [--rows N] [--runs K]      # default 1,000,000 rows
    python bench/logs_partitions.py --rows 10000000 --runs 1   # opt-in: ~10 minutes
    python bench/logs_partitions.py --rows 10000000 --runs 1 --only delete --reuse

``--only delete`` (or ``archive``) times one part and ``opsctl --version`` alone;
``--reuse`` keeps a table an earlier invocation prepared with the same ``--rows`` (its
clock included, so it holds for about a day); ``--database`` names another database, so
two sizes can stay prepared side by side.

The table (RANGE on created_at, primary key (id, created_at), a created_at index) holds N
rows spread evenly over 60 days in two partitions: ``p_old`` covers the 30 days before the
cutoff and a day more (about half the rows, all past the 30-day retention: the "whole
month"), ``p_now`` the rest (one day of it past the cutoff, so opsctl also runs its
batch path). Only what a run removes is restored between runs (untimed): ``p_old`` is
rebuilt from a template and attached, the day's rows put back.

(a) ``logs cleanup --no-archive`` (detach + drop, plus the day's rows in batches);
    target: the whole process at most ``opsctl --version`` + 0.5 s.
(b) ``logs cleanup --archive-uri file:///...`` vs the psql prototype
    ``\\copy (SELECT row_to_json(t) FROM p_old t) TO STDOUT | gzip -1``, DETACH + DROP, and
    the same for the day's rows with a DELETE; target: ratio <= 1.2, peak RSS <= 150 MB.

Runs pass ``--force``: earlier runs of other sizes in the same database would trip the
deletion guard's anomaly rule, which is not what is measured. Uses its own database
(``opsctl_bench_partitions``) on the server of OPSCTL_BENCH_DATABASE_URL. Alternated
runs; medians of wall time and CPU time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Measurement,
    generated_rows,
    measure,
    opsctl_argv,
    psql,
    psql_argv,
    report,
    server_url,
)

REPO = Path(__file__).resolve().parents[1]
DATABASE = "opsctl_bench_partitions"
# {t0}: the preparation's now(), so the partition bounds and the template agree.
SETUP_SQL = """
DROP TABLE IF EXISTS export_logs, p_old_template, bench_clock;
CREATE TABLE bench_clock AS SELECT '{t0}'::timestamptz AS t0, {rows}::bigint AS rows;
CREATE TABLE export_logs (
  id bigserial, export_id varchar(36) NOT NULL, user_id text NOT NULL,
  format varchar(32) NOT NULL, status varchar(32) NOT NULL,
  conversation_count integer NOT NULL DEFAULT 0, duration_ms integer,
  file_size_bytes bigint, file_path text, error_type text, error_message text,
  created_at timestamptz NOT NULL, expires_at timestamptz,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX ix_export_logs_created_at ON export_logs (created_at);
CREATE TABLE p_now PARTITION OF export_logs FOR VALUES
  FROM ('{t0}'::timestamptz - interval '31 days') TO (MAXVALUE);
CREATE TABLE p_old_template AS {rows_select};
INSERT INTO export_logs SELECT * FROM p_old_template
  WHERE created_at >= '{t0}'::timestamptz - interval '31 days';
DELETE FROM p_old_template
  WHERE created_at >= '{t0}'::timestamptz - interval '31 days';
VACUUM ANALYZE export_logs;
"""
# Puts back what a run removed: p_old whole, and p_now's rows past the cutoff.
RESTORE_SQL = """
DROP TABLE IF EXISTS p_old;
CREATE TABLE p_old (LIKE export_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO p_old SELECT * FROM p_old_template;
ALTER TABLE p_old ADD PRIMARY KEY (id, created_at);
CREATE INDEX ON p_old (created_at);
ALTER TABLE p_old ADD CONSTRAINT p_old_range CHECK (
  created_at >= (TIMESTAMPTZ '{t0}' - interval '61 days')
  AND created_at < (TIMESTAMPTZ '{t0}' - interval '31 days'));
ALTER TABLE export_logs ATTACH PARTITION p_old FOR VALUES
  FROM ('{t0}'::timestamptz - interval '61 days') TO ('{t0}'::timestamptz - interval '31 days');
ALTER TABLE p_old DROP CONSTRAINT p_old_range;
INSERT INTO export_logs SELECT * FROM p_now_kept ON CONFLICT DO NOTHING;
VACUUM ANALYZE p_old;
VACUUM ANALYZE p_now;
CHECKPOINT;
"""


def cutoff_sql() -> str:
    return "now() - interval '30 days'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs each; median shown")
    parser.add_argument("--restore-only", action="store_true",
                        help="put the prepared table back as before a run (to profile one)")
    parser.add_argument("--only", choices=("delete", "archive"),
                        help="time this part only (and opsctl --version beside it)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the table an earlier run prepared with as many rows")
    parser.add_argument("--database", default=DATABASE)
    args = parser.parse_args()
    url = server_url(args.database)
    if args.restore_only:
        psql(url, RESTORE_SQL.format(t0=psql(url, "SELECT t0 FROM bench_clock")))
        psql(url, "TRUNCATE opsctl_archive_objects")
        return
    admin = server_url("postgres")
    if psql(admin, f"SELECT 1 FROM pg_database WHERE datname = '{args.database}'") != "1":
        psql(admin, f'CREATE DATABASE "{args.database}"')
    t0 = prepared(url, args.rows) if args.reuse else ""
    if t0:
        print(f"reusing {args.rows:,} rows in {args.database} prepared at {t0}", flush=True)
    else:
        print(f"preparing {args.rows:,} rows in {args.database} ...", flush=True)
        t0 = psql(url, "SELECT now()")
        psql(url, SETUP_SQL.format(t0=t0, rows=args.rows, rows_select=generated_rows(
            args.rows, f"'{t0}'::timestamptz")))
        # The rows of p_now a run may delete (its first day), kept to be put back.
        psql(url, "DROP TABLE IF EXISTS p_now_kept; CREATE TABLE p_now_kept AS SELECT * "
                  "FROM p_now WHERE created_at < now() - interval '29 days'")
    work = Path(tempfile.mkdtemp(prefix="opsctl-bench-partitions-"))
    env = {"OPSCTL_DATABASE__URL": url, "HOME": str(work), "XDG_CONFIG_HOME": str(work),
           "XDG_STATE_HOME": str(work), "PYTHONPATH": str(REPO),
           "OPSCTL_LOGS__MAX_DELETE_FRACTION": "1"}
    subprocess.run(opsctl_argv("db", "init"), env={**env, "PATH": "/usr/bin:/bin"},
                   check=True, capture_output=True)
    archive = work / "archive"
    out = work / "peer"

    def fresh() -> None:
        shutil.rmtree(archive, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        psql(url, RESTORE_SQL.format(t0=t0))
        psql(url, "TRUNCATE opsctl_archive_objects")

    fresh()
    print(f"{psql(url, 'SELECT count(*) FROM p_old'):>12} rows in p_old (whole), "
          f"{psql(url, f'SELECT count(*) FROM p_now WHERE created_at < {cutoff_sql()}')} "
          "older rows in p_now", flush=True)
    old = f"created_at < {cutoff_sql()}"
    copy_old = psql_argv(url, "\\copy (SELECT row_to_json(t) FROM p_old t) TO STDOUT")
    copy_now = psql_argv(url, f"\\copy (SELECT row_to_json(t) FROM p_now t WHERE {old}) "
                              "TO STDOUT")
    drop = psql_argv(url, "ALTER TABLE export_logs DETACH PARTITION p_old CONCURRENTLY")
    drop2 = psql_argv(url, f"DROP TABLE p_old; DELETE FROM p_now WHERE {old}")
    peer = (f"{shlex.join(copy_old)} | gzip -1 > {shlex.quote(str(out / 'p_old.gz'))} && "
            f"{shlex.join(copy_now)} | gzip -1 > {shlex.quote(str(out / 'p_now.gz'))} && "
            f"{shlex.join(drop)} && {shlex.join(drop2)}")
    runs: dict[str, list[Measurement]] = {}
    wanted = {"version", args.only} if args.only else {"version", "delete", "archive"}
    if args.only != "delete":
        wanted.add("peer")
    for _ in range(args.runs):
        for key, label, argv, shell in (
            ("version", "opsctl --version", [sys.executable, "-m", "opsctl", "--version"],
             False),
            ("delete", "opsctl logs cleanup --no-archive",
             opsctl_argv("logs", "cleanup", "--no-archive", "--force"), False),
            ("peer", "psql \\copy | gzip -1, DETACH, DROP", peer, True),
            ("archive", "opsctl logs cleanup --archive",
             opsctl_argv("logs", "cleanup", "--force", "--archive-uri", archive.as_uri()),
             False),
        ):
            if key not in wanted:
                continue
            fresh()
            # Rows older than the retention when the run starts must all be gone after
            # it (a long run sees more rows age past the cutoff meanwhile).
            started = psql(url, "SELECT now()")
            result = measure(label, argv, env, shell=shell)
            left = psql(url, "SELECT count(*) FROM export_logs WHERE created_at < "
                             f"'{started}'::timestamptz - interval '30 days'")
            if key != "version" and (result.exit_code != 0 or int(left) > 0):
                raise SystemExit(f"{label}: exit {result.exit_code}, {left} old rows left")
            runs.setdefault(key, []).append(result)

    def median(key: str) -> Measurement:
        results = runs[key]
        return Measurement(results[0].label, statistics.median(m.seconds for m in results),
                           max(m.peak_rss_mb for m in results), 0,
                           statistics.median(m.cpu_seconds for m in results))

    m = {key: median(key) for key in runs}
    one, five, _ = os.getloadavg()
    print(f"\nload average {one:.2f}/{five:.2f} at the end")
    if "delete" in m:
        delete_only(args.rows, m["version"], m["delete"])
    if "archive" in m:
        report(f"(b) archive + drop, {args.rows:,}-row partitioned table", m["archive"],
               m["peer"], target_ratio=1.2, rss_limit_mb=150)
        print(f"  cpu: opsctl {m['archive'].cpu_seconds:.2f} s, "
              f"peer {m['peer'].cpu_seconds:.2f} s")
    shutil.rmtree(work, ignore_errors=True)


def prepared(url: str, rows: int) -> str:
    """The clock of a table prepared earlier with ``rows`` rows, or "" (none, another
    size, or too old for the day of p_now's rows kept aside to cover the cutoff)."""
    return psql(url, f"""
DO $$ BEGIN
  IF to_regclass('bench_clock') IS NULL THEN CREATE TEMP TABLE bench_clock (t0 timestamptz);
  END IF;
  IF NOT EXISTS (SELECT FROM information_schema.columns
                 WHERE table_name = 'bench_clock' AND column_name = 'rows') THEN
    ALTER TABLE bench_clock ADD COLUMN rows bigint;
  END IF;
END $$;
SELECT t0 FROM bench_clock WHERE rows = {rows} AND t0 > now() - interval '20 hours';""")


def delete_only(rows: int, version: Measurement, delete: Measurement) -> None:
    print(f"\n== (a) delete only, {rows:,}-row partitioned table")
    print(f"  {version.label:<40} {version.seconds:8.3f} s  cpu {version.cpu_seconds:.3f} s")
    print(f"  {delete.label:<40} {delete.seconds:8.3f} s  cpu {delete.cpu_seconds:.3f} s"
          f"   peak RSS {delete.peak_rss_mb:6.1f} MB")
    extra = delete.seconds - version.seconds
    print(f"  above --version: {extra:+.3f} s (target <= +0.5 s: "
          f"{'met' if extra <= 0.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
