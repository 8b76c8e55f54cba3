"""The disk check on a real temporary directory, with thresholds set around its real free
space so that each state is forced whatever the machine's disk looks like."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opsctl.adapters.checks.disk import DiskProbe
from opsctl.ports import CheckFinding


def free_percent(path: Path) -> float:
    usage = shutil.disk_usage(path)
    return 100.0 * usage.free / usage.total


@pytest.fixture
def free(tmp_path: Path) -> float:
    value = free_percent(tmp_path)
    if not 8 < value < 98:  # pragma: no cover - the margins below need room on both sides
        pytest.fail(f"test disk is {value:.1f}% free; the thresholds below need 8-98%")
    return value


def test_well_above_the_minimum_is_ok(tmp_path: Path, free: float) -> None:
    finding = DiskProbe(tmp_path, min_free_percent=free - 7).check(1.0)

    assert finding.state == "ok"
    assert finding.detail["path"] == str(tmp_path)
    assert finding.detail["free_percent"] == pytest.approx(free, abs=0.5)
    assert finding.detail["min_free_percent"] == free - 7
    assert finding.detail["warning_free_percent"] == free - 2


def test_within_five_points_above_the_minimum_is_a_warning(tmp_path: Path, free: float) -> None:
    finding = DiskProbe(tmp_path, min_free_percent=free - 2).check(1.0)

    assert (finding.state, finding.error_kind) == ("warning", "threshold")
    assert finding.error_message is not None
    assert "within 5 points of min_free_percent" in finding.error_message


def test_below_the_minimum_is_critical(tmp_path: Path, free: float) -> None:
    finding = DiskProbe(tmp_path, min_free_percent=free + 1.5).check(1.0)

    assert (finding.state, finding.error_kind) == ("critical", "threshold")
    assert finding.error_message is not None
    assert f"free at {tmp_path}, below min_free_percent" in finding.error_message


def test_a_missing_path_is_critical(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert DiskProbe(missing, 10).check(1.0) == CheckFinding(
        "critical", "not_found", f"{missing} does not exist")
