"""Loading, validating and redacting the configuration, with real files and a given environment."""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from datetime import timedelta
from pathlib import Path

import pytest

from opsctl import locations
from opsctl.errors import ConfigError, UsageError
from opsctl.exit_codes import ExitCode
from opsctl.settings import (
    Settings,
    database_url,
    load_settings,
    redacted,
    secret_values,
    storage_root,
)
from opsctl.settings.health import HttpCheck, SqlCheck

SECRET = "hunter2-s3cr3t"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def env_for(home: Path, **variables: str) -> dict[str, str]:
    """An environment isolated from the real one: only HOME and what the test sets."""
    return {"HOME": str(home), **variables}


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, home: Path, text: str, **variables: str) -> Settings:
    return load_settings(write(tmp_path, text), env_for(home, **variables))


def config_error(tmp_path: Path, home: Path, text: str, **variables: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, home, text, **variables)
    assert caught.value.exit_code == ExitCode.CONFIG
    return caught.value


# --- defaults and sources ------------------------------------------------------------------


def test_defaults_without_any_file(home: Path) -> None:
    settings = load_settings(environ=env_for(home))

    assert settings.config_file is None
    assert database_url(settings) == f"sqlite:///{home}/.local/state/opsctl/opsctl.db"
    assert storage_root(settings) == home / ".local/share/opsctl/exports"
    assert settings.database.connect_timeout_s == 5
    assert settings.source.table == "export_logs"
    assert settings.source.columns.created_at == "created_at"
    assert settings.storage.backend == "local"
    assert settings.s3.max_attempts == 3
    assert settings.metrics.period == "hourly"
    assert settings.failure_rate.threshold == 0.10
    assert settings.failure_rate.warning == 0.05
    assert settings.failure_rate.min_samples == 5
    assert settings.failure_rate.window_td == timedelta(minutes=60)
    assert settings.files.batch_size == 2000
    assert settings.files.limit is None
    assert settings.logs.retention_days == 30
    assert settings.logs.archive is False
    assert settings.logs.batch_size == 5000
    assert settings.alerts.webhook_url is None
    assert settings.health.timeout_s == 10
    assert settings.health.checks == []
    assert settings.runs.window_td == timedelta(days=7)
    assert settings.runs.alert_max_avg_duration_td == timedelta(minutes=5)


def test_toml_file_is_loaded(tmp_path: Path, home: Path) -> None:
    path = write(
        tmp_path,
        """
        [failure_rate]
        threshold = 0.2
        window = "1h30m"

        [source]
        table = "public.export_logs"

        [source.columns]
        created_at = "inserted_at"

        [[health.checks]]
        name = "db"
        kind = "database"
        critical = false
        """,
    )

    settings = load_settings(path, env_for(home))

    assert settings.config_file == path
    assert settings.failure_rate.threshold == 0.2
    assert settings.failure_rate.window_td == timedelta(hours=1, minutes=30)
    assert settings.source.table == "public.export_logs"
    assert settings.source.columns.created_at == "inserted_at"
    assert settings.source.columns.id == "id"
    assert [(c.name, c.kind, c.is_critical) for c in settings.health.checks] == [
        ("db", "database", False)
    ]


def test_default_file_is_found_under_xdg_config_home(tmp_path: Path, home: Path) -> None:
    config_home = tmp_path / "xdg-config"
    (config_home / "opsctl").mkdir(parents=True)
    path = write(config_home / "opsctl", "[logs]\nretention_days = 7\n")

    settings = load_settings(environ=env_for(home, XDG_CONFIG_HOME=str(config_home)))

    assert settings.config_file == path
    assert settings.logs.retention_days == 7


def test_opsctl_config_names_the_file(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "[logs]\nretention_days = 9\n", name="elsewhere.toml")

    settings = load_settings(environ=env_for(home, OPSCTL_CONFIG=str(path)))

    assert settings.config_file == path
    assert settings.logs.retention_days == 9


def test_explicit_path_beats_opsctl_config(tmp_path: Path, home: Path) -> None:
    explicit = write(tmp_path, "[logs]\nretention_days = 1\n", name="a.toml")
    named = write(tmp_path, "[logs]\nretention_days = 2\n", name="b.toml")

    settings = load_settings(explicit, env_for(home, OPSCTL_CONFIG=str(named)))

    assert settings.logs.retention_days == 1


def test_empty_opsctl_config_counts_as_unset(home: Path) -> None:
    settings = load_settings(environ=env_for(home, OPSCTL_CONFIG=""))

    assert settings.config_file is None


def test_environment_overrides_the_file_key_by_key(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        '[failure_rate]\nthreshold = 0.2\nwindow = "2h"\n',
        OPSCTL_FAILURE_RATE__THRESHOLD="0.3",
    )

    assert settings.failure_rate.threshold == 0.3
    assert settings.failure_rate.window == "2h"


def test_nested_delimiter_reaches_two_levels_and_ignores_case(home: Path) -> None:
    settings = load_settings(
        environ=env_for(
            home,
            OPSCTL_SOURCE__COLUMNS__CREATED_AT="inserted_at",
            opsctl_logs__archive="true",
            OPSCTL_LOGS__ARCHIVE_URI="file:///srv/archive",
            OPSCTL_HEALTH__CHECKS='[{"name": "port", "kind": "tcp", "host": "db", "port": 5432}]',
        )
    )

    assert settings.source.columns.created_at == "inserted_at"
    assert settings.logs.archive is True
    assert settings.logs.archive_uri == "file:///srv/archive"
    assert [(c.name, c.kind) for c in settings.health.checks] == [("port", "tcp")]


def test_given_environ_is_used_instead_of_the_process_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCTL_FAILURE_RATE__THRESHOLD", "7")
    monkeypatch.setenv("OPSCTL_NOT__A_SECTION", "1")

    settings = load_settings(environ=env_for(home))

    assert settings.failure_rate.threshold == 0.10


def test_overrides_beat_environment_and_file(tmp_path: Path, home: Path) -> None:
    settings = load_settings(
        write(tmp_path, "[failure_rate]\nthreshold = 0.2\nmin_samples = 3\n"),
        env_for(home, OPSCTL_FAILURE_RATE__THRESHOLD="0.3"),
        overrides={"failure_rate": {"threshold": 0.4}},
    )

    assert settings.failure_rate.threshold == 0.4
    assert settings.failure_rate.min_samples == 3


def test_invalid_override_is_a_usage_error(home: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_settings(environ=env_for(home), overrides={"files": {"batch_size": 0}})

    assert (
        str(caught.value) == "files.batch_size: Input should be greater than or equal to 1 (got 0)"
    )
    assert caught.value.exit_code == ExitCode.USAGE


# --- files that cannot be read -------------------------------------------------------------


def test_explicit_missing_file(tmp_path: Path, home: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError) as caught:
        load_settings(missing, env_for(home))

    assert str(caught.value) == f"config file not found: {missing}"
    assert caught.value.key is None
    assert caught.value.exit_code == ExitCode.CONFIG


def test_opsctl_config_pointing_nowhere(tmp_path: Path, home: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env_for(home, OPSCTL_CONFIG=str(missing)))

    assert str(caught.value) == f"config file not found: {missing}"


def test_unreadable_file(tmp_path: Path, home: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env_for(home))

    assert str(caught.value) == f"cannot read config file {tmp_path}: Is a directory"


def test_malformed_toml_names_file_line_and_column(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "[logs]\nretention_days = = 3\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path, env_for(home))

    assert str(caught.value) == f"{path}: invalid TOML: Invalid value (at line 2, column 18)"
    assert caught.value.key is None


def test_file_that_is_not_utf8(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[logs]\narchive_uri = "file:///\xff"\n')

    with pytest.raises(ConfigError) as caught:
        load_settings(path, env_for(home))

    assert str(caught.value) == f"{path}: invalid TOML: the file is not UTF-8 text"


# --- invalid values ------------------------------------------------------------------------


def test_unknown_key_in_file(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, "[logs]\nretention = 5\n")

    assert str(error) == "logs.retention: unknown key"
    assert error.key == "logs.retention"


def test_unknown_section_in_file(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, "[logging]\nlevel = 'debug'\n")

    assert str(error) == "logging: unknown key"


def test_wrong_type(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, '[logs]\nretention_days = "a month"\n')

    assert str(error) == (
        "logs.retention_days: Input should be a valid integer, unable to parse string as an"
        ' integer (got "a month")'
    )


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            "[failure_rate]\nthreshold = 1.5",
            "failure_rate.threshold",
            "Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            "[logs]\nretention_days = -1",
            "logs.retention_days",
            "Input should be greater than or equal to 0 (got -1)",
        ),
        (
            "[logs]\nbatch_size = 0",
            "logs.batch_size",
            "Input should be greater than or equal to 1 (got 0)",
        ),
        (
            "[logs]\ngzip_level = 10",
            "logs.gzip_level",
            "Input should be less than or equal to 9 (got 10)",
        ),
        (
            "[files]\nbatch_size = 10001",
            "files.batch_size",
            "Input should be less than or equal to 10000 (got 10001)",
        ),
        (
            "[metrics]\ntop_error_types = 101",
            "metrics.top_error_types",
            "Input should be less than or equal to 100 (got 101)",
        ),
        (
            "[s3]\nmax_attempts = 0",
            "s3.max_attempts",
            "Input should be greater than or equal to 1 (got 0)",
        ),
        (
            '[storage]\nbackend = "ftp"',
            "storage.backend",
            "Input should be 'local' or 's3' (got \"ftp\")",
        ),
        (
            "[[health.checks]]\nname = 'pg'\nkind = 'tcp'\nhost = 'db'\nport = 0",
            "health.checks[0].port",
            "Input should be greater than or equal to 1 (got 0)",
        ),
    ],
)
def test_out_of_range_values_name_their_key(
    tmp_path: Path, home: Path, text: str, key: str, message: str
) -> None:
    error = config_error(tmp_path, home, text)

    assert str(error) == f"{key}: {message}"
    assert error.key == key


def test_range_boundaries_are_inclusive(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        """
        [failure_rate]
        threshold = 1
        warning = 0
        min_samples = 0
        [logs]
        retention_days = 0
        gzip_level = 9
        batch_size = 100000
        [metrics]
        top_error_types = 100
        """,
    )

    assert (settings.failure_rate.threshold, settings.failure_rate.warning) == (1, 0)
    assert (settings.logs.retention_days, settings.logs.gzip_level) == (0, 9)
    assert (settings.logs.batch_size, settings.metrics.top_error_types) == (100000, 100)


def test_several_errors_are_joined_and_the_first_is_the_key(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, "[logs]\nretention_days = -1\nbatch_size = 0\n")

    assert str(error) == (
        "logs.retention_days: Input should be greater than or equal to 0 (got -1); "
        "logs.batch_size: Input should be greater than or equal to 1 (got 0)"
    )
    assert error.key == "logs.retention_days"


def test_s3_backend_needs_a_bucket(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, '[storage]\nbackend = "s3"\n')

    assert str(error) == 'storage.bucket: required when backend is "s3"'
    assert error.key == "storage.bucket"


def test_archive_needs_a_uri(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, "[logs]\narchive = true\n")

    assert str(error) == "logs.archive_uri: required when archive = true"


@pytest.mark.parametrize("uri", ["http://example.com/x", "s3://", "file://relative/dir"])
def test_archive_uri_must_be_s3_or_absolute_file(tmp_path: Path, home: Path, uri: str) -> None:
    error = config_error(tmp_path, home, f'[logs]\narchive_uri = "{uri}"\n')

    assert str(error) == (
        f'logs.archive_uri: must be s3://bucket[/prefix] or file:///absolute/dir (got "{uri}")'
    )


def test_warning_above_threshold(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, "[failure_rate]\nthreshold = 0.1\nwarning = 0.2\n")

    assert str(error) == "failure_rate.warning: must not exceed threshold (0.1)"


def test_duplicate_check_names(tmp_path: Path, home: Path) -> None:
    text = "[[health.checks]]\nname = 'db'\nkind = 'database'\n" * 2

    error = config_error(tmp_path, home, text)

    assert str(error) == "health.checks: duplicate check name 'db'"
    assert error.key == "health.checks"


def test_bad_durations(tmp_path: Path, home: Path) -> None:
    error = config_error(
        tmp_path,
        home,
        """
        [failure_rate]
        window = "5"
        [[health.checks]]
        name = "fresh"
        kind = "freshness"
        job = "metrics.aggregate"
        max_age = "soon"
        """,
    )

    hint = "expected e.g. 30s, 15m, 1h, 7d or 1h30m"
    assert str(error) == (
        f"failure_rate.window: invalid duration '5'; {hint}; "
        f"health.checks[0].max_age: invalid duration 'soon'; {hint}"
    )


def test_unknown_and_missing_check_kind(tmp_path: Path, home: Path) -> None:
    error = config_error(
        tmp_path,
        home,
        "[[health.checks]]\nname = 'a'\nkind = 'ping'\n[[health.checks]]\nname = 'b'\n",
    )

    assert str(error) == (
        "health.checks[0].kind: Input tag 'ping' found using 'kind' does not match any of the"
        " expected tags: 'database', 'http', 'tcp', 's3', 'disk', 'sql', 'freshness'; "
        "health.checks[1].kind: required key is missing"
    )


def test_check_keys_are_checked_per_kind(tmp_path: Path, home: Path) -> None:
    error = config_error(
        tmp_path, home, "[[health.checks]]\nname = 'a'\nkind = 'database'\nhost = 'db'\n"
    )

    assert str(error) == "health.checks[0].host: unknown key"


@pytest.mark.parametrize("root", ["", "/", "  "])
def test_storage_root_refuses_empty_and_slash(tmp_path: Path, home: Path, root: str) -> None:
    error = config_error(tmp_path, home, f'[storage]\nroot = "{root}"\n')

    assert str(error) == f'storage.root: must not be empty or / (got "{root}")'


def test_storage_prefix_stays_relative(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, '[storage]\nprefix = "exports/../other"\n')

    assert str(error) == (
        'storage.prefix: must be relative and must not contain .. (got "exports/../other")'
    )


def test_table_and_columns_must_be_identifiers(tmp_path: Path, home: Path) -> None:
    error = config_error(
        tmp_path,
        home,
        '[source]\ntable = "logs; drop table x"\n[source.columns]\nstatus = "state"\nid = "1d"\n',
    )

    assert str(error) == (
        "source.table: must be a plain identifier, optionally schema-qualified (schema.table)"
        ' (got "logs; drop table x"); source.columns.id: must be a plain identifier'
        ' (letters, digits, underscore) (got "1d")'
    )


def test_two_columns_cannot_share_a_name(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, '[source.columns]\nuser_id = "export_id"\n')

    assert str(error) == "source.columns.user_id: maps to 'export_id', as export_id does"


def test_s3_keys_come_in_pairs(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, '[s3]\naccess_key_id = "AKIAEXAMPLE"\n')

    assert str(error) == "s3.secret_access_key: access_key_id and secret_access_key go together"


# --- environment strictness ----------------------------------------------------------------


def test_unknown_key_from_environment_names_the_variable(home: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env_for(home, OPSCTL_LOGS__RETENTION="5"))

    assert str(caught.value) == "logs.retention: unknown key (from OPSCTL_LOGS__RETENTION)"


def test_bad_value_from_environment_names_the_variable(home: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env_for(home, OPSCTL_FAILURE_RATE__THRESHOLD="1.5"))

    assert str(caught.value) == (
        'failure_rate.threshold: Input should be less than or equal to 1 (got "1.5")'
        " (from OPSCTL_FAILURE_RATE__THRESHOLD)"
    )


def test_unknown_section_and_single_underscore_typo_in_environment(home: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env_for(home, OPSCTL_FOO__BAR="1", OPSCTL_DATABASE_URL="x"))

    assert str(caught.value) == (
        "OPSCTL_FOO__BAR: unknown section 'foo'; "
        "OPSCTL_DATABASE_URL: not a setting; did you mean OPSCTL_DATABASE__URL?"
    )
    assert caught.value.key == "foo.bar"


def test_opsctl_runtime_variables_are_not_settings(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "[logs]\nretention_days = 3\n")

    settings = load_settings(
        environ=env_for(
            home,
            OPSCTL_CONFIG=str(path),
            OPSCTL_DRY_RUN="1",
            OPSCTL_TEST_DATABASE_URL="postgresql://u:p@localhost/test",
            OPSCTL_LOG_LEVEL="debug",
            OPSCTL_OUTPUT="json",
        )
    )

    assert settings.logs.retention_days == 3


def test_invalid_json_in_environment(home: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env_for(home, OPSCTL_HEALTH__CHECKS="[{not json"))

    assert str(caught.value) == "health: an OPSCTL_HEALTH... variable is not valid JSON"
    assert caught.value.key == "health"


# --- database url and locations ------------------------------------------------------------


def test_database_url_default_uses_xdg_state_home(tmp_path: Path, home: Path) -> None:
    state = tmp_path / "state"

    settings = load_settings(environ=env_for(home, XDG_STATE_HOME=str(state)))

    assert database_url(settings) == f"sqlite:///{state}/opsctl/opsctl.db"
    assert database_url(settings).startswith("sqlite:////")


def test_relative_xdg_variables_are_ignored(home: Path) -> None:
    env = env_for(home, XDG_STATE_HOME="rel/state", XDG_DATA_HOME="", XDG_CONFIG_HOME="x")

    assert locations.state_dir(env) == home / ".local/state/opsctl"
    assert locations.data_dir(env) == home / ".local/share/opsctl"
    assert locations.config_dir(env) == home / ".config/opsctl"
    assert locations.default_storage_root(env) == home / ".local/share/opsctl/exports"


def test_locations_follow_xdg_variables(tmp_path: Path) -> None:
    env = {
        "XDG_STATE_HOME": str(tmp_path / "s"),
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
    }

    assert locations.default_database_url(env) == f"sqlite:///{tmp_path}/s/opsctl/opsctl.db"
    assert locations.default_storage_root(env) == tmp_path / "d/opsctl/exports"
    assert locations.config_dir(env) == tmp_path / "c/opsctl"
    assert not (tmp_path / "s").exists()


def test_password_is_injected_and_psycopg_chosen(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        '[database]\nurl = "postgresql://opsctl@db.example:5432/app"\n',
        OPSCTL_DATABASE__PASSWORD="p@ss/w:rd",
    )

    assert (
        database_url(settings) == "postgresql+psycopg://opsctl:p%40ss%2Fw%3Ard@db.example:5432/app"
    )


def test_password_replaces_one_already_in_the_url(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        '[database]\nurl = "postgresql+psycopg://opsctl:old@db/app"\npassword = "new"\n',
    )

    assert database_url(settings) == "postgresql+psycopg://opsctl:new@db/app"


def test_password_without_a_postgres_user_is_refused(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, "", OPSCTL_DATABASE__PASSWORD=SECRET)

    assert str(error) == (
        "database.password: needs a PostgreSQL url that names a user"
        " (from OPSCTL_DATABASE__PASSWORD)"
    )


def test_database_url_must_be_sqlite_or_postgres(tmp_path: Path, home: Path) -> None:
    error = config_error(tmp_path, home, f'[database]\nurl = "mysql://u:{SECRET}@h/db"\n')

    assert str(error) == "database.url: expected a sqlite:/// or postgresql+psycopg:// URL"


def test_storage_root_expands_home(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, '[storage]\nroot = "~/exports"\n')

    assert storage_root(settings) == home / "exports"


# --- health check models -------------------------------------------------------------------


def test_sql_critical_is_a_flag_or_a_threshold(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        """
        [[health.checks]]
        name = "flag"
        kind = "sql"
        query = "select 1"
        critical = false
        warning = 5
        [[health.checks]]
        name = "threshold"
        kind = "sql"
        query = "select 1"
        warning = 10
        critical = 1
        """,
    )
    flag, threshold = settings.health.checks
    assert isinstance(flag, SqlCheck)
    assert isinstance(threshold, SqlCheck)

    assert (flag.is_critical, flag.critical_threshold) == (False, None)
    # Strictly beyond a level: a value equal to it is still fine.
    assert [flag.judge(v) for v in (4, 5, 500)] == ["ok", "ok", "warning"]
    assert (threshold.is_critical, threshold.critical_threshold) == (True, 1.0)
    # critical below warning: lower is worse
    assert [threshold.judge(v) for v in (11, 10, 5, 1, 0)] == [
        "ok",
        "ok",
        "warning",
        "warning",
        "critical",
    ]


def test_http_status_defaults_to_2xx_and_3xx(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        """
        [[health.checks]]
        name = "any"
        kind = "http"
        url = "http://127.0.0.1:1/"
        [[health.checks]]
        name = "exact"
        kind = "http"
        url = "http://127.0.0.1:1/"
        expect_status = [204]
        """,
    )
    any_ok, exact = settings.health.checks
    assert isinstance(any_ok, HttpCheck)
    assert isinstance(exact, HttpCheck)

    assert [any_ok.status_ok(s) for s in (199, 200, 302, 399, 400, 503)] == [
        False,
        True,
        True,
        True,
        False,
        False,
    ]
    assert [exact.status_ok(s) for s in (200, 204)] == [False, True]


# --- secrets -------------------------------------------------------------------------------

SECRET_CONFIG = f"""
[database]
url = "postgresql://opsctl:{SECRET}@db.example:5432/app"

[s3]
access_key_id = "AKIA-{SECRET}"
secret_access_key = "{SECRET}-aws"

[alerts]
webhook_url = "https://hooks.example.com/T0/{SECRET}-hook"

[[health.checks]]
name = "heartbeat"
kind = "http"
url = "https://hc.example.com/ping/{SECRET}-ping"
"""


def test_secrets_stay_out_of_str_repr_and_redacted(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, SECRET_CONFIG)

    shown = redacted(settings)

    assert SECRET not in str(settings)
    assert SECRET not in repr(settings)
    assert SECRET not in json.dumps(shown)
    assert shown["database"]["url"] == "postgresql+psycopg://opsctl:***@db.example:5432/app"
    assert shown["s3"]["access_key_id"] == "***"
    assert shown["s3"]["secret_access_key"] == "***"
    assert shown["alerts"]["webhook_url"] == "***"
    assert shown["health"]["checks"][0]["url"] == "***"


def test_redacted_fills_in_resolved_defaults(tmp_path: Path, home: Path) -> None:
    state = tmp_path / "state"
    settings = load_settings(environ=env_for(home, XDG_STATE_HOME=str(state)))

    shown = redacted(settings)

    assert shown["database"]["url"] == f"sqlite:///{state}/opsctl/opsctl.db"
    assert shown["database"]["password"] is None
    assert shown["storage"]["root"] == str(home / ".local/share/opsctl/exports")
    assert shown["failure_rate"] == {
        "window": "60m",
        "threshold": 0.10,
        "warning": 0.05,
        "min_samples": 5,
    }
    assert json.loads(json.dumps(shown)) == shown


def test_redacted_masks_an_injected_password(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        '[database]\nurl = "postgresql://opsctl@db/app?sslmode=require"\n',
        OPSCTL_DATABASE__PASSWORD=SECRET,
    )

    shown = redacted(settings)

    assert shown["database"]["url"] == "postgresql+psycopg://opsctl:***@db/app?sslmode=require"
    assert shown["database"]["password"] == "***"


def test_secret_values_lists_every_secret(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, SECRET_CONFIG)

    assert secret_values(settings) == [
        f"https://hooks.example.com/T0/{SECRET}-hook",
        f"https://hc.example.com/ping/{SECRET}-ping",
        f"AKIA-{SECRET}",
        f"{SECRET}-aws",
        SECRET,
    ]


def test_secret_values_include_password_as_injected(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        '[database]\nurl = "postgresql://opsctl@db/app"\n',
        OPSCTL_DATABASE__PASSWORD="p@ss",
    )

    assert secret_values(settings) == ["p%40ss", "p@ss"]
    assert load_settings(environ=env_for(home)).database.url is None
    assert secret_values(load_settings(environ=env_for(home))) == []


@pytest.mark.parametrize(
    ("text", "variables"),
    [
        (f'[database]\nurl = "mysql://u:{SECRET}@h/db"\n', {}),
        (f'[alerts]\nwebhook_url = "ftp://{SECRET}"\n', {}),
        (f'[database]\npasswd = "{SECRET}"\n', {}),
        (f'[s3]\naccess_key_id = "{SECRET}"\n', {}),
        (f"[[health.checks]]\nname = 'hb'\nkind = 'http'\nurl = '{SECRET}'\n", {}),
        (f'database = "postgresql://u:{SECRET}@h/db"\n', {}),
        (f'alerts = "https://hooks.example.com/{SECRET}"\n', {}),
        (f'[health]\nchecks = ["https://hc.example.com/{SECRET}"]\n', {}),
        (f'[health]\nchecks = "https://hc.example.com/{SECRET}"\n', {}),
        ("", {"OPSCTL_DATABASE__URL": f"oracle://{SECRET}"}),
        ("", {"OPSCTL_DATABASE": f"postgresql://u:{SECRET}@h/db"}),
        ("", {"OPSCTL_ALERTS__WEBHOOK_URL": f"{SECRET}", "OPSCTL_ALERTS__TIMEOUT_S": "0"}),
        ("", {"OPSCTL_DATABASE__PASSWORD": SECRET}),
        ("", {"OPSCTL_ALERTS__WEBHOOK_URL": SECRET}),
    ],
)
def test_secrets_stay_out_of_error_messages_and_tracebacks(
    tmp_path: Path, home: Path, text: str, variables: dict[str, str]
) -> None:
    error = config_error(tmp_path, home, text, **variables)

    assert error.key is not None
    assert SECRET not in str(error)
    assert SECRET not in "".join(traceback.format_exception(error))


def test_explicit_environ_beats_the_one_recorded_at_load(tmp_path: Path, home: Path) -> None:
    settings = load_settings(environ=env_for(home))
    other = tmp_path / "other"

    url = database_url(settings, {"XDG_STATE_HOME": str(other / "state")})
    root = storage_root(settings, {"XDG_DATA_HOME": str(other / "data")})

    assert url == f"sqlite:///{other}/state/opsctl/opsctl.db"
    assert root == other / "data/opsctl/exports"


def test_loading_settings_imports_no_driver() -> None:
    # `opsctl --help` and `config validate` must stay fast: no database, S3 or HTTP client.
    code = (
        "import sys, opsctl.settings; "
        "print(sorted(m for m in ('sqlalchemy', 'boto3', 'botocore', 'httpx') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_cache_dir_follows_xdg_cache_home(tmp_path: Path) -> None:
    assert locations.cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache/opsctl"
    assert locations.cache_dir({"HOME": "/h", "XDG_CACHE_HOME": str(tmp_path / "c")}) == (
        tmp_path / "c/opsctl")
