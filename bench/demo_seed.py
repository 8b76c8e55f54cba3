"""`opsctl demo seed` against the plain loaders writing the same rows and files.

The rows (and files) opsctl would generate are written once, untimed, to a CSV file and a
tar archive; the peers then only load them: psql ``\\copy`` + the two indexes on PostgreSQL,
``sqlite3 .import`` + the indexes on SQLite, and ``tar -x`` for the files. opsctl does the
whole job in each measure: start-up, generating the rows, loading them, its own tables.

    python bench/demo_seed.py [--rows N] [--runs N] [--no-files]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import sys
import tarfile
import tempfile
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from harness import PG_URL, best_of, opsctl_argv, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = "bench_demo_seed_exports"
SEED = 2026
COLUMNS = ("export_id, user_id, format, status, conversation_count, duration_ms, "
           "file_size_bytes, file_path, error_type, error_message, created_at, expires_at")
DDL = """CREATE TABLE {name} ({id}
  export_id VARCHAR(36) NOT NULL, user_id TEXT NOT NULL,
  format VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL, conversation_count INTEGER NOT NULL,
  duration_ms INTEGER, file_size_bytes BIGINT, file_path TEXT, error_type TEXT,
  error_message TEXT, created_at {time_type} NOT NULL, expires_at {time_type});"""
INDEXES = (f"CREATE INDEX ix_{TABLE}_created_at ON {TABLE} (created_at);\n"
           f"CREATE INDEX ix_{TABLE}_expires_at ON {TABLE} (expires_at);\n")


def prepare(rows: int, work: Path, with_files: bool) -> tuple[Path, Path | None]:
    """The same rows as opsctl makes, as CSV, and their files as a tar (both untimed)."""
    from opsctl.jobs.demo_seed import document, generate

    csv_path, tar_path = work / "rows.csv", work / "files.tar"
    files = 0
    with csv_path.open("w", newline="") as handle, \
            tarfile.open(tar_path, "w") if with_files else nullcontext() as archive:
        writer = csv.writer(handle)
        for export in generate(SEED, rows, 45, datetime.now(UTC)):
            writer.writerow(["" if v is None else v for v in export.row])
            if archive is not None and export.has_file and export.row.file_path:
                data = document(export.row)
                info = tarfile.TarInfo(export.row.file_path)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
                files += 1
    print(f"{rows:,} rows prepared ({csv_path.stat().st_size / 1e6:.1f} MB CSV"
          + (f", {files:,} files in a {tar_path.stat().st_size / 1e6:.1f} MB tar)" if with_files
             else ")"))
    return csv_path, tar_path if with_files else None


def plain_pg_url() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def bench_postgres(rows: int, runs: int, csv_path: Path, work: Path) -> None:
    script = work / "load.sql"
    script.write_text(
        f"DROP TABLE IF EXISTS {TABLE};\n"
        + DDL.format(name=TABLE, id="id BIGSERIAL PRIMARY KEY,", time_type="TIMESTAMPTZ")
        + "\n"
        + f"\\copy {TABLE} ({COLUMNS}) FROM '{csv_path}' WITH (FORMAT csv)\n"
        + INDEXES + f"ANALYZE {TABLE};\n")
    drop = ["psql", plain_pg_url(), "-X", "-q", "-c", f"DROP TABLE IF EXISTS {TABLE}"]
    peer = best_of(runs, "psql \\copy + indexes", ["psql", plain_pg_url(), "-X", "-q", "-v",
                   "ON_ERROR_STOP=1", "-1", "-f", str(script)])
    env = {"OPSCTL_DATABASE__URL": PG_URL, "OPSCTL_SOURCE__TABLE": TABLE}
    ours = best_of(runs, "opsctl demo seed --no-files",
                   opsctl_argv("demo", "seed", "--rows", str(rows), "--seed", str(SEED),
                               "--no-files"), env, setup=lambda: _run(drop))
    report(f"PostgreSQL: {rows:,} rows", ours, peer)
    _run(drop)


def bench_sqlite(rows: int, runs: int, csv_path: Path, tar_path: Path | None,
                 work: Path) -> None:
    db, root = work / "bench.db", work / "exports"
    script = work / "load.sqlite"
    script.write_text(
        "PRAGMA journal_mode = WAL;\nBEGIN;\n"
        + DDL.format(name=TABLE, id="id INTEGER PRIMARY KEY,", time_type="DATETIME") + "\n"
        # .import fills a table column by column, so the rows land in a table without the
        # id first (a missing id column would cost a warning per row).
        + DDL.format(name="staging", id="", time_type="DATETIME") + "\n"
        + f".import --csv {csv_path} staging\n"
        + f"INSERT INTO {TABLE} ({COLUMNS}) SELECT * FROM staging;\nDROP TABLE staging;\n"
        + INDEXES + "COMMIT;\n")

    def reset() -> None:
        for path in work.glob("bench.db*"):
            path.unlink()
        shutil.rmtree(root, ignore_errors=True)
        # Start every run with no dirty pages: otherwise a run pays for the write-back of
        # the previous run's ~100 MB of files, whichever tool it was.
        os.sync()

    env = {"OPSCTL_DATABASE__URL": f"sqlite:///{db}", "OPSCTL_SOURCE__TABLE": TABLE,
           "OPSCTL_STORAGE__ROOT": str(root)}
    seed = opsctl_argv("demo", "seed", "--rows", str(rows), "--seed", str(SEED))
    peer = best_of(runs, "sqlite3 .import + indexes", ["sqlite3", str(db), f".read {script}"],
                   setup=reset)
    ours = best_of(runs, "opsctl demo seed --no-files", [*seed, "--no-files"], env,
                   setup=reset)
    report(f"SQLite: {rows:,} rows", ours, peer)
    if tar_path is not None:
        both = work / "load.sh"
        both.write_text(f"set -e\nsqlite3 '{db}' '.read {script}'\nmkdir -p '{root}'\n"
                        f"tar -xf '{tar_path}' -C '{root}'\n")
        peer = best_of(runs, "sqlite3 .import + tar -x", ["sh", str(both)], setup=reset)
        ours = best_of(runs, "opsctl demo seed (rows + files)", seed, env, setup=reset)
        report(f"SQLite: {rows:,} rows and their files", ours, peer)
    reset()


def _run(argv: list[str]) -> None:
    import subprocess

    subprocess.run(argv, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-files", action="store_true", help="skip the files measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-seed-") as tmp:
        work = Path(tmp)
        csv_path, tar_path = prepare(args.rows, work, not args.no_files)
        bench_postgres(args.rows, args.runs, csv_path, work)
        bench_sqlite(args.rows, args.runs, csv_path, tar_path, work)


if __name__ == "__main__":
    main()
