"""Loading the configuration: one TOML file, overridden by ``OPSCTL_<SECTION>__<KEY>``,
then by flags.

Every section forbids unknown keys, because a misspelt ``retention_day`` that silently
falls back to the default is how a cleanup job deletes the wrong rows. Every failure
becomes one :class:`~opsctl.errors.ConfigError` (exit 78) naming the dotted key, and no
message ever carries a secret's value. Loading is pure: it reads one file and the
environment it is handed, creates nothing and imports no driver.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
)

from opsctl import locations
from opsctl.errors import ConfigError, OpsctlError, UsageError
from opsctl.settings.fields import InvalidKey
from opsctl.settings.health import CHECK_MODELS
from opsctl.settings.model import Settings
from opsctl.settings.schedule import job_key

# --- loading -------------------------------------------------------------------------------

# opsctl's own variables: they share the prefix but are not settings keys.
RUNTIME_VARIABLES = frozenset(
    {
        "OPSCTL_CONFIG",
        "OPSCTL_DRY_RUN",
        "OPSCTL_TEST_DATABASE_URL",
        "OPSCTL_LOG_LEVEL",
        "OPSCTL_OUTPUT",
    }
)
_SENSITIVE_KEYS = frozenset(
    {"url", "password", "webhook_url", "access_key_id", "secret_access_key"}
)
_STRUCTURAL_ERRORS = frozenset(
    {"model_type", "model_attributes_type", "dict_type", "list_type", "union_tag_invalid"}
)
_CHECK_KINDS = frozenset(
    get_args(model.model_fields["kind"].annotation)[0] for model in CHECK_MODELS
)
_LOCATION_VARIABLES = ("HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")


class _EnvironSource(EnvSettingsSource):
    """The standard environment source, reading the mapping it is given."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {key.lower(): value for key, value in environ.items()}


class _TomlSource(PydanticBaseSettingsSource):
    """The already-parsed file, so parse errors are ours to word (path, line, column)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def load_settings(
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the file and the environment; ConfigError (78) naming the key on any problem.

    Precedence: file < ``OPSCTL_<SECTION>__<KEY>`` < ``overrides`` (nested dicts, from
    flags). An invalid override raises UsageError (64): it came from the command line.
    """
    env = os.environ if environ is None else environ
    _reject_unknown_variables(env)
    path = _config_path(config_path, env)
    data = _read_toml(path) if path is not None else {}
    _refuse_deep_nesting(data, path)
    _refuse_repeated_job_keys(data, path)
    init = dict(overrides or {})
    sources = (
        InitSettingsSource(Settings, init_kwargs=init),
        _EnvironSource(Settings, env),
        _TomlSource(Settings, data),
    )
    # `from None` below: pydantic's own message quotes every input, secrets included, and
    # a chained exception would print it in a debug traceback.
    try:
        settings = Settings(_build_sources=(sources, init))
    except ValidationError as exc:
        raise _translate(exc, env, init) from None
    except RecursionError:
        # Only an OPSCTL_* variable holding deeply nested JSON gets here: the file's data
        # was bounded above.
        raise ConfigError("an OPSCTL_... variable holds JSON nested too deeply") from None
    except SettingsError as exc:
        # Only complex values (a section or health.checks as JSON) can fail this early.
        field = re.search(r'field "(\w+)"', str(exc))
        section = field.group(1) if field else "environment"
        message = f"{section}: an OPSCTL_{section.upper()}... variable is not valid JSON"
        raise ConfigError(message, key=section) from None
    settings._location_env = {name: env[name] for name in _LOCATION_VARIABLES if name in env}
    settings._config_file = path
    return settings


def _reject_unknown_variables(env: Mapping[str, str]) -> None:
    # pydantic-settings ignores OPSCTL_FOO__BAR (no field "foo") and OPSCTL_LOGS_BATCH_SIZE
    # (single underscore); both are typos that would silently leave a default in place.
    sections = sorted(Settings.model_fields)
    problems: list[tuple[str, str]] = []
    for name in env:
        upper = name.upper()
        if not upper.startswith("OPSCTL_") or upper in RUNTIME_VARIABLES:
            continue
        rest = upper.removeprefix("OPSCTL_").lower()
        section, nested, key = rest.partition("__")
        if nested and section not in sections:
            problems.append((f"{section}.{key}", f"{name}: unknown section {section!r}"))
        elif not nested:
            guess = next((s for s in sections if rest.startswith(f"{s}_")), None)
            if guess is not None:
                key = rest.removeprefix(f"{guess}_")
                hint = f"OPSCTL_{guess.upper()}__{key.upper()}"
                problems.append((f"{guess}.{key}", f"{name}: not a setting; did you mean {hint}?"))
    if problems:
        raise ConfigError("; ".join(text for _, text in problems), key=problems[0][0])


def _config_path(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    named = env.get("OPSCTL_CONFIG")
    if named:  # empty counts as unset, as `OPSCTL_CONFIG=${UNSET}` in compose files gives
        return Path(named)
    default = locations.config_dir(env) / "config.toml"
    return default if default.exists() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: the file is not UTF-8 text") from None
    except RecursionError:
        # tomllib parses arrays and inline tables recursively: `a = [[[[...]]]]` thousands
        # deep would otherwise end in a traceback of thousands of lines.
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


# No opsctl setting nests deeper than a few levels ([[health.checks]] is three); anything
# far past that is a broken or hostile file, refused before validation walks it.
MAX_NESTING = 32


def _refuse_deep_nesting(data: dict[str, Any], path: Path | None) -> None:
    """ConfigError naming the first key nested more than MAX_NESTING levels (iteratively:
    the check must not recurse into what it is guarding against)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, key, depth = stack.pop()
        if depth > MAX_NESTING:
            named = key.split("[")[0]
            raise ConfigError(f"{path}: {named}: nested more than {MAX_NESTING} levels deep",
                              key=named)
        if isinstance(node, dict):
            stack.extend((value, f"{key}.{name}" if key else str(name), depth + 1)
                         for name, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, f"{key}[{i}]", depth + 1) for i, value in enumerate(node))


def _refuse_repeated_job_keys(data: Mapping[str, Any], path: Path | None) -> None:
    """ConfigError naming a job written both dotted and quoted in ``[schedule]`` or
    ``[heartbeat.jobs]``: both spellings are the same key, which TOML refuses to define
    twice, so the file is ambiguous and no spelling may silently win. Only the file is
    checked: an ``OPSCTL_SCHEDULE__...`` variable overrides a file key, whatever its form."""
    heartbeat = data.get("heartbeat")
    tables = (("schedule", data.get("schedule"), job_key),
              ("heartbeat.jobs", heartbeat.get("jobs") if isinstance(heartbeat, dict) else None,
               str))
    for section, table, fold in tables:
        if not isinstance(table, dict):
            continue
        seen: set[str] = set()
        for spelled in _flat_keys(table, ""):
            name = fold(spelled)
            if name in seen:
                key = f"{section}.{name}"
                raise ConfigError(f"{key}: defined twice (dotted and quoted spellings of "
                                  f"the same job) in {path}", key=key)
            seen.add(name)


def _flat_keys(table: Mapping[str, Any], prefix: str) -> list[str]:
    # A list, not a dict: the repeats are what is being looked for.
    found: list[str] = []
    for name, value in table.items():
        if isinstance(value, dict):
            found.extend(_flat_keys(value, f"{prefix}{name}."))
        else:
            found.append(f"{prefix}{name}")
    return found


def _translate(
    exc: ValidationError, env: Mapping[str, str], overrides: Mapping[str, Any]
) -> OpsctlError:
    variables = {name.upper() for name in env}
    keys: list[str] = []
    messages: list[str] = []
    from_flags = True
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, InvalidKey):
            loc.append(cause.key)
        if error["type"].startswith("union_tag"):
            loc.append("kind")
        loc = [part for i, part in enumerate(loc) if not _is_union_tag(loc, i)]
        text = _describe(error, loc)
        variable = "OPSCTL_" + "__".join(str(part) for part in loc).upper()
        if all(isinstance(part, str) for part in loc) and variable in variables:
            text += f" (from {variable})"
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        keys.append(key)
        messages.append(f"{key}: {text}")
        from_flags = from_flags and bool(loc) and _has_path(overrides, loc)
    if from_flags:
        return UsageError("; ".join(messages))
    return ConfigError("; ".join(messages), key=keys[0])


def _describe(error: ErrorDetails, loc: list[str | int]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] in ("missing", "union_tag_not_found"):
        return "required key is missing"
    text = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    # Show the offending value, unless it may be a secret (a secret key, or a string where a
    # table was expected), or our own validator already quoted it.
    if not isinstance(value, str | int | float | bool) or _SENSITIVE_KEYS & set(map(str, loc)):
        return text
    if error["type"] in _STRUCTURAL_ERRORS:  # `database = "postgresql://u:pw@..."`
        return text
    if error["type"] == "value_error" and repr(value) in text:
        return text
    shown = json.dumps(value)
    return f"{text} (got {shown if len(shown) <= 80 else shown[:77] + '...'})"


def _is_union_tag(loc: list[str | int], index: int) -> bool:
    # Pydantic puts the discriminator's value in the location: health.checks.0.http.url.
    return index > 0 and isinstance(loc[index - 1], int) and loc[index] in _CHECK_KINDS


def _has_path(data: Mapping[str, Any], loc: list[str | int]) -> bool:
    node: Any = data
    for part in loc:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True
