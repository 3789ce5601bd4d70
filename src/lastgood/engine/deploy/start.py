"""Starting a deployment: every check first, then the release recorded and the row written; nothing shifted.

The release holds the deploying component at its new version (all traffic on it) and every other component as
it is, so that any rollback, this deployment's abort or a guard's, returns to the release live before.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lastgood.config.models import Component
from lastgood.domain.states import DeploymentStatus
from lastgood.engine.deploy import rows
from lastgood.engine.deploy.listener import DeployListener
from lastgood.engine.deploy.models import Deployment
from lastgood.engine.deploy.shift import weighted
from lastgood.engine.record import read_states, record_release
from lastgood.errors import BadInput, Refused
from lastgood.kinds.base import State, WeightedKind
from lastgood.ledger import store
from lastgood.ledger.tables import DeploymentRow
from lastgood.redact import redact
from lastgood.runtime.context import EnvContext


class DeployRequest(BaseModel):
    component: str
    version: str
    steps: list[float]
    pause_seconds: float
    label: str | None = None
    allow_bad: bool = False


class BadRelease(BaseModel):
    """A release marked bad whose state has the component on the version being deployed."""

    label: str
    reason: str


def check_component(ctx: EnvContext, component: str) -> None:
    """The cheap checks, before the environment is claimed: the component exists and is weighted."""
    weighted(ctx.components([component])[0])


def start(ctx: EnvContext, deployment_id: str, ask: DeployRequest, listener: DeployListener) -> Deployment:
    spec = ctx.components([ask.component])[0]
    kind = weighted(spec)
    _refuse_unfinished(ctx, ask.component)
    current = ctx.kind_of(spec).read(spec, ctx.kind_context)
    split = kind.current_split(spec, current)
    if split.candidate is not None:
        raise Refused(
            f"{ask.component} already splits its traffic ({ctx.kind_of(spec).describe(current)}); "
            "finish or undo that shift first"
        )
    version = kind.resolve_version(spec, ctx.kind_context, current, ask.version)
    if split.stable == version:
        raise BadInput(f"{ask.component} is already on {kind.version_noun} {version}")
    bad = bad_release_with(ctx, spec, kind, version)
    if bad is not None:
        _bad_version(kind, version, bad, ask.allow_bad, listener)
    label = ask.label or version
    with ctx.session() as session:
        if store.release_exists(session, ctx.app, ctx.env, label):
            raise BadInput(f"release {label!r} already exists in {ctx.env}; use --release with a new label")
    previous = _ensure_previous_release(ctx, label, listener)
    states = read_states(ctx, ctx.components(), recording=True)
    states[ask.component] = (spec.kind, kind.split(spec, ctx.kind_context, current, split.stable, version, 100.0))
    if redact(states) != states:
        raise BadInput("a recorded state contains a secret value; lastgood never stores secrets")
    return _write(ctx, deployment_id, ask, states, (split.stable, version, label, previous), bad)


def _refuse_unfinished(ctx: EnvContext, component: str) -> None:
    busy = next(iter(rows.unfinished(ctx, component)), None)
    if busy is None:
        return
    go_on = f"; or go on: {busy.resume_command()}" if busy.status == DeploymentStatus.PAUSED else ""
    raise Refused(
        f"deployment {busy.id} of {component} is already {busy.status} in {ctx.env} "
        f"(promote it: lastgood promote {ctx.env}, or abort it: lastgood abort {ctx.env}{go_on})"
    )


def bad_release_with(ctx: EnvContext, spec: Component, kind: WeightedKind[Any], version: str) -> BadRelease | None:
    """The newest release marked bad in which the component's traffic was on `version`."""
    with ctx.session() as session:
        for release in store.list_releases(session, ctx.app, ctx.env, bad=True):
            recorded = next((c for c in release.components if c.component == spec.name), None)
            if recorded is not None and recorded.kind == spec.kind and _on(kind, spec, recorded.state, version):
                return BadRelease(label=release.label, reason=release.bad_reason or "no reason recorded")
    return None


def _on(kind: WeightedKind[Any], spec: Component, state: State, version: str) -> bool:
    try:
        return kind.current_split(spec, state).stable == version
    except Exception:  # a state recorded by an older lastgood, or with no traffic at all: not this version
        return False


def _bad_version(kind: WeightedKind[Any], version: str, bad: BadRelease, allow: bool, listener: DeployListener) -> None:
    why = f"{kind.version_noun} {version} is the one of release {bad.label}, marked bad: {bad.reason}"
    if not allow:
        raise Refused(f"{why}. Nothing was changed; pass --allow-bad to deploy it anyway")
    listener.message(f"deploying a version marked bad (--allow-bad): {why}")


def _ensure_previous_release(ctx: EnvContext, label: str, listener: DeployListener) -> str:
    """The release to go back to; when none is recorded, the live state is recorded first as one."""
    with ctx.session() as session:
        live = store.live_release(session, ctx.app, ctx.env)
    if live is not None and not live.bad:
        return live.label
    before = f"{label}-before"
    listener.message(f"no good live release recorded in {ctx.env}: recording the current state as {before}")
    return record_release(ctx, before).label


def _write(
    ctx: EnvContext,
    deployment_id: str,
    ask: DeployRequest,
    states: dict[str, tuple[str, State]],
    names: tuple[str, str, str, str],
    bad: BadRelease | None,
) -> Deployment:
    from_version, version, label, previous = names
    now = ctx.clock.now()
    row = DeploymentRow(
        id=deployment_id,
        app=ctx.app,
        env=ctx.env,
        component=ask.component,
        from_version=from_version,
        to_version=version,
        release_label=label,
        previous_release=previous,
        steps=ask.steps,
        current_step=-1,
        weight=0.0,
        pause_seconds=ask.pause_seconds,
        status=DeploymentStatus.RUNNING,
        started_by=ctx.actor.name,
        created_at=now,
        updated_at=now,
        message="",
        decisions=[],
    )
    shown = ",".join(f"{s:g}" for s in ask.steps)
    message = (
        f"{ask.component} version {from_version} -> {version} in steps {shown}% "
        f"(release {label}; back to {previous} on abort)"
    )
    if bad is not None:
        message += f"; allowed although release {bad.label} with this version was marked bad: {bad.reason}"
    with ctx.session() as session:
        store.record_release(session, ctx.app, ctx.env, label, states, ctx.actor.name, now)
        session.add(row)
        extra = {"allowed_bad": bad.model_dump()} if bad is not None else {}
        rows.event(ctx, session, row, "deploy-started", message, extra)
        return Deployment.of(row)
