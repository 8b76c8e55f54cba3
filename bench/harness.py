"""What every benchmark shares: run a command, time it, read its peak RSS, print ratios.

Benchmarks compare opsctl with the plain tool doing the same work on the same data
(psql, find -delete, gzip), so a figure means something on any machine: the ratio.
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PG_URL = os.environ.get("OPSCTL_BENCH_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Measurement:
    label: str
    seconds: float
    peak_rss_mb: float
    exit_code: int
    # User + system CPU of the child: on a busy shared machine wall time mostly measures
    # the wait for a core, CPU time what the run itself cost.
    cpu_seconds: float = 0.0


def measure(label: str, argv: Sequence[str] | str, env: Mapping[str, str] | None = None,
            *, shell: bool = False, stdin: bytes | None = None,
            expected: Sequence[int] = (0, 1)) -> Measurement:
    """Run once; wall time and the child's peak RSS (from wait4's rusage)."""
    full_env = {**os.environ, **(env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=full_env, shell=shell, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    if stdin:
        proc.stdin.write(stdin)
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in expected:
        shown = argv if isinstance(argv, str) else shlex.join(argv)
        print(f"  ! {label} exited {proc.returncode}: {shown}\n{err[-2000:]}", file=sys.stderr)
    # ru_maxrss is in KiB on Linux.
    return Measurement(label, seconds, usage.ru_maxrss / 1024, proc.returncode,
                       usage.ru_utime + usage.ru_stime)


def best_of(runs: int, label: str, argv: Sequence[str] | str,
            env: Mapping[str, str] | None = None, *, shell: bool = False,
            setup: object = None) -> Measurement:
    """Median of ``runs`` measurements (``setup()`` before each, untimed)."""
    results = []
    for _ in range(runs):
        if callable(setup):
            setup()
        results.append(measure(label, argv, env, shell=shell))
    seconds = statistics.median(m.seconds for m in results)
    rss = max(m.peak_rss_mb for m in results)
    return Measurement(label, seconds, rss, results[-1].exit_code)


def report(title: str, ours: Measurement, peer: Measurement, target_ratio: float | None = None,
           rss_limit_mb: float | None = None) -> float:
    ratio = ours.seconds / peer.seconds if peer.seconds else float("inf")
    verdict = ""
    if target_ratio is not None:
        met = "met" if ratio <= target_ratio else "MISSED"
        verdict = f"  (target <= {target_ratio:.1f}: {met})"
    print(f"\n== {title}")
    print(f"  {peer.label:<40} {peer.seconds:8.3f} s")
    print(f"  {ours.label:<40} {ours.seconds:8.3f} s   peak RSS {ours.peak_rss_mb:6.1f} MB"
          + (f" (limit {rss_limit_mb:.0f} MB: "
             f"{'met' if ours.peak_rss_mb <= rss_limit_mb else 'MISSED'})"
             if rss_limit_mb else ""))
    print(f"  ratio opsctl/peer = {ratio:.2f}{verdict}")
    return ratio


def opsctl_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "opsctl", "--output", "json", *args]


def psql_argv(url: str, sql: str) -> list[str]:
    """psql with the same database as a SQLAlchemy URL (driver suffix removed)."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    return ["psql", plain, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]


EXPORT_LOGS_DDL = """
DROP TABLE IF EXISTS export_logs;
CREATE TABLE export_logs (
  id bigserial PRIMARY KEY, export_id varchar(36) NOT NULL, user_id text NOT NULL,
  format varchar(32) NOT NULL, status varchar(32) NOT NULL,
  conversation_count integer NOT NULL DEFAULT 0, duration_ms integer,
  file_size_bytes bigint, file_path text, error_type text, error_message text,
  created_at timestamptz NOT NULL, expires_at timestamptz);
"""
"""The contract's source table as the benchmarks build it with plain SQL."""


def generated_rows(rows: int, now: str = "now()") -> str:
    """A SELECT of ``rows`` export rows, ``created_at`` spread evenly over the 60 days
    before ``now`` (an SQL expression) and growing with the id, 10 % failed (with a quoted
    and backslashed message), each expiring 7 days after its creation."""
    return f"""
SELECT g::bigint AS id, md5(g::text)::uuid::text AS export_id, 'user-' || (g % 1000) AS user_id,
  (ARRAY['json','jsonl','csv'])[1 + g % 3] AS format,
  CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'completed' END AS status,
  g % 50 AS conversation_count, 100 + g % 5000 AS duration_ms,
  1000 + (g * 7) % 100000 AS file_size_bytes, 'exports/' || g || '.json' AS file_path,
  CASE WHEN g % 10 = 0 THEN 'timeout' END AS error_type,
  CASE WHEN g % 10 = 0 THEN 'export timed out after 30s: "quoted", back\\slash' END
    AS error_message,
  {now} - interval '60 days' + (g::float8 / {rows}) * interval '60 days' AS created_at,
  {now} - interval '53 days' + (g::float8 / {rows}) * interval '60 days' AS expires_at
FROM generate_series(1, {rows}) AS g"""


def server_url(database: str) -> str:
    """The benchmark server's URL with another database name (its own, or ``postgres``)."""
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{database}"


def psql(url: str, sql: str) -> str:
    """Run a script through psql on standard input; its unaligned output, stripped."""
    argv = psql_argv(url, "")[:-2]
    result = subprocess.run([*argv, "-At", "-f", "-"], input=sql, check=True,
                            capture_output=True, text=True)
    return result.stdout.strip()


def build_pg_table(table: str, fill_sql: str, params: dict[str, object]) -> float:
    """(Re)create the source table on PostgreSQL, fill it with one INSERT ... SELECT, index
    and analyse it; return the seconds it took."""
    from sqlalchemy import create_engine, text

    from opsctl.adapters.db.tables import source_indexes, source_table

    engine = create_engine(PG_URL)
    source = source_table(table, {})
    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            source.drop(conn, checkfirst=True)
            source.create(conn)
            conn.execute(text(fill_sql), params)
            for index in source_indexes(source):
                index.create(conn)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    finally:
        engine.dispose()
    return time.perf_counter() - started
