"""The probe source calls a local http.server whose error rate and latency the test controls."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lastgood.config.models import Trigger
from lastgood.judge.threshold import ThresholdJudge
from lastgood.sources.base import SeriesRequest
from lastgood.sources.http_probe import ProbeQuery, ProbeSource, Sample, measure


class Service(BaseHTTPRequestHandler):
    """Every `fail_every`-th call answers 500 (0: never); every call waits `delay` seconds."""

    fail_every = 0
    delay = 0.0
    calls = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with Service.lock:
            Service.calls += 1
            failing = Service.fail_every and Service.calls % Service.fail_every == 0
        time.sleep(Service.delay)
        try:
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:  # the probe gave up (timeout)
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    Service.fail_every, Service.delay, Service.calls = 0, 0.0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()


def probe_for(source: ProbeSource, requests: list[SeriesRequest], seconds: float) -> dict:  # type: ignore[type-arg]
    """Probe, then fetch the complete 1-second periods since the probe started."""
    started = datetime.now(UTC)
    source.start([r.query for r in requests])  # type: ignore[misc]
    time.sleep(seconds)
    start = started.replace(microsecond=0) + timedelta(seconds=1)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)  # calls still in flight: not judged
    return source.fetch(requests, start, end)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_error_rate_and_latency(service: str) -> None:
    Service.fail_every, Service.delay = 4, 0.05  # 25% errors, 50ms
    query = ProbeQuery(url=service, rate=20, timeout=2)
    p50 = query.model_copy(update={"measure": "p50"})
    source = ProbeSource()
    try:
        got = probe_for(source, [SeriesRequest("errors", query, 1.0), SeriesRequest("p50", p50, 1.0)], 3.5)
    finally:
        source.close()
    errors, latency = got["errors"], got["p50"]
    assert errors.status == "ok" and len(errors.points) >= 1
    assert all(15 <= v <= 35 for v in errors.points.values()), errors.points  # about 25% per period
    assert all(45 <= v <= 500 for v in latency.points.values()), latency.points  # about 50ms
    assert set(latency.points) == set(errors.points)  # one probe serves both measures


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_timeouts_and_refused_connections_are_errors(service: str) -> None:
    Service.delay = 1.0
    slow = ProbeQuery(url=service, rate=5, timeout=0.2)
    dead = ProbeQuery(url="http://127.0.0.1:9/", rate=5, timeout=0.2)
    source = ProbeSource()
    try:
        got = probe_for(source, [SeriesRequest("slow", slow, 1.0), SeriesRequest("dead", dead, 1.0)], 3.5)
    finally:
        source.close()
    assert got["slow"].points and all(v == 100.0 for v in got["slow"].points.values())
    assert got["dead"].points and all(v == 100.0 for v in got["dead"].points.values())


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_healthy_endpoint_keeps_the_trigger_ok_and_a_failing_one_fires(service: str) -> None:
    trigger = Trigger.model_validate(
        {
            "name": "health",
            "probe": {"url": service, "rate": "20/s", "timeout": "1s", "measure": "error-rate"},
            "when": "> 20%",
            "period": "1s",
            "for": "2s",
            "action": "rollback",
        }
    )
    judge = ThresholdJudge()
    source = ProbeSource()
    try:
        healthy = probe_for(source, judge.requests(trigger), 4.2)
        end = max(healthy[f"{trigger.name}.value"].points) + timedelta(seconds=1)
        assert judge.judge(trigger, healthy, end).state == "ok"
        Service.fail_every = 2  # 50% errors from now on
        failing = probe_for(source, judge.requests(trigger), 4.2)
        end = max(failing[f"{trigger.name}.value"].points) + timedelta(seconds=1)
        verdict = judge.judge(trigger, failing, end)
        assert verdict.state == "firing", (verdict, failing)
    finally:
        source.close()


def test_no_calls_is_no_data() -> None:
    query = ProbeQuery(url="http://127.0.0.1:9/")
    source = ProbeSource()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        got = source.fetch([SeriesRequest("x", query, 1.0)], now - timedelta(seconds=10), now - timedelta(seconds=5))
    finally:
        source.close()
    assert got["x"].status == "no-data"


@pytest.mark.parametrize(("what", "expected"), [("error-rate", 25.0), ("p50", 20.0), ("p90", 40.0), ("p99", 40.0)])
def test_measures(what: str, expected: float) -> None:
    samples = [Sample(0, True, 10.0), Sample(0, True, 20.0), Sample(0, False, 30.0), Sample(0, True, 40.0)]
    assert measure(what, samples) == expected
