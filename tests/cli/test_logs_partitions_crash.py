"""``logs cleanup --archive`` on a partitioned table killed with SIGKILL at random points
(while noting, detaching, archiving or dropping a partition) loses no row, and once rerun
to completion every old row is in exactly one catalogued, verified object and the whole
partitions are gone. Without archive (partitions counted and dropped while the batches
run), a kill anywhere removes no row newer than the cutoff, and the next run finishes a
partition left detached and reports every row it held."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support import (
    PARTITIONED_DDL,
    Cli,
    archived_lines,
    export_row,
    insert_exports,
    isolated_env,
    start_logs_cleanup,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

NOW = datetime.now(UTC).replace(microsecond=0)
# Three whole partitions of 10 days each, 3,000 rows apiece, then the one holding the
# cutoff (30 days) with 500 old and 500 new rows.
WHOLE = [(70, 60), (60, 50), (50, 40)]
PER_PARTITION = 3000


def seed(url: str) -> dict[int, str]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(PARTITIONED_DDL))
            for number, (start, end) in enumerate([*WHOLE, (40, -30)]):
                conn.execute(text(
                    f"CREATE TABLE p{number} PARTITION OF export_logs FOR VALUES FROM "
                    f"('{(NOW - timedelta(days=start)).isoformat()}') TO "
                    f"('{(NOW - timedelta(days=end)).isoformat()}')"))
    finally:
        engine.dispose()
    rows = []
    for start, _ in WHOLE:
        rows += [export_row(created_at=NOW - timedelta(days=start - 1, seconds=i),
                            error_message=f"whole {start} #{i} \\ \"q\" \n")
                 for i in range(PER_PARTITION)]
    rows += [export_row(created_at=NOW - timedelta(days=35, seconds=i)) for i in range(500)]
    rows += [export_row(created_at=NOW - timedelta(days=1, seconds=i)) for i in range(500)]
    insert_exports(url, rows)
    return table_rows(url)


def table_rows(url: str) -> dict[int, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text("SELECT id, coalesce(error_message, '') FROM export_logs")
            return {int(i): str(m) for i, m in conn.execute(query)}
    finally:
        engine.dispose()


def old_ids(url: str) -> set[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text(
                "SELECT id FROM export_logs WHERE created_at < now() - interval '30 days'"
            )).scalars())
    finally:
        engine.dispose()


def detached_rows(url: str) -> dict[int, str]:
    """Rows of partitions a killed run detached and did not drop yet."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = conn.execute(text(
                "SELECT c.relname FROM pg_class c JOIN pg_description d ON d.objoid = c.oid "
                "WHERE d.description LIKE 'opsctl logs.cleanup:%' AND NOT c.relispartition"
            )).scalars().all()
            found: dict[int, str] = {}
            for name in names:
                found.update({int(i): str(m) for i, m in conn.execute(text(
                    f'SELECT id, coalesce(error_message, \'\') FROM "{name}"'))})
            return found
    finally:
        engine.dispose()


def kill_after(proc: subprocess.Popen[str], writes: int, delay: float) -> None:
    assert proc.stdout is not None
    seen = 0
    while seen < writes and (line := proc.stdout.readline()):
        seen += '"type": "export_log_archive_written"' in line
    time.sleep(delay)
    proc.kill()
    proc.communicate(timeout=30)


def check_nothing_lost(original: dict[int, str], url: str, directory: Path) -> None:
    """Every row is in the table, in a detached partition, or in exactly one object."""
    rows = archived_lines(directory)
    counts = Counter(row["id"] for row in rows)
    assert [i for i, n in counts.items() if n > 1] == [], "a row is in two archive objects"
    kept = {**table_rows(url), **detached_rows(url)}
    assert set(counts) | set(kept) == set(original)
    assert {r["id"]: r["error_message"] or "" for r in rows} == {i: original[i] for i in counts}


def test_kill_9_at_random_points_of_a_partition_loses_and_duplicates_nothing(
    tmp_path: Path, home: Path, pg_url: str
) -> None:
    original = seed(pg_url)
    old = old_ids(pg_url)
    assert len(old) == PER_PARTITION * 3 + 500
    target = tmp_path / "archive"
    args = ["--archive-uri", target.as_uri()]
    rng = random.Random(os.environ.get("OPSCTL_CRASH_SEED", "partitions"))
    # First a kill right after the first object of the first partition (30 objects of
    # 100 rows): the partition is detached and barely archived, the point of the test.
    proc = start_logs_cleanup(home, pg_url, *args, "--batch-size", "100")
    kill_after(proc, 1, 0)
    check_nothing_lost(original, pg_url, target / "export_logs")
    assert detached_rows(pg_url), "the kill did not leave a partition detached"
    # Then kills at random points (noting, detaching, archiving, dropping, batches), with
    # other batch sizes, as an operator's reruns might.
    for _ in range(5):
        size = rng.choice([250, 400, 600])
        proc = start_logs_cleanup(home, pg_url, *args, "--batch-size", str(size))
        kill_after(proc, rng.choice([0, 1, 3, 6, 10]), rng.uniform(0, 0.05))
        check_nothing_lost(original, pg_url, target / "export_logs")

    final = start_logs_cleanup(home, pg_url, *args, "--batch-size", "1000")
    stdout, stderr = final.communicate(timeout=120)

    assert final.returncode == 0, stderr + stdout
    summary = json.loads(stdout.splitlines()[-1])
    assert (summary["type"], summary["state"]) == ("export_log_cleanup_complete", "completed")
    check_nothing_lost(original, pg_url, target / "export_logs")
    assert detached_rows(pg_url) == {}
    assert sorted(table_rows(pg_url)) == sorted(set(original) - old)
    assert sorted(row["id"] for row in archived_lines(target / "export_logs")) == sorted(old)
    cli = Cli(isolated_env(home, pg_url))
    verified = cli("logs", "verify", "--archive-uri", target.as_uri())
    assert verified.exit_code == 0, verified.stdout
    assert verified.one("export_log_archive_verified")["unrecorded_objects"] == 0


def kill_while_dropping(proc: subprocess.Popen[str], url: str, delay: float) -> None:
    """SIGKILL ``delay`` seconds after the run is connected and a partition carries its
    note (written just before the detach): somewhere in detaching, counting and dropping
    the partitions while the batches of the rest run, for a run without archive."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                if conn.execute(text(
                        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name "
                        "= 'opsctl' AND datname = current_database()) AND EXISTS (SELECT "
                        "FROM pg_description WHERE description LIKE 'opsctl logs.cleanup:%')"
                )).scalar():
                    break
                time.sleep(0.001)
    finally:
        engine.dispose()
    time.sleep(delay)
    proc.kill()
    proc.communicate(timeout=30)


@pytest.mark.parametrize("round_", range(4))
def test_kill_9_while_partitions_are_dropped_without_archive_loses_nothing_new(
    home: Path, pg_url: str, round_: int
) -> None:
    original = seed(pg_url)  # each round on a table of its own (pg_url empties it)
    old = old_ids(pg_url)
    new = set(original) - old
    rng = random.Random(f"{os.environ.get('OPSCTL_CRASH_SEED', 'no-archive')}-{round_}")
    proc = start_logs_cleanup(home, pg_url, "--no-archive", "--batch-size",
                              str(rng.choice([50, 200])))
    kill_while_dropping(proc, pg_url, rng.uniform(0, 0.08))
    kept = {**table_rows(pg_url), **detached_rows(pg_url)}
    assert new <= set(kept), "a row newer than the cutoff was deleted"
    assert set(kept) <= set(original)

    final = start_logs_cleanup(home, pg_url, "--no-archive", "--batch-size", "100")
    stdout, stderr = final.communicate(timeout=120)

    assert final.returncode == 0, stderr + stdout
    lines = [json.loads(line) for line in stdout.splitlines()]
    summary = lines[-1]
    assert (summary["type"], summary["state"]) == ("export_log_cleanup_complete", "completed")
    assert summary["deleted_count"] == summary["eligible_count"]
    # Nothing but a drop takes rows from a whole partition: each one reports all of them.
    assert {line["rows"] for line in lines
            if line["type"] == "export_log_partition_dropped"} <= {PER_PARTITION}
    assert detached_rows(pg_url) == {}
    assert table_rows(pg_url) == {i: original[i] for i in new}
