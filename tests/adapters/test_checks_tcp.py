"""The tcp check against a real listening socket and a port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from opsctl.adapters.checks.tcp import TcpProbe
from opsctl.ports import CheckFinding


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_listening_port_is_ok(listening_port: int) -> None:
    assert TcpProbe("127.0.0.1", listening_port).check(2.0) == CheckFinding()


def test_a_closed_port_is_refused() -> None:
    port = closed_port()
    assert TcpProbe("127.0.0.1", port).check(2.0) == CheckFinding(
        "critical", "refused", f"127.0.0.1:{port}: connection refused")


def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    finding = TcpProbe("no-such-host.invalid", 5432).check(2.0)

    assert (finding.state, finding.error_kind) == ("critical", "unreachable")
    assert finding.error_message is not None
    assert finding.error_message.startswith("no-such-host.invalid: name does not resolve")
