"""``opsctl logs cleanup`` on SQLite against the sqlite3 CLI doing the same work.

    python bench/logs_cleanup_sqlite.py [--rows N] [--runs K] [--batch-size N]

The database file holds N rows spread evenly over 60 days (so about half are older than
the 30-day retention), the ``created_at`` index and opsctl's own tables, in WAL mode as
opsctl leaves it. It is built once and copied (untimed) before every timed run. Peer and
opsctl runs alternate and the medians of K runs are compared.

(a) ``logs cleanup --no-archive`` vs ``sqlite3 db "DELETE ... WHERE created_at < cutoff"``
    target: ratio <= 2.0
(b) ``logs cleanup --archive --archive-uri file:///...`` vs
    ``sqlite3 db "SELECT json_object(...) ... ORDER BY id" | gzip -1 > file`` then the
    DELETE: target ratio <= 2.5. The peer writes one JSON line per row, as opsctl does.
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
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Measurement, measure, opsctl_argv, report

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("id", "export_id", "user_id", "format", "status", "conversation_count",
           "duration_ms", "file_size_bytes", "file_path", "error_type", "error_message",
           "created_at", "expires_at")

FILL = """
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :rows)
INSERT INTO export_logs (id, export_id, user_id, format, status, conversation_count,
  duration_ms, file_size_bytes, file_path, error_type, error_message, created_at,
  expires_at)
SELECT x, lower(hex(randomblob(16))), 'user-' || (x % 1000),
  CASE x % 3 WHEN 0 THEN 'json' WHEN 1 THEN 'jsonl' ELSE 'csv' END,
  CASE WHEN x % 10 = 0 THEN 'failed' ELSE 'completed' END,
  x % 50, 100 + x % 5000, 1000 + (x * 7) % 100000, 'exports/' || x || '.json',
  CASE WHEN x % 10 = 0 THEN 'timeout' END,
  CASE WHEN x % 10 = 0 THEN 'export timed out after 30s: "quoted", back\\slash' END,
  strftime('%Y-%m-%d %H:%M:%f', :start, '+' || (x * 5184000.0 / :rows) || ' seconds')
    || '000',
  strftime('%Y-%m-%d %H:%M:%f', :start, '+' || (604800 + x * 5184000.0 / :rows)
    || ' seconds') || '000'
FROM g
"""


def stamp(moment: datetime) -> str:
    """A UTC instant in the format opsctl stores on SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, rows: int, env: dict[str, str]) -> None:
    from sqlalchemy import create_engine, text

    from opsctl.adapters.db.tables import source_indexes, source_table

    started = time.perf_counter()
    subprocess.run(opsctl_argv("db", "init"), env={**os.environ, **env}, check=True,
                   capture_output=True)
    engine = create_engine(f"sqlite:///{path}")
    table = source_table("export_logs", {})
    begin = stamp(datetime.now(UTC) - timedelta(days=60))
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(text(FILL), {"rows": rows, "start": begin})
        for index in source_indexes(table):
            index.create(conn)
        conn.execute(text("ANALYZE"))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    print(f"{rows:,} rows in {path}, built in {time.perf_counter() - started:.1f} s",
          flush=True)


def sqlite3(path: Path, sql: str) -> str:
    return subprocess.run(["sqlite3", str(path), sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def median(results: list[Measurement]) -> Measurement:
    ordered = sorted(results, key=lambda m: m.seconds)
    middle = ordered[len(ordered) // 2]
    return Measurement(middle.label, middle.seconds, max(m.peak_rss_mb for m in results), 0,
                       statistics.median(m.cpu_seconds for m in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs each; median shown")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--only", choices=("delete", "archive"), default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="opsctl-bench-sqlite-logs-"))
    template, db, archive = work / "template.db", work / "logs.db", work / "archive"
    env = {"OPSCTL_DATABASE__URL": f"sqlite:///{db}", "HOME": str(work),
           "XDG_CONFIG_HOME": str(work), "XDG_STATE_HOME": str(work),
           "PYTHONPATH": str(REPO)}
    build(template, args.rows, {**env, "OPSCTL_DATABASE__URL": f"sqlite:///{template}"})
    cutoff = stamp(datetime.now(UTC) - timedelta(days=30))
    old = f"created_at < '{cutoff}'"
    print(f"{int(sqlite3(template, f'SELECT count(*) FROM export_logs WHERE {old}')):,} "
          f"rows older than 30 days; load {os.getloadavg()[0]:.2f}", flush=True)
    delete = ["sqlite3", str(db), f"DELETE FROM export_logs WHERE {old}"]
    fields = ", ".join(f"'{c}', {c}" for c in COLUMNS)
    select = f"SELECT json_object({fields}) FROM export_logs WHERE {old} ORDER BY id"
    out = work / "peer.jsonl.gz"
    pipeline = (f"sqlite3 {shlex.quote(str(db))} {shlex.quote(select)} | gzip -1 > "
                f"{shlex.quote(str(out))} && {shlex.join(delete)}")
    batch = ["--batch-size", str(args.batch_size)]
    cases = []
    if args.only in (None, "delete"):
        cases += [("delete", "sqlite3 DELETE", delete, False),
                  ("ours-delete", f"opsctl --no-archive (batch {args.batch_size})",
                   opsctl_argv("logs", "cleanup", "--no-archive", *batch), False)]
    if args.only in (None, "archive"):
        cases += [("peer-archive", "sqlite3 json_object | gzip -1 + DELETE", pipeline, True),
                  ("ours-archive", f"opsctl --archive file:// (batch {args.batch_size})",
                   opsctl_argv("logs", "cleanup", "--archive", "--archive-uri",
                               archive.as_uri(), *batch), False)]
    runs: dict[str, list[Measurement]] = {}
    loads: list[float] = []
    for _ in range(args.runs):
        for key, label, argv, shell in cases:
            shutil.rmtree(archive, ignore_errors=True)
            out.unlink(missing_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(template, db)
            loads.append(os.getloadavg()[0])
            result = measure(label, argv, env, shell=shell)
            left = int(sqlite3(db, f"SELECT count(*) FROM export_logs WHERE {old}"))
            if result.exit_code != 0 or left:
                raise SystemExit(f"{label}: exit {result.exit_code}, {left} old rows left")
            runs.setdefault(key, []).append(result)
    m = {key: median(results) for key, results in runs.items()}
    print(f"\nload average during the runs: median {statistics.median(loads):.2f}, "
          f"max {max(loads):.2f} ({os.cpu_count()} cores)")
    for key, results in runs.items():
        print(f"  {m[key].label:<45} wall " + " ".join(f"{r.seconds:.3f}" for r in results)
              + f"  cpu median {m[key].cpu_seconds:.3f} s")
    if "ours-delete" in m:
        report(f"(a) SQLite delete, {args.rows:,} rows, batch {args.batch_size}",
               m["ours-delete"], m["delete"], target_ratio=2.0)
        print(f"  cpu ratio = {m['ours-delete'].cpu_seconds / m['delete'].cpu_seconds:.2f}")
    if "ours-archive" in m:
        report(f"(b) SQLite archive + delete, {args.rows:,} rows, batch {args.batch_size}",
               m["ours-archive"], m["peer-archive"], target_ratio=2.5, rss_limit_mb=150)
        print(f"  cpu ratio = "
              f"{m['ours-archive'].cpu_seconds / m['peer-archive'].cpu_seconds:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
