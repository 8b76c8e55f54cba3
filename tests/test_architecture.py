"""Imports flow cli → jobs → domain and cli → adapters → ports; never back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "opsctl"
DRIVERS = ("typer", "rich", "sqlalchemy", "psycopg", "boto3", "botocore", "httpx", "click",
           "prometheus_client")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in paths:
        bad = sorted(n for n in imports_of(path)
                     if any(n == f or n.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    return found


def test_domain_is_pure() -> None:
    assert offending(modules("domain"), (*DRIVERS, "opsctl.jobs", "opsctl.adapters",
                                         "opsctl.cli", "opsctl.settings")) == {}


def test_jobs_use_ports_not_drivers_or_the_cli() -> None:
    assert offending(modules("jobs"), (*DRIVERS, "opsctl.adapters", "opsctl.cli")) == {}


def test_adapters_never_reach_up_into_jobs_or_the_cli() -> None:
    assert offending(modules("adapters"), ("typer", "rich", "opsctl.cli", "opsctl.jobs")) == {}


@pytest.mark.parametrize("name", ["events.py", "runtime.py", "errors.py", "exit_codes.py",
                                  "locations.py", "ports", "settings", "deploy"])
def test_core_modules_import_no_driver(name: str) -> None:
    path = PACKAGE / name
    assert offending(sorted(path.rglob("*.py")) if path.is_dir() else [path], DRIVERS) == {}


def test_ports_and_settings_never_reach_into_adapters_jobs_or_the_cli() -> None:
    inner = ("opsctl.adapters", "opsctl.jobs", "opsctl.cli")
    assert offending([*modules("ports"), *modules("settings")], inner) == {}


def test_no_grab_bag_modules() -> None:
    names = {p.stem for p in PACKAGE.rglob("*.py")}
    assert not names & {"utils", "helpers", "misc", "common"}


def test_templates_live_only_in_the_page_renderer() -> None:
    """jinja2 and markupsafe make HTML; only the pages adapter makes HTML."""
    users = offending(sorted(PACKAGE.rglob("*.py")), ("jinja2", "markupsafe"))
    assert users and all(path.startswith("adapters/pages/") for path in users)


def test_every_port_name_resolves_from_the_lazy_package() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, opsctl.ports as p\n"
        "assert [m for m in sys.modules if m.startswith('opsctl.ports.')] == []\n"
        "missing = [n for n in p.__all__ if getattr(p, n, None) is None]\n"
        "print(len(p.__all__), missing)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert int(out[0]) > 50 and out[1] == "[]"
