"""`opsctl files cleanup` against `find ROOT -type f -delete` plus one psql UPDATE.

Local: N expired rows on PostgreSQL, each with a 1-byte file spread over 256 directories
(the way export services shard by key). The peer deletes every file under the root and
marks every expired row in one statement; opsctl does the whole job (schema check, lock,
count, keyset batches, the safe descriptor-relative walk, an UPDATE per batch, the run
record). Target: ratio <= 2.

S3: the same job against a moto server, with moto's request recorder counting every
request opsctl makes, for two key layouts: ``dated`` (``2026/11/DD/<id>.json``, ids
increasing with time, as export services write them: a chunk lists in one or two pages)
and ``hashed`` (the 256 directories above: every chunk spans the whole prefix, the worst
case for the existence listing, bounded by its page cap). 2 % of the objects are already
gone and 1 % of the rows have no size. Target: a handful of requests per 1000 files, not
1000.

    python bench/files_cleanup.py [--rows N] [--s3-files N] [--s3-layout dated|hashed|both]
                                  [--runs N] [--batch-size N] [--dir DIR] [--no-sync]
                                  [--skip-s3]

At scale (opt-in, ``bench/files_cleanup_scale.py``): a table of ``--scale`` rows shaped like
a real one (60 days, 7 of them pending), ``--due`` of them due (default 6,400), against the
same peer, then with nothing due and the EXPLAIN ANALYZE of the run's SQL. Generating 10M
rows takes several minutes (the table is kept for the next invocation):

    python bench/files_cleanup.py --scale 10000000 [--due 6400] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import PG_URL, Measurement, best_of, measure, opsctl_argv, psql_argv, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = "bench_files_cleanup_exports"
DIRS = 256

FILL = f"""
INSERT INTO {TABLE} (export_id, user_id, format, status, conversation_count, duration_ms,
                     file_size_bytes, file_path, created_at, expires_at)
SELECT md5(g::text), 'user-' || (g % 997), 'json', 'completed', 1, 100,
       1, lpad(to_hex(g % {DIRS}), 2, '0') || '/' || g || '.json',
       now() - interval '10 days', now() - interval '1 day'
FROM generate_series(1, :rows) AS g
"""
RESET = f"UPDATE {TABLE} SET status = 'completed' WHERE status = 'expired'"
PEER_UPDATE = (f"UPDATE {TABLE} SET status = 'expired' WHERE expires_at < now() "
               "AND status <> 'expired' AND file_path IS NOT NULL")


def build(rows: int) -> None:
    from sqlalchemy import create_engine, text

    from opsctl.adapters.db.tables import source_indexes, source_table

    engine = create_engine(PG_URL)
    table = source_table(TABLE, {})
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
        conn.execute(text(FILL), {"rows": rows})
        for index in source_indexes(table):
            index.create(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {TABLE}"))
    engine.dispose()


def reset(rows: int, root: Path, sync: bool) -> None:
    """Every row expired-but-not-marked again, every file back (untimed).

    With ``sync`` the files are on disk before the timed run, as days-old exports are; an
    unlink then costs real I/O (ext4 with ``discard`` trims each freed block) and both
    sides mostly wait on the disk. Without it, both delete page-cache-only files and the
    ratio shows opsctl's own overhead.
    """
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(RESET))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {TABLE}"))
    engine.dispose()
    for d in range(DIRS):
        (root / f"{d:02x}").mkdir(parents=True, exist_ok=True)
    for g in range(1, rows + 1):
        with open(root / f"{g % DIRS:02x}" / f"{g}.json", "wb") as handle:
            handle.write(b"x")
    if sync:
        os.sync()


def local(rows: int, runs: int, batch_size: int | None, work: Path, sync: bool) -> None:
    root = work / "exports"
    started = time.perf_counter()
    build(rows)
    print(f"{rows:,} rows in {TABLE} built in {time.perf_counter() - started:.1f} s")
    env = {"OPSCTL_DATABASE__URL": PG_URL, "OPSCTL_SOURCE__TABLE": TABLE,
           "OPSCTL_STORAGE__ROOT": str(root), "PYTHONPATH": str(ROOT),
           "HOME": str(work), "XDG_STATE_HOME": str(work / "state")}
    measure("db init", opsctl_argv("db", "init"), env)  # once, like any installation
    peer_cmd = (f"find {shlex.quote(str(root))} -type f -delete && "
                + shlex.join(psql_argv(PG_URL, PEER_UPDATE)))
    peer = best_of(runs, "find -delete + psql UPDATE", peer_cmd, shell=True,  # noqa: S604
                   setup=lambda: reset(rows, root, sync))
    args = ["files", "cleanup"] + (["--batch-size", str(batch_size)] if batch_size else [])
    ours = best_of(runs, f"opsctl {' '.join(args)}", opsctl_argv(*args), env,
                   setup=lambda: reset(rows, root, sync))
    left = sum(len(files) for _, _, files in os.walk(root))
    if left or ours.exit_code != 0:
        print(f"  ! opsctl left {left} files, exit {ours.exit_code}", file=sys.stderr)
    state = "on disk (synced)" if sync else "in the page cache"
    report(f"files cleanup, local: {rows:,} expired files {state} (median of {runs})", ours, peer,
           target_ratio=2.0)


DATED = (f"UPDATE {TABLE} SET file_path = '2026/11/' || lpad((20 + id / 1000)::text, 2, '0') "
         "|| '/' || lpad(id::text, 8, '0') || '.json'")
ABSENT_EVERY = 50  # this share of the objects is never put: the run must find them missing


def s3(files: int, work: Path, layout: str) -> None:
    recording = work / "moto_recording.jsonl"
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)
    import boto3
    import httpx
    from moto.server import ThreadedMotoServer
    from sqlalchemy import create_engine, text

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
    client.create_bucket(Bucket="bench-exports")
    build(files)
    engine = create_engine(PG_URL)
    with engine.begin() as conn:  # 1 % of the rows without a size: the listing gives it
        conn.execute(text(f"UPDATE {TABLE} SET file_size_bytes = NULL WHERE id % 100 = 0"))
        if layout == "dated":
            conn.execute(text(DATED))
        rows = conn.execute(text(f"SELECT id, file_path FROM {TABLE}")).all()
    engine.dispose()
    present = [path for id_, path in rows if id_ % ABSENT_EVERY != 7]

    def put(path: str) -> None:
        client.put_object(Bucket="bench-exports", Key=f"exports/{path}", Body=b"x")

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, present))
    print(f"\n{len(present):,} of {files:,} objects ({layout} keys) put to moto in "
          f"{time.perf_counter() - started:.1f} s")
    env = {"OPSCTL_DATABASE__URL": PG_URL, "OPSCTL_SOURCE__TABLE": TABLE,
           "OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": "bench-exports",
           "OPSCTL_STORAGE__PREFIX": "exports", "OPSCTL_S3__ENDPOINT_URL": endpoint,
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
           "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT),
           "HOME": str(work), "XDG_STATE_HOME": str(work / "state")}
    httpx.post(f"{endpoint}/moto-api/recorder/reset-recording")
    httpx.post(f"{endpoint}/moto-api/recorder/start-recording")
    ours: Measurement = measure(f"opsctl files cleanup (s3, {layout} keys)",
                                opsctl_argv("files", "cleanup"), env)
    httpx.post(f"{endpoint}/moto-api/recorder/stop-recording")
    requests = [json.loads(line) for line in recording.read_text().splitlines()]
    by_kind = Counter(_operation(r) for r in requests)
    left = client.list_objects_v2(Bucket="bench-exports").get("KeyCount", 0)
    server.stop()
    print(f"== files cleanup, S3 (moto), {layout} keys: {files:,} rows, "
          f"{files - len(present):,} objects already gone, exit {ours.exit_code}, "
          f"{left} left, {ours.seconds:.2f} s, peak RSS {ours.peak_rss_mb:.1f} MB")
    print(f"  requests: {len(requests)} ({dict(by_kind)}) = "
          f"{len(requests) * 1000 / files:.1f} per 1000 files (target: a handful)")


def _operation(request: dict[str, str]) -> str:
    method, url = request["method"], request["url"]
    if method == "POST" and "delete" in url:
        return "DeleteObjects"
    if method == "HEAD":
        return "HeadObject"
    if method == "GET" and "list-type=2" in url:
        return "ListObjectsV2"
    return f"{method} {url.split('?')[0][-40:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--s3-files", type=int, default=3_000)
    parser.add_argument("--s3-layout", choices=["dated", "hashed", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--dir", default=None,
                        help="where the export files go (default: $TMPDIR); /dev/shm takes "
                        "the disk out of the comparison")
    parser.add_argument("--no-sync", dest="sync", action="store_false",
                        help="leave the files in the page cache (measures CPU overhead)")
    parser.add_argument("--scale", type=int, default=None, metavar="ROWS",
                        help="only the at-scale comparison, on a table of ROWS rows "
                        "(10000000 takes minutes to generate)")
    parser.add_argument("--due", type=int, default=6_400,
                        help="rows due at --scale (default 6400)")
    args = parser.parse_args()
    if args.scale:
        import files_cleanup_scale

        with tempfile.TemporaryDirectory(prefix="opsctl-bench-files-", dir=args.dir) as tmp:
            files_cleanup_scale.main(args.scale, args.due, args.runs, Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-files-", dir=args.dir) as tmp:
        local(args.rows, args.runs, args.batch_size, Path(tmp), args.sync)
        if not args.skip_s3:
            for layout in ("dated", "hashed"):
                if args.s3_layout in (layout, "both"):
                    s3(args.s3_files, Path(tmp), layout)


if __name__ == "__main__":
    main()
