"""An HTTP proxy in front of moto's server that throttles like AWS: a token bucket per service, answering
429 ThrottlingException beyond it.

AWS keeps a bucket per account, region and API that holds a second's worth of requests and is full when idle;
a request that finds it empty is refused, not queued. The proxy does the same per signing service (read from
the request's SigV4 credential scope), forwards the others to moto unchanged and counts both, so a test or a
bench can say how many calls went through and how many were refused.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_XML_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>'
    b"<Message>Rate exceeded</Message></Error><RequestId>throttled</RequestId></ErrorResponse>"
)
_JSON_ERROR = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
_HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection")


class RefillingBucket:
    """`rate` tokens a second, at most `rate` held (one second's burst), full at the start."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


def service_of(authorization: str) -> str:
    """The signing service of a SigV4 request (`lambda`, `ssm`, ...); "" when unsigned."""
    found = _SCOPE.search(authorization)
    return found.group(1) if found else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class ThrottlingProxy:
    """Forwards to `upstream`; a service in `rates` gets that many requests a second, the rest 429."""

    def __init__(self, upstream: str, rates: Mapping[str, float]) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.buckets = {service: RefillingBucket(rate) for service, rate in rates.items()}
        self.forwarded: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.first_at: dict[str, float] = {}  # monotonic time of each service's first and last request
        self.last_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ThrottlingProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def reset_counts(self) -> None:
        with self._lock:
            self.forwarded.clear()
            self.throttled.clear()
            self.first_at.clear()
            self.last_at.clear()

    def admit(self, service: str) -> bool:
        bucket = self.buckets.get(service)
        admitted = bucket is None or bucket.take()
        now = time.monotonic()
        with self._lock:
            (self.forwarded if admitted else self.throttled)[service] += 1
            self.first_at.setdefault(service, now)
            self.last_at[service] = now
        return admitted

    def span(self, service: str) -> float:
        """Seconds from the service's first request to its last since the counts were reset."""
        with self._lock:
            return self.last_at.get(service, 0.0) - self.first_at.get(service, 0.0)

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[Any], bytes]:
        """One request to moto over this thread's kept-alive connection (a new one if moto closed it)."""
        for attempt in (1, 2):
            connection = getattr(self._local, "upstream", None)
            if connection is None:
                connection = self._local.upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                self._local.upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not proxy.admit(service_of(self.headers.get("Authorization", ""))):
                    self._throttled()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                status, answer_headers, answer = proxy.forward(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in answer_headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _throttled(self) -> None:
                query = "x-www-form-urlencoded" in self.headers.get("Content-Type", "")
                answer = _XML_ERROR if query else _JSON_ERROR
                self.send_response(429 if not query else 400)
                self.send_header("x-amzn-ErrorType", "ThrottlingException")
                self.send_header("Content-Type", "text/xml" if query else "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        return Handler
