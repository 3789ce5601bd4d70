"""Secret values never reach output, logs, reports or the ledger.

The loader registers every value that came from a ${VAR} whose name looks secret (TOKEN, PASSWORD, SECRET,
KEY, WEBHOOK, ...), every password inside a URL, and the file's own secret fields; `redact` replaces them
wherever text leaves lastgood: ledger events and steps, printed output, reports and notifications.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any, TextIO, TypeVar
from urllib.parse import unquote

MASK = "****"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|WEBHOOK|CREDENTIAL|AUTH|PRIVATE", re.IGNORECASE)
_MIN_LENGTH = 4  # shorter values would mask ordinary words
# The user-info part of SQLAlchemy's URL pattern (sqlalchemy.engine.url._parse_url), without importing SQLAlchemy:
# every command that loads a file passes here, most never touch a database.
_URL_PASSWORD = re.compile(r"[\w+]+://[^:/]*:(?P<password>[^@]*)@")

_lock = threading.Lock()
_secrets: set[str] = set()

T = TypeVar("T")


def register_secret(value: str | None) -> None:
    if value and len(value) >= _MIN_LENGTH:
        with _lock:
            _secrets.add(value)


def register_variable(name: str, value: str) -> None:
    """Called for each ${VAR} the loader substitutes."""
    if SECRET_NAME.search(name):
        register_secret(value)
    register_url_password(value)


def register_url_password(value: str) -> None:
    """The password in a URL, as written (percent-encoded) and decoded: text may carry either."""
    found = _URL_PASSWORD.match(value) if "://" in value else None
    if found:
        register_secret(found["password"])
        register_secret(unquote(found["password"]))


def redact(value: T) -> T:
    """The same value with every registered secret masked; dicts and lists are walked."""
    if not _secrets:
        return value
    if isinstance(value, str):
        text: str = value
        for secret in sorted(_secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [redact(v) for v in value]  # type: ignore[return-value]
    return value


class RedactingStream:
    """sys.stdout or sys.stderr, looked up at each write (tests swap them), with secrets masked."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def _stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._name)
        return stream

    def write(self, text: str) -> int:
        return self._stream.write(redact(text))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def clear() -> None:
    """Forget every registered secret (tests)."""
    with _lock:
        _secrets.clear()
