"""The Grafana dashboard we ship: every query parses (promtool, as a recording rule with the
template variables substituted) and reads only what opsctl exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from promql import EXPORTED_LABELS, EXPORTED_METRICS, FUNCTIONS, read_by, run_promtool

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "opsctl-dashboard.json"

# What Grafana puts in place of its variables before a query reaches Prometheus.
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
             "${job}": "metrics.aggregate|failure-rate.check", "$job": "metrics.aggregate"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [p for p in found if p.get("type") != "row"]


def queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def substituted(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    rules = [{"record": f"opsctl:dashboard_query_{n}", "expr": substituted(expr)}
             for n, expr in enumerate(queries())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_query_that_does_not_parse_fails_promtool(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "opsctl:bad", "expr": 'opsctl_job_exit_code{opsctl_job=~"$job"'}]}]}))
    assert run_promtool("check", "rules", path).returncode != 0


def test_every_query_reads_only_metrics_and_labels_opsctl_writes() -> None:
    used: set[str] = set()
    for expr in queries():
        metrics, labels, functions = read_by(expr)
        assert metrics and metrics <= EXPORTED_METRICS, expr
        assert labels <= EXPORTED_LABELS, expr
        assert functions <= FUNCTIONS, expr
        used |= metrics
    assert used == EXPORTED_METRICS


def test_the_job_variable_lists_opsctl_jobs_and_filters_the_job_panels() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    job = variables["job"]
    assert job["query"]["query"] == (
        "label_values(opsctl_job_last_run_timestamp_seconds, opsctl_job)")
    assert job["multi"] and job["includeAll"]
    filtered = [e for e in queries() if 'opsctl_job=~"$job"' in e]
    assert {read_by(e)[0].pop() for e in filtered} >= {
        "opsctl_job_last_success_timestamp_seconds", "opsctl_job_exit_code",
        "opsctl_job_duration_seconds", "opsctl_exports", "opsctl_export_failure_ratio",
        "opsctl_export_duration_seconds"}


def test_panels_cover_what_on_call_looks_at() -> None:
    titles = {p["title"] for p in panels()}
    assert titles >= {"Last success age", "Last exit code", "Job duration", "Export volume",
                      "Failure ratio against its threshold", "Export duration p95",
                      "Files cleaned", "Log rows cleaned", "Health checks up"}
    ratio = next(p for p in panels() if p["title"] == "Failure ratio against its threshold")
    steps = ratio["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.05, 0.10]


def test_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, panel["title"]
        cells |= mine
