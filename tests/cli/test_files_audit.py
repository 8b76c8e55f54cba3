"""``opsctl files audit`` through the real entry point: real files (with a symlink and a
canary outside the root), S3 on moto (with a canary outside the prefix), SQLite and
PostgreSQL, keys chosen so that byte order and locale order disagree."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from support import Cli, export_row, insert_exports

OLD = time.time() - 3 * 86400
# Byte order: "A" < "a-b" < "a/x" < "b" < "é"; a locale collation orders them otherwise.
REFERENCED = ["A/1.json", "a-b.json", "a/x.json", "b/ü.json", "é/2.json"]
ORPHANS = ["A/orphan.json", "a/y.json", "zz/orphan é.json"]
MISSING = ["a/gone.json", "é/gone.json"]


@pytest.fixture(autouse=True)
def sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def rows() -> list[dict[str, Any]]:
    made = [export_row(file_path=path) for path in REFERENCED]
    made += [export_row(file_path=path) for path in MISSING]  # completed, no file
    made += [export_row(file_path="a/failed-gone.json", status="failed"),  # not missing
             export_row(file_path="A/1.json", status="expired"),  # a second row, same file
             export_row(file_path=None, status="failed")]
    return made


@pytest.fixture
def local(tmp_path: Path, db_url: str) -> dict[str, Any]:
    root = tmp_path / "exports"
    for key in REFERENCED + ORPHANS:
        put(root / key, OLD)
    put(root / "young/new.json", time.time())  # unreferenced, but being written
    canary = tmp_path / "outside" / "canary.json"
    put(canary, OLD)
    (root / "link.json").symlink_to(canary)
    (root / "linkdir").symlink_to(canary.parent, target_is_directory=True)
    insert_exports(db_url, rows())
    return {"root": root, "canary": canary, "env": {"OPSCTL_STORAGE__ROOT": str(root)}}


def put(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 10)
    os.utime(path, (mtime, mtime))


def summary_counts(summary: dict[str, Any]) -> tuple[int, ...]:
    return tuple(summary[k] for k in ("stored_files", "referenced_files", "orphan_count",
                                      "orphan_bytes", "missing_count", "deleted_orphans"))


def test_local_orphans_and_missing(cli: Cli, local: dict[str, Any], tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"

    result = cli("files", "audit", "--report", str(report), env=local["env"])

    assert result.exit_code == 1, result.stdout
    summary = result.one("export_file_audit_complete")
    # stored: 5 referenced + 3 orphans + 1 young (the symlinks are not stored files)
    # referenced: 5 + 2 missing + the failed row's path
    assert summary_counts(summary) == (9, 8, 3, 30, 2, 0)
    assert (summary["dry_run"], summary["state"], summary["job"]) == (False, "findings",
                                                                      "files.audit")
    assert [e["file_path"] for e in summary["examples"]["orphans"]] == ORPHANS
    assert [e["file_path"] for e in summary["examples"]["missing"]] == MISSING
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted((x["finding"], x["file_path"]) for x in lines) == sorted(
        [("orphan", k) for k in ORPHANS] + [("missing", k) for k in MISSING])
    assert cli("runs", "list").of_type("job_run") == []  # read-only: not recorded


def test_delete_orphans_deletes_only_orphans(cli: Cli, local: dict[str, Any]) -> None:
    root = local["root"]

    result = cli("files", "audit", "--delete-orphans", env=local["env"])

    assert result.exit_code == 1, result.stdout
    summary = result.one("export_file_audit_complete")
    assert summary["deleted_orphans"] == 3 and summary["forced"] is False
    for key in ORPHANS:
        assert not (root / key).exists()
    for key in [*REFERENCED, "young/new.json"]:
        assert (root / key).exists()
    assert local["canary"].read_text() == "x" * 10
    assert (root / "link.json").is_symlink() and (root / "linkdir").is_symlink()
    assert [r["job"] for r in cli("runs", "list").of_type("job_run")] == ["files.audit"]

    again = cli("files", "audit", env=local["env"]).one("export_file_audit_complete")
    assert (again["orphan_count"], again["missing_count"]) == (0, 2)


def test_min_age(cli: Cli, local: dict[str, Any]) -> None:
    young = cli("files", "audit", "--min-age", "0", env=local["env"])
    assert young.one("export_file_audit_complete")["orphan_count"] == 4
    old = cli("files", "audit", "--min-age", "7d", env=local["env"])
    assert old.one("export_file_audit_complete")["orphan_count"] == 0


@pytest.mark.parametrize("value", ["-1h", "soon", "5"])
def test_bad_min_age_is_a_usage_error(cli: Cli, value: str) -> None:
    assert cli("files", "audit", "--min-age", value).exit_code == 64


def test_dry_run_deletes_nothing(cli: Cli, local: dict[str, Any]) -> None:
    result = cli("files", "audit", "--delete-orphans", "--dry-run", env=local["env"])

    summary = result.one("export_file_audit_complete")
    assert (summary["dry_run"], summary["deleted_orphans"]) == (True, 3)
    assert all((local["root"] / key).exists() for key in ORPHANS)


def test_the_guard_trips_before_any_delete(cli: Cli, local: dict[str, Any]) -> None:
    for cap in ("2", "0"):
        result = cli("files", "audit", "--delete-orphans", "--max-delete", cap,
                     env=local["env"])
        assert result.exit_code == 2, result.stdout
        trip = result.one("deletion_guard_tripped")
        assert (trip["limit_kind"], trip["would_delete"], trip["limit"]) == (
            "max_delete", 3, int(cap))
        assert result.one("export_file_audit_complete")["deleted_orphans"] == 0
        assert all((local["root"] / key).exists() for key in ORPHANS)

    forced = cli("files", "audit", "--delete-orphans", "--max-delete", "0", "--force",
                 env=local["env"])
    summary = forced.one("export_file_audit_complete")
    assert (summary["forced"], summary["deleted_orphans"]) == (True, 3)
    assert forced.of_type("deletion_guard_tripped") == []


def test_config_max_delete(cli: Cli, local: dict[str, Any]) -> None:
    env = {**local["env"], "OPSCTL_FILES__MAX_DELETE": "1"}
    result = cli("files", "audit", "--delete-orphans", env=env)
    assert result.exit_code == 2
    assert result.one("deletion_guard_tripped")["limit"] == 1


def test_clean_storage_exits_0(cli: Cli, db_url: str, tmp_path: Path) -> None:
    root = tmp_path / "exports"
    put(root / "a.json", OLD)
    insert_exports(db_url, [export_row(file_path="a.json")])

    result = cli("files", "audit", env={"OPSCTL_STORAGE__ROOT": str(root)})

    assert result.exit_code == 0, result.stdout
    assert summary_counts(result.one("export_file_audit_complete")) == (1, 1, 0, 0, 0, 0)


# --- S3 ------------------------------------------------------------------------------------


def s3_client(s3_env: dict[str, str]) -> Any:
    return boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")


@pytest.mark.s3
def test_s3_orphans_missing_and_delete(cli: Cli, db_url: str, s3_bucket: str,
                                       s3_env: dict[str, str]) -> None:
    s3 = s3_client(s3_env)
    for key in REFERENCED + ORPHANS:
        s3.put_object(Bucket=s3_bucket, Key=f"exports/{key}", Body=b"x" * 10)
    s3.put_object(Bucket=s3_bucket, Key="exports-canary/a.json", Body=b"keep")
    s3.put_object(Bucket=s3_bucket, Key="canary.json", Body=b"keep")
    insert_exports(db_url, rows())
    env = {**s3_env, "OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": s3_bucket,
           "OPSCTL_STORAGE__PREFIX": "exports"}

    seen = cli("files", "audit", "--min-age", "0", env=env)

    assert seen.exit_code == 1, seen.stdout
    assert summary_counts(seen.one("export_file_audit_complete")) == (8, 8, 3, 30, 2, 0)

    deleted = cli("files", "audit", "--min-age", "0", "--delete-orphans", env=env)

    assert deleted.one("export_file_audit_complete")["deleted_orphans"] == 3
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == sorted(["canary.json", "exports-canary/a.json",
                           *(f"exports/{k}" for k in REFERENCED)])


@pytest.mark.s3
def test_s3_unreachable_bucket_is_unknown(cli: Cli, db_url: str,
                                          s3_env: dict[str, str]) -> None:
    insert_exports(db_url, rows())
    env = {**s3_env, "OPSCTL_STORAGE__BACKEND": "s3",
           "OPSCTL_STORAGE__BUCKET": "no-such-bucket-opsctl"}

    result = cli("files", "audit", env=env)

    assert result.exit_code == 3
    assert result.one("error")["error"]["kind"] == "storage_unavailable"


def test_text_output_names_orphans_literally(cli: Cli, local: dict[str, Any]) -> None:
    result = cli("files", "audit", env=local["env"], output="text")
    assert result.exit_code == 1
    assert "zz/orphan é.json" in result.stdout


