"""The monitoring-plugins line: what Nagios, Icinga and Sensu parse, to the character."""

from __future__ import annotations

import pytest

from opsctl.domain.nagios import Perf, above, below, number, state_word, status_line


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (42, "42"), (2.0, "2"), (0.07, "0.07"), (1e-05, "0.00001"), (-3.5, "-3.5"),
     (True, "1"), (12.25, "12.25"), (float("nan"), "U")],
)
def test_numbers_are_plain_decimals(value: float, text: str) -> None:
    assert number(value) == text


@pytest.mark.parametrize(("code", "word"), [(0, "OK"), (1, "WARNING"), (2, "CRITICAL"),
                                            (3, "UNKNOWN"), (64, "UNKNOWN"), (75, "UNKNOWN"),
                                            (78, "UNKNOWN"), (143, "UNKNOWN")])
def test_state_words_follow_the_exit_code(code: int, word: str) -> None:
    assert state_word(code) == word


def test_perfdata_has_every_field_and_drops_trailing_empty_ones() -> None:
    assert str(Perf("ratio", 0.07, warn=above(0.05), crit=above(0.1), min=0, max=1)) == (
        "'ratio'=0.07;0.05;0.1;0;1")
    assert str(Perf("free", 41.5, "%", warn=below(15), crit=below(10), min=0, max=100)) == (
        "'free'=41.5%;15:;10:;0;100")
    assert str(Perf("latency", 3, "ms", min=0)) == "'latency'=3ms;;;0"
    assert str(Perf("runs", 7)) == "'runs'=7"
    assert str(Perf("age", None, "s", crit=above(600), min=0)) == "'age'=U;;600;0"


def test_negative_upper_limits_use_the_open_range() -> None:
    assert above(-5) == "~:-5"
    assert above(None) == below(None) == ""


def test_labels_are_quoted_and_cannot_break_the_format() -> None:
    assert str(Perf("api gw", 1)) == "'api gw'=1"
    assert str(Perf("it's=x", 1)) == "'it''s_x'=1"
    assert str(Perf("two\nlines", 1)) == "'two lines'=1"


def test_an_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="unit"):
        Perf("x", 1, "days")


def test_status_line_shape() -> None:
    line = status_line("FAILURE_RATE", 1, "rate 7% | high\nsecond line",
                       [Perf("a", 1), Perf("b", 2, "s")])
    assert line == "OPSCTL FAILURE_RATE WARNING - rate 7% / high second line | 'a'=1 'b'=2s"
    assert status_line("HEALTH", 3, "database down") == "OPSCTL HEALTH UNKNOWN - database down"


@pytest.mark.parametrize("name", ["health", "RUNS STATS", "", "1X"])
def test_the_plugin_name_is_one_upper_case_token(name: str) -> None:
    with pytest.raises(ValueError, match="upper-case token"):
        status_line(name, 0, "x")
