"""Draft components of a starter runbook, and the order between them: references, then the data last."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lastgood.kinds.registry import KINDS
from lastgood.service.starter.template import Resource


class Lookups(Protocol):
    """What the drafts ask the account beyond the template: the aliases and stages traffic goes through."""

    def lambda_aliases(self, function: str) -> list[str]: ...

    def api_stages(self, rest_api_id: str) -> list[str]: ...

    def state_machine_aliases(self, state_machine_arn: str) -> list[str]: ...


@dataclass
class Draft:
    name: str
    kind: str
    keys: dict[str, Any]
    owns: set[str] = field(default_factory=set)  # the template's logical ids this component stands for
    notes: list[str] = field(default_factory=list)  # comments written above it; "CHOOSE: ..." asks for a choice
    depends_on: dict[str, str] = field(default_factory=dict)  # name -> why
    disabled: bool = False  # written commented out: it cannot work until a choice is made

    @property
    def is_data(self) -> bool:
        return KINDS[self.kind].restores_data


def component_name(text: str) -> str:
    """'OrdersTable' -> 'orders-table'; 'shop/prod/db' -> 'shop-prod-db'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", text)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", spaced).strip("-_.").lower()
    return re.sub(r"-{2,}", "-", name) or "component"


def unique_names(drafts: list[Draft]) -> None:
    seen: set[str] = set()
    for draft in drafts:
        name, counter = draft.name, 2
        while name in seen:
            name, counter = f"{draft.name}-{counter}", counter + 1
        draft.name = name
        seen.add(name)


def link(drafts: list[Draft], resources: dict[str, Resource]) -> None:
    """depends_on from the template's references (followed through resources no component stands for), then
    every code component depends on every data component it does not reach yet: the data is rolled back last."""
    active = [d for d in drafts if not d.disabled]
    owners: dict[str, list[Draft]] = {}
    for draft in active:
        for logical in draft.owns:
            owners.setdefault(logical, []).append(draft)
    for draft in active:
        for other, via in _referenced(draft, owners, resources):
            if draft.is_data and not other.is_data:
                draft.notes.append(f"{via}: not a depends_on, so that the data is rolled back after the code")
            else:
                _add_edge(draft, other, f"{via} in the template", active)
    # Dependencies first: a component that reaches the data through another needs no edge of its own.
    for draft in sorted((d for d in active if not d.is_data), key=lambda d: len(_reachable(d, active))):
        for data in (d for d in active if d.is_data):
            if data.name not in _reachable(draft, active):
                _add_edge(draft, data, "the data is rolled back last", active)


def order(drafts: list[Draft]) -> list[Draft]:
    """The code first, the data last, each in the template's order."""
    return [d for d in drafts if not d.is_data] + [d for d in drafts if d.is_data]


def _referenced(
    draft: Draft, owners: dict[str, list[Draft]], resources: dict[str, Resource]
) -> list[tuple[Draft, str]]:
    """The other components the draft's resources refer to, directly or through resources no component owns."""
    found: dict[str, tuple[Draft, str]] = {}
    for start in sorted(draft.owns):
        seen, todo = set(draft.owns), [(start, "")]
        while todo:
            current, through = todo.pop(0)
            for target in sorted(resources[current].refers_to if current in resources else ()):
                if target in seen:
                    continue
                seen.add(target)
                via = f"{start} refers to {target}" + (f" (through {through})" if through else "")
                for holder in (o for o in owners.get(target, []) if o is not draft):
                    found.setdefault(holder.name, (holder, via))
                if not owners.get(target):
                    todo.append((target, f"{through}, {target}" if through else target))
    return list(found.values())


def _add_edge(draft: Draft, other: Draft, why: str, active: list[Draft]) -> None:
    if other.name in draft.depends_on:
        return
    if draft.name in _reachable(other, active) or other is draft:
        draft.notes.append(f"{why}, but {other.name} already comes after {draft.name}: no depends_on (a cycle)")
        return
    draft.depends_on[other.name] = why


def _reachable(start: Draft, drafts: Iterable[Draft]) -> set[str]:
    by_name = {d.name: d for d in drafts}
    seen: set[str] = set()
    todo = list(start.depends_on)
    while todo:
        name = todo.pop()
        if name not in seen and name in by_name:
            seen.add(name)
            todo += list(by_name[name].depends_on)
    return seen
