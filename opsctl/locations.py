"""Where opsctl keeps its files when the configuration does not say.

The XDG base directories are what Linux operators expect, and they let cron, systemd and
containers move state around with one variable. Every function takes the environment as
an argument so tests and ``load_settings(environ=...)`` never depend on the real process
environment. Nothing here creates a directory: the adapter that writes a file does that,
so merely loading the configuration (``config validate`` in CI) touches no disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

APP_NAME = "opsctl"


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def _xdg(env: Mapping[str, str], variable: str, fallback: str) -> Path:
    # The XDG spec says a relative value is invalid and must be ignored.
    value = env.get(variable)
    if value and Path(value).is_absolute():
        return Path(value) / APP_NAME
    return _home(env) / fallback / APP_NAME


def state_dir(env: Mapping[str, str]) -> Path:
    """State that should survive a restart but is not worth backing up (the SQLite file)."""
    return _xdg(env, "XDG_STATE_HOME", ".local/state")


def data_dir(env: Mapping[str, str]) -> Path:
    """Data the user cares about (the local export files of ``demo seed``)."""
    return _xdg(env, "XDG_DATA_HOME", ".local/share")


def cache_dir(env: Mapping[str, str]) -> Path:
    """What can be rebuilt at any time (compiled page templates)."""
    return _xdg(env, "XDG_CACHE_HOME", ".cache")


def config_dir(env: Mapping[str, str]) -> Path:
    """Where ``config.toml`` is looked up when neither ``--config`` nor OPSCTL_CONFIG is set."""
    return _xdg(env, "XDG_CONFIG_HOME", ".config")


def default_database_url(env: Mapping[str, str]) -> str:
    """The embedded SQLite database, so opsctl works before anyone configures PostgreSQL."""
    return f"sqlite:///{state_dir(env) / 'opsctl.db'}"


def default_storage_root(env: Mapping[str, str]) -> Path:
    """The local storage root used when ``storage.root`` is not set."""
    return data_dir(env) / "exports"
