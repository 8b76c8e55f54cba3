"""config.example.toml is the reference for every key: it must load and must not fall behind."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from opsctl.settings import Settings, load_settings
from opsctl.settings.health import CHECK_MODELS

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"
HEADER = re.compile(r"^\s*(\[\[|\[)\s*([\w.]+)\s*\]\]?\s*(#.*)?$")
# Keys may be dotted or quoted ([schedule] metrics.aggregate, "failure-rate.check").
KEY = re.compile(r"""^\s*#?\s*["']?([A-Za-z_][\w.-]*)["']?\s*=""")
KIND = re.compile(r"""^\s*kind\s*=\s*["'](\w+)["']""")


class Block:
    """The keys written (set or commented out) under one table header of the example."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.keys: set[str] = set()
        self.kind: str | None = None


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    for line in text.splitlines():
        header = HEADER.match(line)
        if header:
            found.append(Block(header.group(2)))
            continue
        if not found:  # the preamble documents variables, not keys
            continue
        key = KEY.match(line)
        if key:
            found[-1].keys.add(key.group(1))
        kind = KIND.match(line)
        if kind:
            found[-1].kind = kind.group(1)
    return found


def models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in models_in(arg)]


def tables(model: type[BaseModel], prefix: str = "") -> dict[str, list[type[BaseModel]]]:
    """Every table of the model (dotted path) with the models that may fill it."""
    found: dict[str, list[type[BaseModel]]] = {}
    for name, field in model.model_fields.items():
        nested = models_in(field.annotation)
        if nested:
            path = f"{prefix}{name}"
            found[path] = nested
            for sub in nested:
                found.update(tables(sub, f"{path}."))
    return found


def scalar_keys(model: type[BaseModel]) -> set[str]:
    """The keys as written in the file: a field's alias when it has one (job names)."""
    return {field.alias or name for name, field in model.model_fields.items()
            if not _is_table(field.annotation)}


def _is_table(annotation: Any) -> bool:
    # A list of models is an array of tables; a plain model a table.
    return bool(models_in(annotation))


def kind_of(model: type[BaseModel]) -> str:
    kind: str = get_args(model.model_fields["kind"].annotation)[0]
    return kind


EXAMPLE_BLOCKS = blocks(EXAMPLE.read_text(encoding="utf-8"))
TABLES = tables(Settings)


def test_example_loads_and_its_values_are_the_defaults(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}

    example = load_settings(EXAMPLE, env)
    defaults = load_settings(environ=env)

    assert example.config_file == EXAMPLE
    exclude: Any = {"health": {"checks"}}
    assert example.model_dump(exclude=exclude) == defaults.model_dump(exclude=exclude)
    assert sorted(check.kind for check in example.health.checks) == sorted(
        kind_of(model) for model in CHECK_MODELS
    )


def test_the_walk_sees_every_section_and_check_kind() -> None:
    # Guards the test below against walking nothing.
    assert set(TABLES) == {
        "database",
        "source",
        "source.columns",
        "storage",
        "s3",
        "metrics",
        "failure_rate",
        "files",
        "logs",
        "alerts",
        "health",
        "health.checks",
        "runs",
        "schedule",
        "heartbeat",
        "prometheus",
    }
    assert len(TABLES["health.checks"]) == 7
    assert len(EXAMPLE_BLOCKS) > len(TABLES)


@pytest.mark.parametrize("table", sorted(t for t in TABLES if len(TABLES[t]) == 1))
def test_every_key_of_each_table_is_documented(table: str) -> None:
    (model,) = TABLES[table]
    written = set().union(*(b.keys for b in EXAMPLE_BLOCKS if b.table == table))

    assert scalar_keys(model) - written == set()


def test_every_table_has_a_header() -> None:
    assert set(TABLES) - {block.table for block in EXAMPLE_BLOCKS} == set()


@pytest.mark.parametrize(
    "model",
    CHECK_MODELS,
    ids=[kind_of(model) for model in CHECK_MODELS],
)
def test_every_check_kind_has_an_example_with_all_its_keys(model: type[BaseModel]) -> None:
    kind = kind_of(model)
    checks = [b for b in EXAMPLE_BLOCKS if b.table == "health.checks"]
    shared = set.intersection(*(scalar_keys(m) for m in CHECK_MODELS))
    own = [b for b in checks if b.kind == kind]

    assert len(own) == 1
    assert scalar_keys(model) - shared - own[0].keys == set()
    # Keys every kind has may be shown once, on any check.
    assert shared - set().union(*(b.keys for b in checks)) == set()


def test_no_documented_key_is_unknown() -> None:
    # A commented-out key is not validated by loading, so check its spelling here.
    for block in EXAMPLE_BLOCKS:
        models = TABLES.get(block.table, [])
        if block.table == "health.checks":
            models = [m for m in models if kind_of(m) == block.kind]
        assert models, f"[{block.table}] is not a table of the settings"
        known = set().union(*(scalar_keys(m) | set(m.model_fields) for m in models))
        assert block.keys - known == set(), f"[{block.table}]"
