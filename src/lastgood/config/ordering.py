"""Warnings about the order a rollback would take: a data restore that the code does not wait for.

A component is rolled back before the components it depends on, so "the database last" holds only when every
code component depends (directly or through others) on the data component. Otherwise a 20-minute table
restore starts at the same moment as the alias flips. Schema kinds need no such edge: the planner runs them
after every other component.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from lastgood.config.models import Component

Role = Literal["code", "data", "schema"]


def data_order_warnings(
    components: Sequence[Component], positions: Sequence[int], role: Callable[[str], Role]
) -> list[str]:
    """One warning per data component that some code component is not ordered before."""
    depends_on = {c.name: c.depends_on for c in components}
    code = [c.name for c in components if role(c.kind) == "code"]
    reached = {name: _reachable(name, depends_on) for name in code}
    warnings = []
    for index, component in zip(positions, components, strict=True):
        if role(component.kind) != "data":
            continue
        alongside = [name for name in code if component.name not in reached[name]]
        if alongside:
            warnings.append(
                f"components[{index}] ({component.name}, {component.kind}): a data restore not ordered after "
                f"{_names(alongside)}, which would be rolled back alongside it; add {component.name!r} to their "
                "depends_on so the data goes last"
            )
    return warnings


def _reachable(start: str, depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(depends_on.get(start, ()))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += depends_on.get(name, ())
    return seen


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
