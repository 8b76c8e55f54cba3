"""``opsctl logs restore`` and ``opsctl logs verify`` against the plain tools doing the
same work on the same archive objects.

    python bench/logs_restore.py [--rows N[,N...]] [--runs K]

For each N, N rows (all past the retention) are archived once by the real ``logs cleanup
--archive`` into a local directory (5,000 rows per object) and catalogued; then, with the
table emptied (untimed) before every run, peer and opsctl alternate K times and the
medians are compared:

(a) ``logs restore`` vs ``zcat objects | psql`` into ``\\copy`` of a one-column ``jsonb``
    staging table, then ``INSERT ... SELECT (jsonb_populate_record(...)).* ... WHERE NOT
    EXISTS`` the id (the CSV quote/delimiter are control characters, so psql passes each
    line verbatim, as opsctl does). target: ratio <= 1.5; peak RSS <= 150 MB, the same at
    every N.
(b) ``logs verify`` vs ``zcat objects | sha256sum``. target: ratio <= 1.3.

Default N is 100,000 (a couple of minutes); ``--rows 100000,500000`` shows memory stays
flat as the archive grows. Uses its own database (``opsctl_bench_restore``), dropped at the end.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    EXPORT_LOGS_DDL,
    Measurement,
    measure,
    opsctl_argv,
    psql,
    psql_argv,
    report,
    server_url,
)

REPO = Path(__file__).resolve().parents[1]
DATABASE = "opsctl_bench_restore"

FILL_SQL = EXPORT_LOGS_DDL + """
INSERT INTO export_logs
SELECT g::bigint, md5(g::text)::uuid::text, 'user-' || (g % 1000),
  (ARRAY['json','jsonl','csv'])[1 + g % 3],
  CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'completed' END,
  g % 50, 100 + g % 5000, 1000 + (g * 7) % 100000, 'exports/' || g || '.json',
  CASE WHEN g % 10 = 0 THEN 'timeout' END,
  CASE WHEN g % 10 = 0 THEN 'export timed out after 30s: "quoted", back\\slash é' END,
  now() - interval '90 days' + (g::float8 / {rows}) * interval '50 days',
  now() - interval '83 days' + (g::float8 / {rows}) * interval '50 days'
FROM generate_series(1, {rows}) AS g;
CREATE INDEX ix_export_logs_created_at ON export_logs (created_at);
VACUUM ANALYZE export_logs;
"""

PEER_SQL = [
    "CREATE TEMP TABLE staging (doc jsonb)",
    "\\copy staging (doc) FROM STDIN (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')",
    "INSERT INTO export_logs SELECT r.* FROM staging s, "
    "jsonb_populate_record(NULL::export_logs, s.doc) r "
    "WHERE NOT EXISTS (SELECT 1 FROM export_logs t WHERE t.id = r.id)",
]


def catalogue(url: str, root: Path) -> None:
    """Catalog rows for objects the cleanup did not record (what its delete transaction
    writes once the catalog is filled there)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        for path in sorted((root / "export_logs").glob("*.jsonl.gz")):
            data = path.read_bytes()
            lines = gzip.decompress(data).splitlines()
            first, last = json.loads(lines[0]), json.loads(lines[-1])
            conn.execute(text(
                "INSERT INTO opsctl_archive_objects (uri, key, source_table, first_id, "
                "last_id, rows, bytes, sha256, min_created_at, max_created_at, created_at) "
                "VALUES (:uri, :key, 'export_logs', :first, :last, :rows, :bytes, :sha, "
                ":low, :high, :now) ON CONFLICT (uri, key) DO NOTHING"),
                {"uri": root.as_uri(), "key": f"export_logs/{path.name}",
                 "first": first["id"], "last": last["id"], "rows": len(lines),
                 "bytes": len(data), "sha": hashlib.sha256(data).hexdigest(),
                 "low": first["created_at"], "high": last["created_at"],
                 "now": datetime.now(UTC)})
    engine.dispose()


def median(results: list[Measurement]) -> Measurement:
    ordered = sorted(results, key=lambda m: m.seconds)
    middle = ordered[len(ordered) // 2]
    return Measurement(middle.label, middle.seconds, max(m.peak_rss_mb for m in results), 0)


def bench(rows: int, runs: int, work: Path) -> dict[str, Measurement]:
    url = server_url(DATABASE)
    psql(url, FILL_SQL.format(rows=rows))
    env = {"OPSCTL_DATABASE__URL": url, "HOME": str(work), "XDG_CONFIG_HOME": str(work),
           "XDG_STATE_HOME": str(work), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    archive = work / f"archive-{rows}"
    # --force: every row is past the retention, which the deletion guard rightly refuses.
    subprocess.run(opsctl_argv("logs", "cleanup", "--archive", "--archive-uri",
                               archive.as_uri(), "--batch-size", "5000", "--force"),
                   env=env, check=True, capture_output=True)
    catalogue(url, archive)
    objects = sorted((archive / "export_logs").glob("*.jsonl.gz"))
    files = " ".join(shlex.quote(str(p)) for p in objects)
    peer_restore = (f"zcat {files} | " + shlex.join(
        [*psql_argv(url, "")[:-2], *(a for sql in PEER_SQL for a in ("-c", sql))]))
    peer_verify = f"zcat {files} | sha256sum"
    ours_restore = opsctl_argv("logs", "restore", "--archive-uri", archive.as_uri())
    ours_verify = opsctl_argv("logs", "verify", "--archive-uri", archive.as_uri())
    found: dict[str, list[Measurement]] = {}
    for _ in range(runs):
        for key, label, argv, shell in (
            ("peer-restore", "zcat | psql \\copy jsonb + INSERT", peer_restore, True),
            ("ours-restore", "opsctl logs restore", ours_restore, False),
            ("peer-verify", "zcat | sha256sum", peer_verify, True),
            ("ours-verify", "opsctl logs verify", ours_verify, False),
        ):
            if key.endswith("restore"):
                psql(url, "TRUNCATE export_logs; CHECKPOINT;")
            result = measure(label, argv, env, shell=shell)
            if result.exit_code != 0:
                raise SystemExit(f"{label} exited {result.exit_code}")
            if key.endswith("restore"):
                restored = int(psql(url, "SELECT count(*) FROM export_logs"))
                if restored != rows:
                    raise SystemExit(f"{label} restored {restored} of {rows} rows")
            found.setdefault(key, []).append(result)
    return {key: median(results) for key, results in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000", help="comma-separated row counts")
    parser.add_argument("--runs", type=int, default=3, help="timed runs each; median shown")
    args = parser.parse_args()
    admin = server_url("postgres")
    psql(admin, f'DROP DATABASE IF EXISTS "{DATABASE}"')
    psql(admin, f'CREATE DATABASE "{DATABASE}"')
    work = Path(tempfile.mkdtemp(prefix="opsctl-bench-restore-"))
    try:
        subprocess.run(opsctl_argv("db", "init"), check=True, capture_output=True,
                       env={"OPSCTL_DATABASE__URL": server_url(DATABASE),
                            "PYTHONPATH": str(REPO), "HOME": str(work),
                            "PATH": "/usr/bin:/bin"})
        rss = {}
        for rows in (int(n) for n in args.rows.split(",")):
            print(f"archiving {rows:,} rows ...", flush=True)
            m = bench(rows, args.runs, work)
            report(f"(a) logs restore, {rows:,} archived rows into PostgreSQL",
                   m["ours-restore"], m["peer-restore"], target_ratio=1.5, rss_limit_mb=150)
            report(f"(b) logs verify, the same {rows:,} rows", m["ours-verify"],
                   m["peer-verify"], target_ratio=1.3)
            rss[rows] = (m["ours-restore"].peak_rss_mb, m["ours-verify"].peak_rss_mb)
        print("\npeak RSS (restore, verify) by rows: " + ", ".join(
            f"{n:,}: {r:.0f} MB / {v:.0f} MB" for n, (r, v) in rss.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        psql(admin, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    main()
