"""A dry run writes nothing, files a command was asked to write included: ``OPSCTL_DRY_RUN=1``
(CI's safety net) and ``--dry-run`` turn ``--out``, ``--html`` and ``--report`` into a
statement of what would have been written, with the command's usual exit code."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from support import Cli, export_row, insert_exports

DRY = {"OPSCTL_DRY_RUN": "1"}
OLD = time.time() - 3 * 86400


@pytest.fixture(autouse=True)
def tables(sqlite_url: str) -> None:
    Path(sqlite_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    insert_exports(sqlite_url, [])


def test_schedule_render_out_writes_no_unit(sqlite_cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "units"

    result = sqlite_cli("schedule", "render", "--target", "systemd", "--out", str(out),
                        env=DRY)

    assert result.exit_code == 0, result.stdout
    assert not out.exists()
    summary = result.one("schedule_rendered")
    assert summary["dry_run"] is True
    assert str(out / "opsctl-files-cleanup.timer") in summary["would_write"]
    assert len(summary["would_write"]) == len(summary["files"]) == 10


@pytest.mark.parametrize(("command", "summary_type"), [
    (("status",), "status_report"),
    (("metrics", "report"), "metrics_report"),
])
def test_html_pages_are_not_written(sqlite_cli: Cli, tmp_path: Path,
                                    command: tuple[str, ...], summary_type: str) -> None:
    where = tmp_path / "www"
    where.mkdir()
    page = where / "page.html"

    result = sqlite_cli(*command, "--html", str(page), env=DRY)

    assert result.exit_code == 0, result.stdout
    assert os.listdir(where) == []  # no page, no temporary file
    summary = result.one(summary_type)
    assert (summary["dry_run"], summary["would_write"]) == (True, [str(page)])
    assert f"would write {page}" in summary["message"]


@pytest.mark.parametrize("how", ["env", "flag"])
def test_files_audit_report_is_not_written(sqlite_cli: Cli, sqlite_url: str, tmp_path: Path,
                                          how: str) -> None:
    root = tmp_path / "exports"
    orphan = root / "orphan.json"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    os.utime(orphan, (OLD, OLD))
    insert_exports(sqlite_url, [export_row(file_path="gone.json")])
    where = tmp_path / "reports"
    where.mkdir()
    report = where / "findings.jsonl"
    env = {"OPSCTL_STORAGE__ROOT": str(root), **(DRY if how == "env" else {})}
    flags = ("--dry-run",) if how == "flag" else ()

    result = sqlite_cli("files", "audit", "--report", str(report), *flags, env=env)

    assert result.exit_code == 1, result.stdout  # findings, as without the dry run
    assert os.listdir(where) == []  # no report, no temporary file
    summary = result.one("export_file_audit_complete")
    assert (summary["orphan_count"], summary["missing_count"]) == (1, 1)
    assert (summary["dry_run"], summary["would_write"]) == (True, [str(report)])
