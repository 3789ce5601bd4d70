"""A local AWS-compatible endpoint: moto's server, in-process, on 127.0.0.1 and a free port."""

from __future__ import annotations

import logging
import os
import shlex
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lastgood.errors import LastgoodError

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "lastgood-local",
    "AWS_SECRET_ACCESS_KEY": "lastgood-local-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalEndpoint:
    def __init__(self, port: int | None = None) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:  # pragma: no cover - depends on how lastgood was installed
            raise LastgoodError("the local endpoint needs moto: pip install 'lastgood[demo]'") from None
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> LocalEndpoint:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(request, timeout=10).close()


def use_fake_credentials() -> None:
    """A local endpoint accepts any credentials; never let a real profile's keys travel to it."""
    for name, value in FAKE_CREDENTIALS.items():
        os.environ[name] = value
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)


@contextmanager
def local_endpoint() -> Iterator[LocalEndpoint]:
    endpoint = LocalEndpoint().start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


def export_lines(endpoint_url: str, runbook_file: Path) -> list[str]:
    """What a second shell needs, one `export` per line: the fake credentials, the endpoint (the aws CLI and
    boto3 read AWS_ENDPOINT_URL), the runbook file."""
    values = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint_url, "LASTGOOD_FILE": str(runbook_file)}
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
