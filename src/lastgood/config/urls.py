"""The URLs a runbook names, checked before anything connects: AWS endpoints and the ledger's database.

A URL that Python's or SQLAlchemy's parsers would choke on later (an unclosed IPv6 bracket, a non-ASCII host,
a port out of range, a database driver that is not installed) is refused here with the allowed forms named.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # SQLAlchemy is imported when a state URL is checked: --help and most files need none
    from sqlalchemy.engine import URL

ENDPOINT_FORMS = "an http:// or https:// URL such as http://localhost:4566 or https://vpce-1.lambda.amazonaws.com"
STATE_FORMS = "sqlite:///PATH (relative to the runbook file) or postgresql+psycopg://USER:PASSWORD@HOST[:PORT]/DB"
# backend -> the drivers lastgood ships (None: SQLAlchemy's default for the backend)
_DRIVERS = {"sqlite": {None, "pysqlite"}, "postgresql": {None, "psycopg"}}
_MAX_URL = 2048
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+){1,4}")


def check_endpoint_url(value: str) -> str:
    """`value` if it is an http(s) URL that botocore can use; ValueError naming the allowed forms otherwise."""
    if len(value) > _MAX_URL or not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError(f"expected {ENDPOINT_FORMS} (ASCII, no spaces), got {_shown(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError as error:
        raise ValueError(f"expected {ENDPOINT_FORMS}, got {_shown(value)}: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected {ENDPOINT_FORMS}, got {_shown(value)}")
    return value


def check_region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError(f"expected an AWS region such as us-east-1 or eu-west-2, got {_shown(value)}")
    return value


def check_state_url(value: str) -> URL:
    """The parsed ledger URL if lastgood can open it; ValueError naming the allowed forms otherwise."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if len(value) > _MAX_URL or not value.isprintable():
        raise ValueError(f"expected {STATE_FORMS}, got a value that is not a URL")
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError(f"expected {STATE_FORMS}, got a value that is not a database URL") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(f"port {url.port} is out of range 1-65535: expected {STATE_FORMS}")
    backend, _, driver = url.drivername.partition("+")
    if backend not in _DRIVERS or (driver or None) not in _DRIVERS[backend]:
        raise ValueError(f"database {url.drivername!r} is not supported: expected {STATE_FORMS}")
    if backend == "sqlite" and url.host:
        raise ValueError(f"a sqlite URL has no host (three slashes: sqlite:///PATH): expected {STATE_FORMS}")
    return url


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")
