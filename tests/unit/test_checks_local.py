"""The http and command checks, each passing and failing: a local http.server, real processes, a fake clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.checks.base import CheckContext
from lastgood.checks.run import describe, run_check, run_validation
from lastgood.clock import FakeClock
from lastgood.config.validation import Check, Validation


class Service(BaseHTTPRequestHandler):
    status: ClassVar[int] = 200
    body: ClassVar[bytes] = b'{"status": "ok"}'
    delay: ClassVar[float] = 0.0
    hits: ClassVar[int] = 0

    def do_GET(self) -> None:
        Service.hits += 1
        if Service.delay:
            time.sleep(Service.delay)
        self.send_response(Service.status)
        self.send_header("Content-Length", str(len(Service.body)))
        self.end_headers()
        self.wfile.write(Service.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    Service.status, Service.body, Service.delay, Service.hits = 200, b'{"status": "ok"}', 0.0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))


def context(clock: FakeClock, base: Path) -> CheckContext:
    return CheckContext("shop", "prod", AwsClients(), [], clock.now(), base, clock.now, clock.sleep)


def check(data: dict[str, object]) -> Check:
    return Check.model_validate(data)


def test_http_check_passes_on_status_and_body(service: str, clock: FakeClock, tmp_path: Path) -> None:
    spec = check({"name": "health", "http": {"url": service, "status": 200, "body": '"status": "ok"', "latency": "3s"}})
    result = run_check(spec, context(clock, tmp_path))
    assert result.passed, result.detail
    assert result.detail.startswith(f"{service}: 200 in ")


def test_http_check_fails_on_a_500_after_its_retries(service: str, clock: FakeClock, tmp_path: Path) -> None:
    Service.status = 500
    spec = check({"name": "health", "http": {"url": service, "retries": 2, "interval": "10s"}})
    result = run_check(spec, context(clock, tmp_path))
    assert not result.passed
    assert result.attempts == 3 and Service.hits == 3
    assert "500" in result.detail and "expected 200" in result.detail
    assert result.seconds == 20.0  # two waits of 10s, on the fake clock


def test_http_check_keeps_trying_within_a_window_and_passes_when_it_recovers(
    service: str, clock: FakeClock, tmp_path: Path
) -> None:
    Service.status = 503
    ctx = context(clock, tmp_path)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if Service.hits >= 3:
            Service.status = 200

    ctx = CheckContext("shop", "prod", AwsClients(), [], clock.now(), tmp_path, clock.now, sleep)
    spec = check({"name": "health", "http": {"url": service, "within": "2m", "interval": "15s"}})
    result = run_check(spec, ctx)
    assert result.passed and result.attempts == 4


def test_http_check_fails_on_body_and_latency(service: str, clock: FakeClock, tmp_path: Path) -> None:
    body = run_check(check({"name": "b", "http": {"url": service, "body": "healthy"}}), context(clock, tmp_path))
    assert not body.passed and "body does not match 'healthy'" in body.detail
    Service.delay = 0.3
    slow = run_check(check({"name": "l", "http": {"url": service, "latency": 0.1}}), context(clock, tmp_path))
    assert not slow.passed and "slower than" in slow.detail


def test_http_check_fails_when_nothing_answers(clock: FakeClock, tmp_path: Path) -> None:
    result = run_check(check({"name": "h", "http": {"url": "http://127.0.0.1:9/health"}}), context(clock, tmp_path))
    assert not result.passed and "no answer" in result.detail


def test_command_check_passes_and_fails_on_its_exit_code(clock: FakeClock, tmp_path: Path) -> None:
    (tmp_path / "smoke.sh").write_text('echo "smoke on $LASTGOOD_ENV"; exit "$1"\n')
    ok = check({"name": "smoke", "command": {"argv": ["sh", "smoke.sh", "0"]}})
    assert run_check(ok, context(clock, tmp_path)).passed
    bad = run_check(check({"name": "smoke", "command": {"argv": ["sh", "smoke.sh", "4"]}}), context(clock, tmp_path))
    assert not bad.passed
    assert "exited 4, expected 0" in bad.detail and "smoke on prod" in bad.detail
    expected = check({"name": "smoke", "command": {"shell": "exit 4", "exit_code": 4}})
    assert run_check(expected, context(clock, tmp_path)).passed


def test_command_check_is_killed_at_its_timeout(clock: FakeClock, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_check(
        check({"name": "hang", "command": {"shell": "sleep 30", "timeout": 0.5}}), context(clock, tmp_path)
    )
    assert not result.passed and "timed out after" in result.detail
    assert time.monotonic() - started < 20  # killed, not waited for


def test_a_block_runs_every_check_and_fails_when_one_fails(service: str, clock: FakeClock, tmp_path: Path) -> None:
    block = Validation.model_validate(
        {"checks": [{"name": "health", "http": {"url": service}}, {"name": "smoke", "command": {"shell": "exit 1"}}]}
    )
    result = run_validation(block, context(clock, tmp_path))
    assert [r.passed for r in result.results] == [True, False]
    assert not result.passed and result.summary().startswith("validation failed: smoke (exited 1")
    assert [d["type"] for d in describe(block)] == ["http", "command"]


def test_an_interrupt_cuts_a_checks_wait_short(tmp_path: Path) -> None:
    import threading as threads

    from lastgood.checks.run import interruptible
    from lastgood.clock import SystemClock

    stop = threads.Event()
    clock = SystemClock()
    ctx = CheckContext(
        "shop", "prod", AwsClients(), [], clock.now(), tmp_path, clock.now, interruptible(clock.sleep, clock.now, stop)
    )
    spec = check({"name": "h", "http": {"url": "http://127.0.0.1:9/health", "within": "10m", "interval": "1m"}})
    threads.Timer(0.3, stop.set).start()
    started = time.monotonic()
    result = run_check(spec, ctx)
    assert not result.passed and "Stopped" in result.detail
    assert time.monotonic() - started < 10
