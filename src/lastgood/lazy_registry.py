"""A registry whose built-in entries are imported when first looked up.

Kinds, metric sources and notification channels are each listed once by name and "module:attribute". Listing
the names costs nothing; `lastgood validate` of a file with CloudWatch triggers and a Slack channel imports those
two modules, not every source's and channel's (issue 13, goal 1). Iterating the values (the JSON schema, the
docs) imports them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

T = TypeVar("T")


def _as_is(found: Any) -> Any:
    return found


class LazyRegistry(MutableMapping[str, T]):
    """Entries by name, in the order listed; `make` turns the imported attribute into the entry (a kind's class
    is instantiated, a source's class is the entry itself)."""

    def __init__(self, where: dict[str, str], make: Callable[[Any], T] = _as_is) -> None:
        self._where: dict[str, str | None] = {**where}
        self._made: dict[str, T] = {}
        self._make = make

    def __getitem__(self, name: str) -> T:
        made = self._made.get(name)
        if made is None:
            where = self._where[name]  # KeyError: no such entry
            assert where is not None
            module, _, attribute = where.partition(":")
            made = self._made[name] = self._make(getattr(importlib.import_module(module), attribute))
        return made

    def list_lazily(self, name: str, where: str) -> None:
        """Names an entry (\"module:attribute\") without importing it."""
        self._where.setdefault(name, where)

    def __setitem__(self, name: str, entry: T) -> None:
        self._where.setdefault(name, None)
        self._made[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._made.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where
