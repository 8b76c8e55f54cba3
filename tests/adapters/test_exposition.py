"""The Prometheus text format opsctl writes itself: exact text for crafted samples, and
promtool's verdict on the awkward cases (odd label values, huge and special numbers)."""

from __future__ import annotations

import pytest
from prometheus_servers import promtool_check_metrics

from opsctl.adapters.observers.exposition import Family, go_float, render


@pytest.mark.parametrize(("value", "text"), [
    (0, "0.0"), (1, "1.0"), (40, "40.0"), (0.012, "0.012"), (-2.5, "-2.5"),
    (123456.0, "123456.0"), (1234567.0, "1.234567e+06"), (123456789, "1.23456789e+08"),
    (1764151200.5, "1.7641512005e+09"), (1e22, "1e+22"), (1e-07, "1e-07"),
    (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN"),
])
def test_values_are_written_as_go_writes_them(value: float, text: str) -> None:
    assert go_float(value) == text


def test_families_labels_and_escaping_exactly() -> None:
    families = [
        Family("opsctl_job_exit_code", "gauge", "The exit code.\nOf the last run \\ ever.",
               [({"opsctl_job": "files.cleanup"}, 1)]),
        Family("opsctl_health_check_up", "gauge", "Up.",
               [({"opsctl_job": "health.probe", "check": 'say "hi"\\n\nnow'}, 0),
                ({"opsctl_job": "health.probe", "check": "db"}, 1)]),
        Family("opsctl_export_duration_seconds", "summary", "Quantiles.",
               [({"opsctl_job": "metrics.aggregate", "quantile": "0.95"}, 8)]),
        Family("opsctl_files_deleted", "gauge", "Nothing measured: not written at all."),
    ]

    assert render(families) == (
        "# HELP opsctl_job_exit_code The exit code.\\nOf the last run \\\\ ever.\n"
        "# TYPE opsctl_job_exit_code gauge\n"
        'opsctl_job_exit_code{opsctl_job="files.cleanup"} 1.0\n'
        "# HELP opsctl_health_check_up Up.\n"
        "# TYPE opsctl_health_check_up gauge\n"
        'opsctl_health_check_up{check="say \\"hi\\"\\\\n\\nnow",opsctl_job="health.probe"} 0.0\n'
        'opsctl_health_check_up{check="db",opsctl_job="health.probe"} 1.0\n'
        "# HELP opsctl_export_duration_seconds Quantiles.\n"
        "# TYPE opsctl_export_duration_seconds summary\n"
        'opsctl_export_duration_seconds{opsctl_job="metrics.aggregate",quantile="0.95"} 8.0\n'
    )
    assert render([]) == ""


def test_promtool_accepts_odd_label_values_and_special_numbers() -> None:
    text = render([
        Family("opsctl_health_check_latency_seconds", "gauge", "Latency.",
               [({"opsctl_job": "health.probe", "check": name}, value)
                for name, value in (('quote " and \\ and\nnewline', 0.5), ("ünïcode ☃", 1e22),
                                    ("", 0.0), ("inf", float("inf")), ("nan", float("nan")))]),
        Family("opsctl_job_last_run_timestamp_seconds", "gauge", "When.",
               [({"opsctl_job": "logs.cleanup"}, 1764151200.123)]),
    ])

    checked = promtool_check_metrics(text)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert text.count("\n") == 2 + 5 + 2 + 1  # every sample written, none split by a newline
