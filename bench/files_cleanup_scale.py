"""`opsctl files cleanup` on a table of millions: does its cost follow the due rows?

The table has the shape of a real one (opt-in: 10M rows take several minutes to generate
and about 3 GB): ``created_at`` over 60 days growing with id, 8 % failed exports without a
file, ``expires_at`` = ``created_at`` + 7 days, every row expired before the last ones
already marked ``expired`` by earlier runs, the primary key and the indexes of
``tables.source_indexes`` (``created_at``, the partial ``(expires_at, id)``). Seven days of
exports are pending; of those, ``--due`` rows (6,400 by default) have expired since the
last run and have a file on disk.

Two cases, each with opsctl and the peer (``find ROOT -type f -delete`` + one psql
UPDATE) alternated, the data reset untimed before every run (the due rows unmarked, their
files written back, VACUUM ANALYZE): ``due`` (target: ratio <= 1.5) and ``nothing due``,
for which the EXPLAIN ANALYZE of the run's count and first batch is printed (target: under
50 ms together). Medians of wall and CPU time, the largest peak RSS, and the load.

    python bench/files_cleanup.py --scale 10000000 [--due 6400] [--runs 3] [--dir DIR]
    python bench/files_cleanup.py --scale 1000000

The table (``bench_files_cleanup_scale``) is kept between invocations and rebuilt only
when its row count differs, so a second invocation starts measuring at once.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import PG_URL, Measurement, build_pg_table, measure, opsctl_argv, psql, psql_argv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = "bench_files_cleanup_scale"
DIRS = 256
PENDING = "status <> 'expired' AND file_path IS NOT NULL AND file_path <> ''"

FILL = f"""
INSERT INTO {TABLE} (export_id, user_id, format, status, conversation_count, duration_ms,
                     file_size_bytes, file_path, error_type, created_at, expires_at)
SELECT md5(g::text), 'user-' || (g % 997), (ARRAY['json', 'jsonl', 'csv'])[1 + g % 3],
       CASE WHEN g % 25 < 2 THEN 'failed'
            WHEN t.created_at + interval '7 days' < :anchor THEN 'expired'
            ELSE 'completed' END,
       1 + g % 40, 100 + g % 5000,
       CASE WHEN g % 25 < 2 THEN NULL ELSE 1 END,
       CASE WHEN g % 25 < 2 THEN NULL
            ELSE lpad(to_hex(g % {DIRS}), 2, '0') || '/' || g || '.json' END,
       CASE WHEN g % 25 < 2 THEN 'timeout' END,
       t.created_at,
       CASE WHEN g % 25 < 2 THEN NULL ELSE t.created_at + interval '7 days' END
FROM generate_series(1, :rows) AS g,
     LATERAL (SELECT :anchor - interval '60 days'
                     + (g::float8 / :rows) * interval '60 days' AS created_at) AS t
"""
PEER_UPDATE = f"UPDATE {TABLE} SET status = 'expired' WHERE expires_at < now() AND {PENDING}"


def build(rows: int) -> None:
    have = psql(PG_URL, f"SELECT obj_description(to_regclass('{TABLE}'), 'pg_class')")
    if have == f"rows={rows}":
        print(f"{TABLE}: {rows:,} rows already built, reused")
        return
    print(f"building {TABLE} with {rows:,} rows (minutes at 10M)...", flush=True)
    seconds = build_pg_table(TABLE, FILL, {"rows": rows, "anchor": datetime.now(UTC)})
    psql(PG_URL, f"COMMENT ON TABLE {TABLE} IS 'rows={rows}'")
    print(f"  built in {seconds:.0f} s; {psql(PG_URL, _SIZES)}")


_SIZES = (f"SELECT 'table ' || pg_size_pretty(pg_table_size('{TABLE}')) || ', pending index '"
          f" || pg_size_pretty(pg_relation_size('ix_{TABLE}_expires_pending')) || ' ('"
          f" || (SELECT count(*) FROM {TABLE} WHERE {PENDING}) || ' rows pending)'")


def due_range(due: int) -> tuple[int, int]:
    """The ids of the ``due`` latest rows with a file that expired before now."""
    lo, hi = psql(PG_URL, f"""
        SELECT min(id), max(id) FROM (
          SELECT id FROM {TABLE} WHERE expires_at < now()
          ORDER BY expires_at DESC LIMIT {due}) AS d""").split("|")
    return int(lo), int(hi)


def reset(ids: tuple[int, int] | None, root: Path) -> None:
    """The due rows unmarked and their files back; every other expired row marked, as the
    previous run left it (rows that expired since the build included). Untimed, and
    flushed (CHECKPOINT, sync) so that no run pays for the writes of this one."""
    lo, hi = ids or (0, -1)
    script = f"""
        UPDATE {TABLE} SET status = 'completed'
          WHERE id BETWEEN {lo} AND {hi} AND status = 'expired';
        UPDATE {TABLE} SET status = 'expired'
          WHERE expires_at < now() AND {PENDING} AND id NOT BETWEEN {lo} AND {hi};
        VACUUM ANALYZE {TABLE};
        CHECKPOINT;
        SELECT file_path FROM {TABLE} WHERE id BETWEEN {lo} AND {hi} AND {PENDING};
    """
    paths = psql(PG_URL, script).splitlines()
    for d in range(DIRS):
        (root / f"{d:02x}").mkdir(parents=True, exist_ok=True)
    for path in paths:
        (root / path).write_bytes(b"x")
    os.sync()


def alternate(runs: int, ids: tuple[int, int] | None, root: Path,
              env: dict[str, str]) -> tuple[list[Measurement], list[Measurement]]:
    peer_cmd = (f"find {shlex.quote(str(root))} -type f -delete && "
                + shlex.join(psql_argv(PG_URL, PEER_UPDATE)))
    peer: list[Measurement] = []
    ours: list[Measurement] = []
    for run in range(runs):
        order = ("peer", "ours") if run % 2 == 0 else ("ours", "peer")
        for who in order:
            reset(ids, root)
            if who == "peer":
                peer.append(measure("find -delete + psql UPDATE", peer_cmd,  # noqa: S604
                                    shell=True))
            else:
                ours.append(measure("opsctl files cleanup", opsctl_argv("files", "cleanup"),
                                    env))
        left = sum(len(files) for _, _, files in os.walk(root))
        if left or ours[-1].exit_code != 0:
            print(f"  ! {left} files left, opsctl exit {ours[-1].exit_code}", file=sys.stderr)
    return ours, peer


def summary(title: str, ours: list[Measurement], peer: list[Measurement],
            target: float | None) -> None:
    def med(ms: list[Measurement], what: str) -> float:
        return statistics.median(getattr(m, what) for m in ms)

    ratio = med(ours, "seconds") / med(peer, "seconds")
    cpu_ratio = med(ours, "cpu_seconds") / max(med(peer, "cpu_seconds"), 1e-9)
    verdict = "" if target is None else f" (target <= {target}: " \
        f"{'met' if ratio <= target else 'MISSED'})"
    print(f"\n== {title} (medians of {len(ours)} alternated runs; load {_load()})")
    for label, ms in (("find -delete + psql UPDATE", peer), ("opsctl files cleanup", ours)):
        print(f"  {label:<28} wall {med(ms, 'seconds'):6.3f} s  "
              f"cpu {med(ms, 'cpu_seconds'):6.3f} s  peak RSS "
              f"{max(m.peak_rss_mb for m in ms):6.1f} MB   "
              f"runs {', '.join(f'{m.seconds:.2f}' for m in ms)}")
    print(f"  ratio opsctl/peer: wall {ratio:.2f}{verdict}, cpu {cpu_ratio:.2f}")


def explain_run_sql(batch_size: int) -> None:
    """EXPLAIN ANALYZE of the statements that read the table in a run: the count and the
    first batch, built by the adapter itself."""
    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.expired_exports import ExpiredExportsRepository
    from opsctl.settings.data import SourceSettings

    db = Database(PG_URL)
    total = 0.0
    with ExpiredExportsRepository(db, SourceSettings(table=TABLE)) as repo:
        now = datetime.now(UTC)
        for name, query in (("count", repo.count_query(now)),
                            ("first batch", repo.batch_query(now, None, batch_size))):
            compiled = query.compile(db.engine)
            plans = []
            with db.engine.connect() as conn:
                if name == "count":  # as the adapter counts: no parallel workers
                    conn.exec_driver_sql("SET max_parallel_workers_per_gather = 0")
                for _ in range(5):  # the median of five, on a warm cache, is the one shown
                    plan = conn.exec_driver_sql(
                        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {compiled}",
                        compiled.params).scalar_one()
                    plans.append((json.loads(plan) if isinstance(plan, str) else plan)[0])
            plans.sort(key=lambda p: p["Planning Time"] + p["Execution Time"])
            plan = plans[len(plans) // 2]
            spent = plan["Planning Time"] + plan["Execution Time"]
            total += spent
            scan = _scan(plan["Plan"])
            print(f"  {name:<12} {spent:7.3f} ms (planning {plan['Planning Time']:.3f}, "
                  f"execution {plan['Execution Time']:.3f}): {scan}")
    db.engine.dispose()
    print(f"  together {total:.3f} ms (target < 50 ms)")


def _scan(node: dict[str, object]) -> str:
    if node.get("Relation Name") == TABLE:
        return (f"{node['Node Type']} using {node.get('Index Name')}, cond "
                f"{node.get('Index Cond')}, rows {node['Actual Rows']}, shared hit "
                f"{node.get('Shared Hit Blocks')} read {node.get('Shared Read Blocks')}")
    for child in node.get("Plans", []):  # type: ignore[attr-defined]
        found = _scan(child)
        if found:
            return found
    return ""


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.split(
        "load average:")[-1].strip()


def main(rows: int, due: int, runs: int, work: Path) -> None:
    build(rows)
    root = work / "exports"
    env = {"OPSCTL_DATABASE__URL": PG_URL, "OPSCTL_SOURCE__TABLE": TABLE,
           "OPSCTL_STORAGE__ROOT": str(root), "PYTHONPATH": str(ROOT),
           "HOME": str(work), "XDG_STATE_HOME": str(work / "state")}
    measure("db init", opsctl_argv("db", "init"), env)
    ids = due_range(due)
    started = time.perf_counter()
    ours, peer = alternate(runs, ids, root, env)
    summary(f"files cleanup, {rows:,} rows, {due:,} due", ours, peer, 1.5)
    ours, peer = alternate(runs, None, root, env)
    summary(f"files cleanup, {rows:,} rows, nothing due", ours, peer, None)
    print(f"\n== the run's SQL with nothing due, {rows:,} rows (load {_load()})")
    explain_run_sql(2000)
    print(f"\n({time.perf_counter() - started:.0f} s of measuring)")
