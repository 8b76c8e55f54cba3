"""The ``tcp`` check: does anything accept a connection on ``host``:``port``?

For a dependency opsctl has no client for (a cache, a queue, a port forwarded by a sidecar)
an accepted connection is the cheapest honest sign of life.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from opsctl.ports import CheckFinding


@dataclass(frozen=True)
class TcpProbe:
    host: str
    port: int

    def check(self, timeout_s: float) -> CheckFinding:
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout_s):
                pass
        except TimeoutError:
            return CheckFinding("critical", "timeout",
                                f"{self.host}:{self.port}: no answer within {timeout_s:g}s")
        except ConnectionRefusedError:
            return CheckFinding("critical", "refused", f"{self.host}:{self.port}: connection refused")
        except socket.gaierror as exc:
            return CheckFinding("critical", "unreachable",
                                f"{self.host}: name does not resolve ({exc.strerror})")
        except OSError as exc:
            return CheckFinding("critical", "unreachable",
                                f"{self.host}:{self.port}: {exc.strerror or exc}")
        return CheckFinding()
