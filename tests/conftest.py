"""Fixtures for real components: SQLite files, the local PostgreSQL, a moto S3 server over
HTTP and a local HTTP server.

With ``OPSCTL_TEST_REQUIRE_SERVICES=1`` (set by CI) a PostgreSQL or S3 test that cannot
run fails instead of skipping, and any skip at all fails the session, so CI can never go
green by skipping.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support import Cli, isolated_env

# The Prometheus servers (Pushgateway, Alertmanager, node_exporter) and promtool.
pytest_plugins = ["prometheus_servers"]

REQUIRE = os.environ.get("OPSCTL_TEST_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (OPSCTL_TEST_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE and _skipped and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REQUIRE and _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} test(s) skipped while OPSCTL_TEST_REQUIRE_SERVICES=1",
            red=True,
        )


# --- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh database on the test server for this session, dropped at the end."""
    base = os.environ.get("OPSCTL_TEST_DATABASE_URL")
    if not base:
        unavailable("OPSCTL_TEST_DATABASE_URL is not set")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(base).set(drivername="postgresql+psycopg")
    name = f"opsctl_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        unavailable(f"PostgreSQL at {admin_url.render_as_string()} unavailable: {exc}")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_server_url: str) -> str:
    """The session database, emptied before each test."""
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_server_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return pg_server_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'opsctl' / 'opsctl.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


# --- CLI --------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cli(home: Path, db_url: str) -> Cli:
    """``opsctl`` through its real entry point, on the parametrised database."""
    return Cli(isolated_env(home, db_url))


@pytest.fixture
def sqlite_cli(home: Path, sqlite_url: str) -> Cli:
    return Cli(isolated_env(home, sqlite_url))


# --- S3 (moto server over HTTP) --------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        unavailable(f"moto server not installed: {exc}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str) -> dict[str, str]:
    """AWS variables pointing every client (ours and the test's) at the moto server."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    import boto3

    name = f"opsctl-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing-secret-key",
    )
    client.create_bucket(Bucket=name)
    return name


# --- HTTP --------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class HttpServer:
    """A real local HTTP server whose answer (status, delay) a test can change."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    delay_s: float = 0.0
    body: bytes = b"ok"
    responder: Callable[[Recorded], tuple[int, bytes]] | None = None


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    state = HttpServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rec = Recorded(self.command, self.path, body, dict(self.headers))
            state.requests.append(rec)
            if state.delay_s:
                threading.Event().wait(state.delay_s)
            status, payload = (state.responder(rec) if state.responder
                               else (state.status, state.body))
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_HEAD = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
