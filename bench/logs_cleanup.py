"""``opsctl logs cleanup`` against psql doing the same work on the same PostgreSQL table.

    python bench/logs_cleanup.py [--rows N] [--runs K] [--batch-sizes 2000,5000,10000]
                                 [--only a,b,b',c] [--regenerate]

The table (primary key, the README's ``(created_at, id)`` index, and the plain
``(created_at)`` index the peers are at their best with: with the two-column index alone
the planner rates its order lower and psql's DELETE of a tenth of 10M rows turns to a
sequential scan, 2.4 s instead of 0.7 s) holds N rows spread evenly over 60 days, so about
half are older than the 30-day retention. It is rebuilt (untimed) before every timed run,
from a template table of N rows generated with ``generate_series``. The template is kept
between invocations (one per size: 10M rows take minutes to generate) and its timestamps
are shifted by its age on every rebuild, so a reused template holds the same share of
eligible rows as a new one; ``--regenerate`` makes it anew. Peer and opsctl runs alternate
and the medians of K runs are compared, so a machine that gets busier halfway slows both
sides alike.
``--only`` measures some parts alone (each timed run costs a rebuild, minutes at 10M):
``a``, ``b``, ``b'`` (quote it in a shell) and ``c``.

(a) ``logs cleanup --no-archive`` vs ``psql -c "DELETE ... WHERE created_at < cutoff"``
    target: ratio <= 2
(b) ``logs cleanup --archive --archive-uri file:///...`` vs
    ``psql \\copy (SELECT row_to_json(t) ...) TO STDOUT | gzip > file`` then the DELETE
    target: ratio <= 2, opsctl's peak RSS <= 150 MB and flat as the table grows
    (run once with --rows 200000 and once with the default to compare); against the
    same peer at ``gzip -1`` (b'), target: ratio <= 0.8.
(c) each delete-only batch timed in-process: slowest <= 3x the median batch.

At scale (opt-in, generating takes minutes), a tenth of the rows eligible:
``--rows 10000000 --runs 1 --retention-days 54``.

The peer of (b) gzips at gzip's default level 6; opsctl's default level is 1, so the same
peer at ``gzip -1`` is also shown. Note that the peer's output is not valid JSON lines
whenever a value holds a backslash (COPY's text format doubles it); opsctl undoes that.
Runs pass ``--force``: earlier runs of other sizes in the same database would trip the
deletion guard's anomaly rule, which is not what is measured. Uses its own database
(``opsctl_bench_logs``) on the server of OPSCTL_BENCH_DATABASE_URL so it never touches
another benchmark's table.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    EXPORT_LOGS_DDL,
    Measurement,
    best_of,
    generated_rows,
    opsctl_argv,
    psql,
    psql_argv,
    report,
    server_url,
)

REPO = Path(__file__).resolve().parents[1]
DATABASE = "opsctl_bench_logs"
# The retention (--retention-days): 30 leaves half the rows eligible, 54 a tenth.
RETENTION = {"days": 30}


def cutoff() -> str:
    return f"now() - interval '{RETENTION['days']} days'"

PARTS = ("a", "b", "b'", "c")


def template_name(rows: int) -> str:
    return f"export_logs_template_{rows}"


def template_sql(rows: int) -> str:
    """The template of ``rows`` rows, stamped with the time it was generated (its
    ``made_at`` column, the same on every row, shifts the timestamps on rebuild)."""
    name = template_name(rows)
    return (f"DROP TABLE IF EXISTS {name};\n"
            f"CREATE TABLE {name} AS SELECT t.*, now() AS made_at "
            f"FROM ({generated_rows(rows)}) AS t;")


def table_sql(rows: int) -> str:
    """The source table from the template, every timestamp moved on by the template's
    age, so the rows hold the same place relative to now() as when they were generated."""
    shift = "(now() - made_at)"
    return EXPORT_LOGS_DDL + f"""
INSERT INTO export_logs SELECT id, export_id, user_id, format, status, conversation_count,
  duration_ms, file_size_bytes, file_path, error_type, error_message,
  created_at + {shift}, expires_at + {shift}
FROM {template_name(rows)} ORDER BY id;
CREATE INDEX ix_export_logs_created_at_id ON export_logs (created_at, id);
CREATE INDEX ix_export_logs_created_at ON export_logs (created_at);
VACUUM ANALYZE export_logs;
CHECKPOINT;
"""


def prepare(url: str, rows: int, regenerate: bool) -> None:
    admin = server_url("postgres")
    if psql(admin, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'") != "1":
        psql(admin, f'CREATE DATABASE "{DATABASE}"')
    name = template_name(rows)
    kept = psql(url, f"SELECT to_regclass('{name}') IS NOT NULL") == "t"
    if regenerate or not kept or psql(url, f"SELECT count(*) FROM {name}") != str(rows):
        psql(url, template_sql(rows))


def rebuild(url: str, rows: int) -> None:
    # Through stdin, not -c: VACUUM cannot run inside the one transaction -c would make.
    argv = psql_argv(url, "")[:-2]
    subprocess.run([*argv, "-f", "-"], input=table_sql(rows).encode(), check=True,
                   capture_output=True)


def old_rows(url: str) -> int:
    return int(psql(url, f"SELECT count(*) FROM export_logs WHERE created_at < {cutoff()}"))


def checked(url: str, measurement: Measurement) -> Measurement:
    left = old_rows(url)
    if measurement.exit_code != 0 or left > 100:  # a few rows age past the cutoff meanwhile
        raise SystemExit(f"{measurement.label}: exit {measurement.exit_code}, "
                         f"{left} old rows left")
    return measurement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs each; median shown")
    parser.add_argument("--batch-sizes", default="5000",
                        help="comma-separated --batch-size values to measure")
    parser.add_argument("--retention-days", type=int, default=30,
                        help="30: half the rows eligible; 54: a tenth (the scale figure)")
    parser.add_argument("--only", default=",".join(PARTS),
                        help="comma-separated parts to measure: a, b, b' (quoted), c")
    parser.add_argument("--regenerate", action="store_true",
                        help="generate the template anew even when one of this size is kept")
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    if not only or only - set(PARTS):
        parser.error(f"--only takes parts among {', '.join(PARTS)}, got {args.only!r}")
    RETENTION["days"] = args.retention_days
    url = server_url(DATABASE)
    print(f"preparing {args.rows:,} rows in {DATABASE} ...", flush=True)
    prepare(url, args.rows, args.regenerate)
    rebuild(url, args.rows)
    print(f"{old_rows(url):,} rows older than {RETENTION['days']} days", flush=True)
    work = Path(tempfile.mkdtemp(prefix="opsctl-bench-logs-"))
    env = {"OPSCTL_DATABASE__URL": url, "HOME": str(work), "XDG_CONFIG_HOME": str(work),
           "XDG_STATE_HOME": str(work), "PYTHONPATH": str(REPO)}
    subprocess.run(opsctl_argv("db", "init"), env={**env, "PATH": "/usr/bin:/bin"},
                   check=True, capture_output=True)
    archive = work / "archive"

    def fresh() -> None:
        shutil.rmtree(archive, ignore_errors=True)
        (work / "peer.jsonl.gz").unlink(missing_ok=True)
        rebuild(url, args.rows)

    def once(label: str, argv: list[str] | str, through_shell: bool = False) -> Measurement:
        fresh()
        return checked(url, best_of(1, label, argv, env, shell=through_shell))

    def median(results: list[Measurement]) -> Measurement:
        ordered = sorted(results, key=lambda m: m.seconds)
        middle = ordered[len(ordered) // 2]
        return Measurement(middle.label, middle.seconds, max(m.peak_rss_mb for m in results), 0)

    delete = psql_argv(url, f"DELETE FROM export_logs WHERE created_at < {cutoff()}")
    copy = psql_argv(url, f"\\copy (SELECT row_to_json(t) FROM export_logs t "
                          f"WHERE created_at < {cutoff()}) TO STDOUT")
    out = shlex.quote(str(work / "peer.jsonl.gz"))
    # A shell pipeline is the peer being measured: psql piped into gzip, then the DELETE.
    pipelines = {level: f"{shlex.join(copy)} | gzip {level} > {out} && {shlex.join(delete)}"
                 for level in ("-6", "-1")}
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    for size in sizes:
        batch = ["--batch-size", str(size), "--retention-days", str(RETENTION["days"])]
        runs: dict[str, list[Measurement]] = {}
        # Peer and opsctl alternate, run after run, so a busy machine slows both alike.
        for _ in range(args.runs):
            for key, parts, label, argv, shell in (
                ("delete", {"a"}, "psql DELETE", delete, False),
                ("ours-delete", {"a"}, f"opsctl --no-archive (batch {size})",
                 opsctl_argv("logs", "cleanup", "--no-archive", "--force", *batch), False),
                ("-6", {"b"}, "psql \\copy | gzip -6 + DELETE", pipelines["-6"], True),
                ("-1", {"b'"}, "psql \\copy | gzip -1 + DELETE", pipelines["-1"], True),
                ("ours-archive", {"b", "b'"}, f"opsctl --archive file:// (batch {size})",
                 opsctl_argv("logs", "cleanup", "--force", "--archive", "--archive-uri",
                             archive.as_uri(), *batch), False),
            ):
                if parts & only:
                    runs.setdefault(key, []).append(once(label, argv, shell))
        m = {key: median(results) for key, results in runs.items()}
        if "a" in only:
            report(f"(a) delete, {args.rows:,}-row table, batch {size}", m["ours-delete"],
                   m["delete"], target_ratio=2)
        if "b" in only:
            report(f"(b) archive + delete, {args.rows:,}-row table, batch {size}",
                   m["ours-archive"], m["-6"], target_ratio=2, rss_limit_mb=150)
        if "b'" in only:
            report(f"(b') same, the peer at gzip -1 like opsctl, batch {size}",
                   m["ours-archive"], m["-1"], target_ratio=0.8, rss_limit_mb=150)
    if "c" in only:
        batch_times(url, fresh, sizes[0])
    shutil.rmtree(work, ignore_errors=True)


def batch_times(url: str, fresh: object, size: int) -> None:
    """(c) Each delete-only batch timed in-process: the last, short batch must cost what
    the others do (it once read every newer row to the end of the table)."""
    import statistics
    import time
    from datetime import UTC, datetime, timedelta

    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.old_logs import OldLogsRepository
    from opsctl.settings.data import SourceSettings

    assert callable(fresh)
    fresh()
    db = Database(url, pooled=True)
    repository = OldLogsRepository(db, SourceSettings())
    times: list[float] = []
    try:
        batches = repository.delete_batches(datetime.now(UTC) - timedelta(days=RETENTION["days"]),
                                             size)
        started = time.perf_counter()
        for _ in batches:
            now = time.perf_counter()
            times.append(now - started)
            started = now
    finally:
        repository.close()
        db.dispose()
    # The first includes the run's set-up: its connections and the upper bound (one
    # index range scan of created_at), paid once, not per batch.
    first, rest = times[0], times[1:] or times
    median = statistics.median(rest)
    worst = max(rest)
    print(f"\n== (c) delete-only batch times, batch {size}: {len(times)} batches; the first "
          f"(with the run's set-up) {first * 1000:.1f} ms; the others: median "
          f"{median * 1000:.1f} ms, slowest {worst * 1000:.1f} ms, last "
          f"{times[-1] * 1000:.1f} ms; slowest/median {worst / median:.2f} "
          f"(target <= 3: {'met' if worst <= 3 * median else 'MISSED'})")


if __name__ == "__main__":
    main()
