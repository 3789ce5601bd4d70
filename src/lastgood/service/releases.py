"""Releases: record one (the live state of every component), list them, mark one bad.

None of these hold the environment: recording or marking while a rollback or deployment runs is allowed, and
the result carries a note saying what is running, because that operation may move the live release again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lastgood.engine.record import record_release, warnings_for
from lastgood.errors import ConfirmationNeeded
from lastgood.kinds.registry import get_kind
from lastgood.ledger import store
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import current_holder
from lastgood.service.models import ReleaseSummary, release_summary


class ComponentState(BaseModel):
    kind: str
    state: dict[str, Any]
    description: str = Field(exclude=True)  # for people; scripts read `state`


class RecordedRelease(ReleaseSummary):
    components: dict[str, ComponentState]
    warnings: list[str]
    notes: list[str] = Field(default_factory=list)


TOTAL_COUNTED = 10_000
"""`release list` counts the releases up to this many (or to the end of the page asked for, if further): past it,
`total` is this and `total_exact` false. An exact count of 100,000 releases costs more than the page itself."""


class ReleaseList(BaseModel):
    env: str
    releases: list[ReleaseSummary]
    total: int  # all of them, or (total_exact false) more than this many
    total_exact: bool = True
    limit: int | None
    offset: int


class MarkedBad(BaseModel):
    env: str
    label: str
    bad: bool = True
    reason: str
    was_live: bool
    notes: list[str] = Field(default_factory=list)


def running_notes(ctx: EnvContext) -> list[str]:
    """What holds the environment now, said plainly: it may move the live release after this call."""
    holder = current_holder(ctx)
    if holder is None:
        return []
    what = f"{holder['operation']} {holder['id']} of {holder['actor']} is running in {ctx.env}"
    if holder["operation"] == "rollback":
        return [f"{what}: when it succeeds it makes its target live and marks the release it leaves bad"]
    return [what]


def record(ctx: EnvContext, label: str) -> RecordedRelease:
    """Read every component from AWS and store the states as a release, which becomes the live one."""
    release = record_release(ctx, label)
    components = {
        row.component: ComponentState(
            kind=row.kind, state=row.state, description=get_kind(row.kind).describe(row.state)
        )
        for row in release.components
    }
    base = release_summary(release, release.id).model_dump()
    return RecordedRelease(**base, components=components, warnings=warnings_for(ctx, release), notes=running_notes(ctx))


def list_releases(ctx: EnvContext, limit: int | None = None, offset: int = 0) -> ReleaseList:
    """Newest first, the live one and those marked bad flagged; a page of them with `limit` and `offset`."""
    bound = None if limit is None else max(TOTAL_COUNTED, offset + limit)
    with ctx.session() as session:
        rows = store.list_releases(session, ctx.app, ctx.env, limit, offset)
        total = store.count_releases(session, ctx.app, ctx.env, None if bound is None else bound + 1)
        live = store.live_release(session, ctx.app, ctx.env)
    live_id = live.id if live else None
    releases = [release_summary(r, live_id) for r in rows]
    exact = bound is None or total <= bound
    return ReleaseList(
        env=ctx.env, releases=releases, total=total if exact else bound, total_exact=exact, limit=limit, offset=offset
    )


def mark_bad(ctx: EnvContext, label: str, reason: str, live_confirmed: bool = False) -> MarkedBad:
    """Mark a release bad, so automatic rollbacks never return to it. The live release only with
    `live_confirmed`: otherwise ConfirmationNeeded (exit 3), and nothing is changed."""
    with ctx.session() as session:
        release = store.get_release(session, ctx.app, ctx.env, label)
        live = store.live_release(session, ctx.app, ctx.env)
        was_live = live is not None and live.id == release.id
        if was_live and not live_confirmed:
            question = f"{label} is the live release of {ctx.env}; mark it bad anyway?"
            raise ConfirmationNeeded(f"{question} Not confirmed; nothing was changed (--yes to skip)", question)
        store.mark_bad(session, release, reason, ctx.clock.now())
    return MarkedBad(env=ctx.env, label=label, reason=reason, was_live=was_live, notes=running_notes(ctx))
