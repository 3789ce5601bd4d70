"""A real Prometheus server (Debian's package, installed by ./dev/setup) scraping an exporter a test serves on
localhost every second. Shared by the Prometheus integration tests: `from prometheus_fixture import ...`."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SCRAPE_INTERVAL = 1.0  # seconds


def prometheus_binary() -> str:
    """The prometheus binary; a missing one fails the test (./dev/setup installs it), it is never skipped."""
    binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if binary is None:
        pytest.fail("the prometheus binary is missing: run ./dev/setup (it installs Debian's prometheus package)")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@contextmanager
def serving_exposition(exposition: Callable[[], bytes]) -> Iterator[str]:
    """An exporter on localhost answering every scrape with `exposition()` (Prometheus' text format); yields its
    host:port, the target for `running_prometheus`."""

    class Exporter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running_prometheus(folder: Path, target: str, ready_query: str, ready_value: float) -> Iterator[str]:
    """Prometheus scraping `target` (host:port) every second, with its data in `folder`; yields its URL once the
    target is up and the instant query `ready_query` is >= `ready_value` (e.g. enough scrapes stored)."""
    binary = prometheus_binary()
    config = folder / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: {SCRAPE_INTERVAL:g}s, evaluation_interval: {SCRAPE_INTERVAL:g}s}}\n"
        "scrape_configs:\n"
        "  - job_name: app\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    log_path = folder / "prometheus.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        query = urllib.parse.urlencode({"query": ready_query})
        while True:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}: {log_path.read_text()}")
            try:
                targets = get_json(f"{url}/api/v1/targets")["data"]["activeTargets"]
                result = get_json(f"{url}/api/v1/query?{query}")["data"]["result"]
                if targets and targets[0]["health"] == "up" and result and float(result[0]["value"][1]) >= ready_value:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus did not scrape the exporter within 60s: {log_path.read_text()}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
