"""A real headless browser for the HTML pages: what the page shows, and what it fetched.

Chromium loads the file, its DOM is dumped after load, and its network log says which
requests the page made (requests whose top frame is the ``file://`` page; the browser's
own background traffic is not the page's). Nothing may leave the machine: when it can,
chromium runs in a network namespace of its own with no interface up; otherwise every
request goes to a proxy on a closed loopback port and no host name resolves.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from conftest import unavailable

HIDDEN = {"head", "style", "script", "title"}
BLOCKS = {"p", "div", "li", "ul", "tr", "td", "th", "table", "h1", "h2", "br", "header",
          "footer", "summary", "details", "svg", "text", "section"}


@dataclass
class Shown:
    dom: str
    text: str
    requests: list[str] = field(default_factory=list)


class _Text(HTMLParser):
    """The text a person sees: no head, style or script, no SVG tooltips."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN:
            self.hidden += 1
        if tag in BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN and self.hidden:
            self.hidden -= 1
        if tag in BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return " ".join("".join(parser.parts).split())


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    unavailable("chromium is not installed (Debian package chromium)")
    raise AssertionError("unreachable")


@cache
def _isolation() -> list[str]:
    """``unshare --net`` when this process may create a network namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
    return [unshare, "--net"] if probe.returncode == 0 else []


def show(page: Path, workdir: Path, *, width: int = 1280) -> Shown:
    """Load ``page`` in headless chromium; its DOM, visible text and requests."""
    workdir.mkdir(parents=True, exist_ok=True)
    netlog = workdir / "netlog.json"
    command = [
        *_isolation(), chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        f"--user-data-dir={workdir / 'profile'}", f"--window-size={width},2000",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-pings", "--disable-domain-reliability",
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--log-net-log={netlog}", "--dump-dom", page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-2000:]
    return Shown(done.stdout, visible_text(done.stdout), page_requests(netlog))


def page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for (its top frame is a file:// page)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [event["params"]["url"] for event in log["events"]
            if event["type"] == start
            and "file://" in str(event.get("params", {}).get("network_isolation_key", ""))]
