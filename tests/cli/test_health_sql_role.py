"""``health probe`` with a sql check on the real PostgreSQL, logged in as a superuser:
refused with a clear check error unless ``[health] allow_superuser = true``."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import Cli, Victim, export_row, insert_exports, isolated_env, terminate

pytestmark = pytest.mark.postgres


def test_health_probe_refuses_a_superuser_sql_check_with_a_clear_error(
    home: Path, pg_url: str, tmp_path: Path
) -> None:
    insert_exports(pg_url, [export_row() for _ in range(2)])
    victim = Victim(pg_url)
    cfg = tmp_path / "opsctl.toml"
    cfg.write_text(f'[[health.checks]]\nname = "q"\nkind = "sql"\nquery = "{terminate(victim.pid)}"\n')
    cli = Cli(isolated_env(home, pg_url))
    try:
        result = cli("--config", str(cfg), "health", "probe")
        assert result.exit_code == 2, result.stdout
        check = result.one("health_check")
        assert (check["state"], check["error"]["kind"]) == ("critical", "superuser_refused")
        assert result.one("health_probe")["state"] == "unhealthy"
        assert victim.alive()
        assert "Traceback" not in result.stdout + result.stderr
        allowed = cli("--config", str(cfg), "health", "probe",
                      env={"OPSCTL_HEALTH__ALLOW_SUPERUSER": "true"})
        assert allowed.one("health_check")["state"] == "ok"  # it ran: the victim is gone
        assert not victim.alive()
    finally:
        victim.close()
