"""A TCP/HTTP proxy between boto3 and moto's server that loses connections on purpose.

For each request a `decide(call)` function picks what happens:

- "forward": the request goes to moto and its answer back to the client;
- "drop-after": the request goes to moto (the write takes effect) and the connection is closed without the
  answer, so the client cannot know the outcome;
- "drop-before": the connection is closed without forwarding anything.

Each connection carries one request (the proxy answers `Connection: close`). `seeded_decider` makes the choice
reproducible whatever the threads' order: it depends on the seed, the request's body and how many times that
same request was seen before, so a retried request gets a fresh draw.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Literal
from urllib.parse import parse_qs, urlsplit

Action = Literal["forward", "drop-after", "drop-before"]
READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet", "Query", "Scan", "Search", "Lookup", "Filter")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def operation(self) -> str:
        """The AWS operation: X-Amz-Target (JSON protocols), Action= (query protocols), else `METHOD path`."""
        target = self.headers.get("x-amz-target")
        if target:
            return target.rsplit(".", 1)[-1]
        action = parse_qs(self.body.decode(errors="replace")).get("Action") or parse_qs(urlsplit(self.path).query).get(
            "Action"
        )
        if action:
            return action[0]
        return f"{self.method} {urlsplit(self.path).path}"

    @property
    def is_write(self) -> bool:
        operation = self.operation
        if " " in operation:  # REST protocols: the HTTP method says
            return self.method not in ("GET", "HEAD")
        return not operation.startswith(READ_PREFIXES)


@dataclass(frozen=True)
class Event:
    operation: str
    action: Action
    status: int | None  # moto's answer, when it was asked


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops a burst of connections, and a SYN retried costs 1 s


class DroppingProxy:
    def __init__(self, upstream: str, decide: Callable[[Call], Action]) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.decide = decide
        self.events: list[Event] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.connection, self.rfile)  # type: ignore[arg-type]

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> DroppingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, operation: str | None = None, action: Action | None = None) -> int:
        with self._lock:
            return sum(
                1
                for e in self.events
                if (operation is None or e.operation == operation) and (action is None or e.action == action)
            )

    def _handle(self, connection: socket.socket, rfile: BinaryIO) -> None:
        call = _read_call(rfile)
        if call is None:
            return
        action = self.decide(call)
        status = None
        answer = b""
        if action != "drop-before":
            status, answer = self._forward(call)
        with self._lock:
            self.events.append(Event(call.operation, action, status))
        if action == "forward":
            connection.sendall(answer)
        # Dropped: the server closes the connection without a byte of the answer.

    def _forward(self, call: Call) -> tuple[int, bytes]:
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {k: v for k, v in call.headers.items() if k != "connection"}
            upstream.request(call.method, call.path, body=call.body, headers=headers)
            response = upstream.getresponse()
            body = response.read()
            lines = [f"HTTP/1.1 {response.status} {response.reason}"]
            skip = ("connection", "transfer-encoding", "content-length", "keep-alive")
            lines += [f"{k}: {v}" for k, v in response.getheaders() if k.lower() not in skip]
            lines += [f"Content-Length: {len(body)}", "Connection: close"]
            return response.status, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        finally:
            upstream.close()


def _read_call(rfile: BinaryIO) -> Call | None:
    readline = rfile.readline
    start = readline(65537).decode("latin-1").strip()
    if not start:
        return None
    method, path, _version = start.split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        line = readline(65537).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        raise NotImplementedError("the dropping proxy reads Content-Length bodies only")
    body = rfile.read(int(headers.get("content-length", "0") or 0))
    return Call(method, path, headers, body)


def seeded_decider(
    seed: int,
    write_rates: Mapping[str, float],
    default_write_rate: float = 0.0,
    read_rate: float = 0.0,
) -> Callable[[Call], Action]:
    """Drop each write with its operation's rate (half after moto answered, half before forwarding), each read
    with `read_rate` (before forwarding: a read is harmless either way)."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def decide(call: Call) -> Action:
        key = hashlib.sha256(call.method.encode() + call.path.encode() + call.body).hexdigest()
        with lock:
            seen[key] += 1
            draw = random.Random(f"{seed}:{key}:{seen[key]}")
        if not call.is_write:
            return "drop-before" if draw.random() < read_rate else "forward"
        if draw.random() >= write_rates.get(call.operation, default_write_rate):
            return "forward"
        return "drop-after" if draw.random() < 0.5 else "drop-before"

    return decide
