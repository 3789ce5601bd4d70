"""http: a request that must answer with an expected status, a body matching a pattern, within a latency."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from typing import ClassVar

from lastgood.checks.base import CheckContext, CheckResult, attempt_until
from lastgood.config.durations import format_duration
from lastgood.config.validation import Check, HttpCheck

BODY_LIMIT = 1024 * 1024  # bytes read to match `body`


def request_once(spec: HttpCheck) -> tuple[bool, str]:
    request = urllib.request.Request(spec.url, method=spec.method, headers=spec.headers)
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=spec.timeout) as response:
            status, body = response.status, response.read(BODY_LIMIT)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(BODY_LIMIT)
    except (urllib.error.URLError, OSError) as error:
        return False, f"{spec.url}: no answer ({getattr(error, 'reason', error)})"
    seconds = time.perf_counter() - began
    seen = f"{spec.url}: {status} in {seconds * 1000:.0f}ms"
    if status not in spec.status:
        return False, f"{seen}, expected {' or '.join(map(str, spec.status))}"
    if spec.body is not None and not re.search(spec.body, body.decode(errors="replace")):
        return False, f"{seen}, body does not match {spec.body!r}"
    if spec.latency is not None and seconds > spec.latency:
        return False, f"{seen}, slower than {format_duration(spec.latency)}"
    return True, seen


class HttpChecker:
    type: ClassVar[str] = "http"

    def run(self, check: Check, ctx: CheckContext) -> CheckResult:
        spec = check.http
        assert spec is not None
        started = ctx.now()
        passed, detail, attempts = attempt_until(
            ctx, spec.retries, spec.within, spec.interval, lambda: request_once(spec)
        )
        seconds = (ctx.now() - started).total_seconds()
        return CheckResult(check.name, self.type, passed, detail, attempts, seconds)

    def describe(self, check: Check) -> str:
        spec = check.http
        assert spec is not None
        extra = [f"body ~ {spec.body!r}"] if spec.body else []
        extra += [f"within {format_duration(spec.latency)}"] if spec.latency is not None else []
        return f"{spec.method} {spec.url} answers {' or '.join(map(str, spec.status))}" + "".join(
            f", {e}" for e in extra
        )
