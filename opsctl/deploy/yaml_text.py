"""Just enough YAML for manifests: block mappings and sequences, JSON-quoted strings.

Every string is written double-quoted with JSON escapes, which YAML reads back exactly
(``"0 * * * *"``, ``"no"`` and ``"1.10"`` stay strings), so no runtime dependency on a YAML
library is needed to produce manifests a person can read and diff.
"""

from __future__ import annotations

import json
from typing import Any


class Literal(str):
    """A multi-line string written as a YAML literal block (``|``), as people write files."""


def dump(value: Any) -> str:
    return "\n".join(_lines(value, 0)) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            head = f"{pad}{_key(key)}:"
            out += _nested(head, item, indent)
        return out or [f"{pad}{{}}"]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict) and item:
                first, *rest = _lines(item, indent + 2)
                out.append(f"{pad}- {first.lstrip()}")
                out += rest
            else:
                out += _nested(f"{pad}-", item, indent)
        return out or [f"{pad}[]"]
    return [f"{pad}{_scalar(value)}"]


def _nested(head: str, item: Any, indent: int) -> list[str]:
    if isinstance(item, Literal):
        body = [f"{' ' * (indent + 2)}{line}" if line else "" for line in item.splitlines()]
        return [f"{head} |", *body]
    if isinstance(item, dict | list) and item:
        return [head, *_lines(item, indent + 2)]
    if isinstance(item, dict):
        return [f"{head} {{}}"]
    if isinstance(item, list):
        return [f"{head} []"]
    return [f"{head} {_scalar(item)}"]


def _key(key: str) -> str:
    plain = key.replace("-", "").replace("_", "").replace(".", "").replace("/", "")
    return key if plain.isalnum() and key.isascii() else json.dumps(key)
