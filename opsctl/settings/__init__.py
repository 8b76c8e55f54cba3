"""The configuration: one TOML file, overridden by ``OPSCTL_<SECTION>__<KEY>``, then by flags.

``loading`` reads and validates it (every problem a ConfigError naming the key), ``model``
holds the effective :class:`Settings`, one module per family of sections holds their
models (``data``, ``jobs``, ``health``), and ``secrets`` knows what must never be printed.
Nothing here imports a driver.
"""

from opsctl.settings.loading import RUNTIME_VARIABLES, load_settings
from opsctl.settings.model import Settings, database_url, storage_root
from opsctl.settings.secrets import redacted, secret_values

__all__ = [
    "RUNTIME_VARIABLES",
    "Settings",
    "database_url",
    "load_settings",
    "redacted",
    "secret_values",
    "storage_root",
]
