"""Which step waits for which: a component is rolled back before the components it depends on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def waits_for(depends_on: Mapping[str, Sequence[str]], planned: set[str]) -> dict[str, list[str]]:
    """For each planned component, the planned components that must finish first: its dependents.

    Dependencies are followed through unplanned components too, so A -> B -> C with only A and C planned
    still rolls A back before C.
    """
    dependents: dict[str, set[str]] = {name: set() for name in depends_on}
    for name, deps in depends_on.items():
        for dep in deps:
            dependents.setdefault(dep, set()).add(name)

    def planned_dependents(name: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for parent in dependents.get(name, set()):
            if parent in seen:
                continue
            seen.add(parent)
            if parent in planned:
                found.add(parent)
            else:
                found |= planned_dependents(parent, seen)
        return found

    return {name: sorted(planned_dependents(name, set())) for name in sorted(planned)}


def waves(wait: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Group steps into waves that can run together (for display; the engine starts steps as soon as ready)."""
    remaining = {name: set(deps) for name, deps in wait.items()}
    out: list[list[str]] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps & set(remaining))
        if not ready:
            raise ValueError(f"cycle among {sorted(remaining)}")
        out.append(ready)
        for name in ready:
            del remaining[name]
    return out
