"""``opsctl files audit`` against the plain tools doing the same work on the same files.

    python bench/files_audit.py [--files N[,N...]] [--runs K]

For each N, N files under a local root (sharded over 100 directories) and N rows in
PostgreSQL, of which 1 % point at files that do not exist and 1 % of the files have no
row. Peer and opsctl alternate K times; medians are compared:

    ``find root -type f -printf '%P\\n' | LC_ALL=C sort`` + ``psql`` (``file_path``
    ``ORDER BY file_path COLLATE "C"``) + ``LC_ALL=C comm -3``
    vs ``opsctl files audit --min-age 0``.
    target: ratio <= 2, and opsctl's peak RSS flat from the smallest N to the largest.

The peer does less than the audit (no sizes, no mtimes, no completed-or-not, no JSON
summary); that is the point of the comparison. Default N: 10,000 and 100,000. Uses its own
database (``opsctl_bench_audit``), dropped at the end.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
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
DATABASE = "opsctl_bench_audit"

FILL_SQL = EXPORT_LOGS_DDL + """
INSERT INTO export_logs (export_id, user_id, format, status, file_path, created_at)
SELECT md5(g::text)::uuid::text, 'u', 'json', 'completed',
  'd' || (g % 100) || '/' || g || '.json', now()
FROM generate_series(1, {rows}) AS g;
VACUUM ANALYZE export_logs;
"""


def make_files(root: Path, count: int) -> None:
    """Files for rows 1..count except every 100th; plus count/100 files with no row."""
    shutil.rmtree(root, ignore_errors=True)
    for shard in range(100):
        (root / f"d{shard}").mkdir(parents=True)
    for g in range(1, count + 1):
        if g % 100:
            (root / f"d{g % 100}" / f"{g}.json").write_bytes(b"{}")
    for extra in range(count // 100):
        (root / f"d{extra % 100}" / f"orphan-{extra}.json").write_bytes(b"{}")


def median(results: list[Measurement]) -> Measurement:
    ordered = sorted(results, key=lambda m: m.seconds)
    middle = ordered[len(ordered) // 2]
    return Measurement(middle.label, middle.seconds, max(m.peak_rss_mb for m in results), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="10000,100000", help="comma-separated counts")
    parser.add_argument("--runs", type=int, default=3, help="timed runs each; median shown")
    args = parser.parse_args()
    admin, url = server_url("postgres"), server_url(DATABASE)
    psql(admin, f'DROP DATABASE IF EXISTS "{DATABASE}"')
    psql(admin, f'CREATE DATABASE "{DATABASE}"')
    work = Path(tempfile.mkdtemp(prefix="opsctl-bench-audit-"))
    rss: dict[int, float] = {}
    try:
        for count in (int(n) for n in args.files.split(",")):
            print(f"making {count:,} files and rows ...", flush=True)
            root = work / "exports"
            make_files(root, count)
            psql(url, FILL_SQL.format(rows=count))
            env = {"OPSCTL_DATABASE__URL": url, "OPSCTL_STORAGE__ROOT": str(root),
                   "HOME": str(work), "XDG_STATE_HOME": str(work), "PYTHONPATH": str(REPO),
                   "PATH": "/usr/bin:/bin"}
            query = 'SELECT file_path FROM export_logs WHERE file_path IS NOT NULL ' \
                    'ORDER BY file_path COLLATE "C"'
            listed, table = shlex.quote(str(work / "listed")), shlex.quote(str(work / "table"))
            peer = (f"find {shlex.quote(str(root))} -type f -printf '%P\\n' | LC_ALL=C sort "
                    f"> {listed} && {shlex.join([*psql_argv(url, query), '-At'])} > {table} "
                    f"&& LC_ALL=C comm -3 {listed} {table} | wc -l")
            ours = opsctl_argv("files", "audit", "--min-age", "0")
            found: dict[str, list[Measurement]] = {}
            for _ in range(args.runs):
                for key, label, argv, shell in (
                    ("peer", "find | sort + psql + comm", peer, True),
                    ("ours", "opsctl files audit", ours, False),
                ):
                    result = measure(label, argv, env, shell=shell)
                    if result.exit_code not in (0, 1):
                        raise SystemExit(f"{label} exited {result.exit_code}")
                    found.setdefault(key, []).append(result)
            m = {key: median(results) for key, results in found.items()}
            report(f"files audit, {count:,} files and rows", m["ours"], m["peer"],
                   target_ratio=2)
            rss[count] = m["ours"].peak_rss_mb
        print("\npeak RSS by files: " + ", ".join(f"{n:,}: {r:.0f} MB" for n, r in rss.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        psql(admin, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    main()
