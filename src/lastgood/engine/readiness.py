"""Rollback readiness: is rolling back to the live release, and to the one before it, still possible?

Each component's kind checks that what a rollback to its recorded state needs still exists (Lambda versions,
parameter history, secret versions, backups, restore windows, ...). Reads only; changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from lastgood.config.models import Component
from lastgood.errors import LastgoodError, Refused, ResourceNotFound, StepFailed
from lastgood.kinds.base import ReadinessCheck, ReadinessStatus, State
from lastgood.ledger import store
from lastgood.ledger.tables import ReleaseRow
from lastgood.runtime.context import EnvContext

Role = Literal["live", "previous"]
_RANK: dict[ReadinessStatus, int] = {"ok": 0, "at-risk": 1, "impossible": 2}


def worst(statuses: Iterable[ReadinessStatus]) -> ReadinessStatus:
    return max(statuses, key=_RANK.__getitem__, default="ok")


@dataclass(frozen=True)
class ComponentReadiness:
    component: str
    kind: str
    checks: tuple[ReadinessCheck, ...]

    @property
    def status(self) -> ReadinessStatus:
        return worst(c.status for c in self.checks)


@dataclass(frozen=True)
class ReleaseReadiness:
    label: str
    role: Role
    components: tuple[ComponentReadiness, ...]

    @property
    def status(self) -> ReadinessStatus:
        return worst(c.status for c in self.components)

    def problems(self, status: ReadinessStatus | None = None) -> list[str]:
        """'component: detail' for each check that is not ok (or only those with `status`)."""
        return [
            f"{c.component}: {check.detail}"
            for c in self.components
            for check in c.checks
            if check.status != "ok" and status in (None, check.status)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "role": self.role,
            "status": self.status,
            "components": [
                {
                    "component": c.component,
                    "kind": c.kind,
                    "status": c.status,
                    "checks": [{"status": k.status, "detail": k.detail} for k in c.checks],
                }
                for c in self.components
            ],
        }


@dataclass(frozen=True)
class EnvReadiness:
    app: str
    env: str
    releases: tuple[ReleaseReadiness, ...]
    notes: tuple[str, ...] = ()

    @property
    def previous(self) -> ReleaseReadiness | None:
        return next((r for r in self.releases if r.role == "previous"), None)

    @property
    def ready(self) -> bool:
        """A rollback now (to the previous release) needs nothing that is gone or about to go."""
        return self.previous is not None and self.previous.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "env": self.env,
            "ready": self.ready,
            "releases": [r.to_dict() for r in self.releases],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Recorded:
    """A release's recorded states, copied out of the ledger session."""

    label: str
    role: Role
    states: tuple[tuple[str, str, State], ...]  # (component, kind, state)


def _recorded(release: ReleaseRow, role: Role) -> _Recorded:
    return _Recorded(release.label, role, tuple((r.component, r.kind, dict(r.state)) for r in release.components))


def check_env(ctx: EnvContext) -> EnvReadiness:
    """Readiness of the live release and of the release a rollback would return to now."""
    with ctx.session() as session:
        live = store.live_release(session, ctx.app, ctx.env)
        previous = store.rollback_target(session, ctx.app, ctx.env)
        recorded = [_recorded(live, "live")] if live is not None else []
        recorded += [_recorded(previous, "previous")] if previous is not None else []
    notes: list[str] = []
    if live is None:
        notes.append(f"no release of {ctx.app} recorded in {ctx.env}")
    elif previous is None:
        notes.append(f"no release older than the live one ({recorded[0].label}) that is not marked bad")
    return EnvReadiness(ctx.app, ctx.env, check_releases(ctx, recorded), tuple(notes))


def check_releases(ctx: EnvContext, releases: list[_Recorded]) -> tuple[ReleaseReadiness, ...]:
    """Every component of every release checked at once, in parallel."""
    specs = {s.name: s for s in ctx.components()}
    jobs = [
        (i, specs[name], kind, state) for i, r in enumerate(releases) for name, kind, state in r.states if name in specs
    ]
    results = ctx.parallel_map(lambda job: _check(ctx, job[1], job[2], job[3]), jobs)
    by_release: list[list[ComponentReadiness]] = [[] for _ in releases]
    for (i, spec, kind, _), checks in zip(jobs, results, strict=True):
        by_release[i].append(ComponentReadiness(spec.name, kind, checks))
    return tuple(ReleaseReadiness(r.label, r.role, tuple(c)) for r, c in zip(releases, by_release, strict=True))


def _check(ctx: EnvContext, spec: Component, kind: str, state: State) -> tuple[ReadinessCheck, ...]:
    """A component's checks; components recorded under another kind, and kinds' errors, become checks too."""
    if spec.kind != kind:
        return (ReadinessCheck("impossible", f"recorded as {kind}, but the file now says {spec.kind}"),)
    try:
        return tuple(ctx.kind_of(spec).readiness(spec, ctx.kind_context, state))
    except LastgoodError as error:
        # Something gone for good makes the rollback impossible; anything else (denied, throttled) is unknown.
        gone = isinstance(error, ResourceNotFound | StepFailed) and not getattr(error, "retryable", False)
        return (
            ReadinessCheck("impossible", str(error)) if gone else ReadinessCheck("at-risk", f"not checked: {error}"),
        )


def guard_check(ctx: EnvContext, force: bool) -> list[str]:
    """Before the guard watches: refuse when rolling back to the release it would return to is impossible
    (unless force). Returns what to warn about (checks not ok)."""
    with ctx.session() as session:
        target = store.rollback_target(session, ctx.app, ctx.env)
        recorded = _recorded(target, "previous") if target is not None else None
    if recorded is None:
        return []  # the guard itself reports that there is nothing to roll back to, if a trigger fires
    readiness = check_releases(ctx, [recorded])[0]
    impossible = readiness.problems("impossible")
    if impossible:
        what = f"rolling back to {recorded.label} is impossible: " + "; ".join(impossible)
        with ctx.session() as session:
            kind = "guard-forced" if force else "guard-refused"
            store.add_event(session, ctx.app, ctx.env, kind, what, ctx.clock.now())
        if not force:
            raise Refused(f"{what}. Not guarding: fix it, or pass --force to guard anyway")
    return [f"rollback to {recorded.label}: {p}" for p in readiness.problems()]
