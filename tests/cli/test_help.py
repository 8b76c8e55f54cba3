"""Help that teaches: examples for every command, defaults that match the settings, no
metavar noise, brackets kept, docstrings reflowed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.main import get_command

from opsctl.cli.app import GROUPS, app
from opsctl.cli.main import main
from opsctl.settings.model import Settings


def commands() -> list[list[str]]:
    root = get_command(app)
    found = []
    for name in GROUPS:
        group: Any = root.get_command(None, name)  # type: ignore[arg-type]
        found += [[name, sub] for sub in group.commands] if hasattr(group, "commands") else [
            [name]]
    return found


def help_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*args, "--help"], environ={"COLUMNS": "80"}) == 0
    text: str = capsys.readouterr().out
    return " ".join(text.split())  # the help is reflowed: compare words, not lines


@pytest.mark.parametrize("args", commands(), ids=" ".join)
def test_every_command_has_examples_and_clean_options(args: list[str],
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    text = help_of(args, capsys)
    assert re.search(rf"Examples:.*\bopsctl (\S+ )*{' '.join(args)}\b", text), text
    for noise in ("<bool>", "<int", "x<=", "x>=", "<float"):
        assert noise not in text, text


@pytest.mark.parametrize("args", commands(), ids=" ".join)
def test_help_defaults_are_the_settings_defaults(args: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(args, capsys)
    defaults = Settings()
    for section, key, shown in re.findall(r"\[default: (\w+)\.(\w+)(?:, ([^\];]+))?", text):
        assert hasattr(defaults, section), section
        value = getattr(getattr(defaults, section), key)  # the key exists
        if shown:
            if isinstance(value, float):
                assert float(shown) == value, (section, key, shown)
            else:
                assert shown == str(value), (section, key, shown)


def test_brackets_in_help_texts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    assert "Run the [[health.checks]] in parallel" in help_of(["health", "probe"], capsys)
    assert "[default: runs.window, 7d]" in help_of(["runs", "stats"], capsys)
    assert "[default: files.batch_size, 2000]" in help_of(["files", "cleanup"], capsys)
    assert "--retention-days N Rows with created_at older than N days are eligible. " \
        "[default: logs.retention_days, 30]" in help_of(["logs", "stats"], capsys)


def test_output_flag_is_accepted_after_the_command(capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    text = help_of(["logs", "stats"], capsys)
    assert "-o, --output <auto|json|text>" in text
