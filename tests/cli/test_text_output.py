"""Text mode for people: odd text never breaks it, never vanishes from it.

Markup-like strings (``[/x]``, ``[bold]``, ``[link=…]``) go through every text view and
every error path: file paths, config paths, error messages, check names, error types,
table names. Each must come out literally, and the run must end as it would in JSON mode.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import Cli, export_row, insert_exports, isolated_env

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.runs import DbBookkeeping
from opsctl.ports import RunRecord

ODD = ["[/x]", "[bold]", "[link=http://127.0.0.1/]"]
ODD_TEXT = " ".join(ODD)
NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=2)


def make_db(url: str) -> None:
    Database(url).engine.dispose()  # the SQLite directory


def assert_literal(text: str, *needles: str) -> None:
    for needle in needles:
        assert needle in text, f"{needle!r} missing from:\n{text}"
    assert "Traceback" not in text and "MarkupError" not in text


def test_files_cleanup_goes_on_past_a_bracketed_path(sqlite_cli: Cli, sqlite_url: str,
                                                     tmp_path: Path) -> None:
    root = tmp_path / "exports"
    (root / "ok").mkdir(parents=True)
    for name in ("a.json", "[bold]b.json"):
        (root / "ok" / name).write_bytes(b"x" * 10)
    make_db(sqlite_url)
    insert_exports(sqlite_url, [
        export_row(file_path="../[/evil].csv", expires_at=PAST),
        export_row(file_path="ok/a.json", expires_at=PAST),
        export_row(file_path="ok/[bold]b.json", expires_at=PAST),
    ])
    env = {"OPSCTL_STORAGE__ROOT": str(root), "COLUMNS": "100"}
    dry = sqlite_cli("files", "cleanup", "--dry-run", output="text", env=env)
    assert dry.exit_code in (0, 1), dry.stderr
    assert_literal(dry.stdout, "ok/[bold]b.json")
    result = sqlite_cli("files", "cleanup", output="text", env=env)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert_literal(result.stderr, "[/evil].csv")
    assert sorted(p.name for p in (root / "ok").iterdir()) == []  # the good ones went
    assert_literal(result.stdout, "deleted 2 of 3")


def test_bracketed_config_path_is_78_and_shown_whole(sqlite_cli: Cli, tmp_path: Path) -> None:
    odd_dir = tmp_path / "[/x]"
    odd_dir.mkdir(parents=True)
    path = odd_dir / "[bold].toml"
    path.write_text("[database]\nnot_a_key = 1\n")
    result = sqlite_cli("--config", str(path), "logs", "stats", output="text")
    assert result.exit_code == 78
    assert_literal(result.stderr, "database.not_a_key")
    missing = sqlite_cli("--config", str(odd_dir / "[link=x].toml"), "runs", "list",
                         output="text")
    assert missing.exit_code == 78
    assert_literal(missing.stderr, "[/x]/[link=x].toml")


def test_config_show_and_validate_print_brackets(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "[bold]opsctl.toml"
    path.write_text('[source]\ntable = "exports"\n[logs]\narchive_uri = "file:///tmp/[/x]"\n')
    shown = sqlite_cli("--config", str(path), "config", "show", output="text")
    assert shown.exit_code == 0, shown.stderr
    assert_literal(shown.stdout, "[bold]opsctl.toml", "file:///tmp/[/x]", "source.table")
    valid = sqlite_cli("config", "validate", str(path), output="text")
    assert valid.exit_code == 0
    assert_literal(valid.stdout, "[bold]opsctl.toml")


def test_missing_source_table_message_keeps_its_brackets(sqlite_cli: Cli,
                                                         sqlite_url: str) -> None:
    make_db(sqlite_url)
    insert_exports(sqlite_url, [export_row()], table="other")
    for args in (["metrics", "report"], ["metrics", "aggregate"]):
        result = sqlite_cli(*args, output="text", env={"OPSCTL_SOURCE__TABLE": "exports"})
        assert result.exit_code == 78, (args, result.stdout, result.stderr)
        assert_literal(result.stderr, "source table exports does not exist", "[source] table")


def test_error_types_and_formats_in_metrics_and_failure_rate(sqlite_cli: Cli,
                                                             sqlite_url: str) -> None:
    make_db(sqlite_url)
    start = (NOW - timedelta(minutes=30))
    insert_exports(sqlite_url, [
        *(export_row(format="[bold]", created_at=start) for _ in range(4)),
        *(export_row(status="failed", error_type=odd, format="[/x]", created_at=start)
          for odd in ODD),
    ])
    result = sqlite_cli("failure-rate", "check", "--dry-run", output="text",
                        env={"COLUMNS": "120"})
    assert result.exit_code == 2, result.stderr
    assert_literal(result.stdout, *ODD)
    window = ("--window", "1h")
    metrics = sqlite_cli("metrics", "aggregate", *window, output="text", env={"COLUMNS": "120"})
    assert metrics.exit_code in (0, 1), metrics.stderr
    assert_literal(metrics.stdout, "[bold]", "[/x]", "[link=http://127.0.0.1/]")
    report = sqlite_cli("metrics", "report", output="text")
    assert report.exit_code == 0, report.stderr


def test_check_names_and_reasons(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "opsctl.toml"
    missing = tmp_path / "[/x]" / "[bold]"
    path.write_text(f'[[health.checks]]\nname = "[/x] disk"\nkind = "disk"\n'
                    f'path = "{missing}"\nmin_free_percent = 1\n'
                    '[[health.checks]]\nname = "[bold]"\nkind = "database"\n')
    result = sqlite_cli("--config", str(path), "health", "probe", output="text",
                        env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.stdout + result.stderr
    assert_literal(result.stdout, "[/x] disk", "[bold]", f"{missing} does not exist")


def test_run_history_with_markup_in_errors(sqlite_cli: Cli, sqlite_url: str) -> None:
    book = DbBookkeeping(Database(sqlite_url))
    book.ensure_schema()
    for i in range(3):
        book.record_run(RunRecord(
            job="files.cleanup", run_id=f"r{i}", host="[bold]host", started_at=NOW,
            finished_at=NOW, state="error", exit_code=3, duration_ms=5,
            summary={}, error={"kind": "storage_unavailable", "message": ODD_TEXT}))
    listed = sqlite_cli("runs", "list", output="text", env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.stderr
    assert_literal(listed.stdout, ODD_TEXT)
    stats = sqlite_cli("runs", "stats", output="text")
    assert stats.exit_code == 2
    assert_literal(stats.stdout, "alert files.cleanup")


def test_demo_seed_and_logs_views(sqlite_cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "[/x]root"
    seeded = sqlite_cli("demo", "seed", "--rows", "50", "--seed", "1", output="text",
                        env={"OPSCTL_STORAGE__ROOT": str(root), "COLUMNS": "200"})
    assert seeded.exit_code == 0, seeded.stderr
    assert_literal(seeded.stdout, str(root))
    stats = sqlite_cli("logs", "stats", output="text")
    assert stats.exit_code == 0
    archive = tmp_path / "[bold]archive"
    cleanup = sqlite_cli("logs", "cleanup", "--archive-uri", f"file://{archive}", "--dry-run",
                         output="text", env={"COLUMNS": "200"})
    assert cleanup.exit_code == 0, cleanup.stderr
    assert_literal(cleanup.stdout, "%5Bbold%5Darchive")  # the URI as the archive names it
    assert not cleanup.stdout.startswith("dry_run")


def test_unreadable_sqlite_path_is_shown_whole(home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / '[/x]' / 'opsctl.db'}"
    result = Cli(isolated_env(home, url))("logs", "stats", output="text")
    assert result.exit_code == 3
    assert_literal(result.stderr, "[/x]/opsctl.db")


# --- under a pseudo-terminal: progress bars ----------------------------------------------


def opsctl_in_pty(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "opsctl", *args])
    return subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                          text=True, env={**os.environ, **env, "COLUMNS": "80"}, timeout=120,
                          check=False)


def test_interactive_files_cleanup_survives_a_bracketed_path(sqlite_url: str, home: Path,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    for i in range(30):
        (root / f"{i}.json").write_bytes(b"x")
    make_db(sqlite_url)
    insert_exports(sqlite_url, [export_row(file_path="../[/evil].csv", expires_at=PAST)]
                   + [export_row(file_path=f"{i}.json", expires_at=PAST) for i in range(30)])
    env = {**isolated_env(home, sqlite_url), "OPSCTL_STORAGE__ROOT": str(root)}
    done = opsctl_in_pty(["files", "cleanup"], env)
    assert done.returncode == 1, done.stdout
    assert_literal(done.stdout, "[/evil].csv", "deleted 30 of 31")
    assert list(root.iterdir()) == []
