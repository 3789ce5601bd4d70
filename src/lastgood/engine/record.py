"""Recording a release: the live state of every component, read in parallel, stored as one release."""

from __future__ import annotations

from lastgood.config.models import Component
from lastgood.errors import AwsError, BadInput, TransientAwsError
from lastgood.kinds.base import State
from lastgood.ledger import store
from lastgood.ledger.tables import ReleaseRow
from lastgood.redact import redact
from lastgood.runtime.context import EnvContext


def read_states(
    ctx: EnvContext, specs: list[Component], recording: bool = False, targets: dict[str, State] | None = None
) -> dict[str, tuple[str, State]]:
    """Every component's live state; a component that cannot be read is a problem named in one message.
    With `targets` (a rollback's plan), each kind reads knowing its target and may prefetch what apply needs."""

    def read(spec: Component) -> tuple[str, State | AwsError]:
        kind = ctx.kind_of(spec)
        try:
            if recording:
                return spec.kind, kind.record(spec, ctx.kind_context)
            if targets is not None and spec.name in targets:
                return spec.kind, kind.read_for_rollback(spec, ctx.kind_context, targets[spec.name])
            return spec.kind, kind.read(spec, ctx.kind_context)
        except AwsError as error:
            return spec.kind, error

    results = ctx.parallel_map(read, specs)
    failed = [(s.name, r) for s, (_, r) in zip(specs, results, strict=True) if isinstance(r, AwsError)]
    if failed:
        message = "cannot read the live state of: " + "; ".join(f"{name}: {error}" for name, error in failed)
        # AWS that does not answer (unreachable, throttled, 5xx after retries) is not bad input: try again.
        if any(isinstance(error, TransientAwsError) for _, error in failed):
            raise TransientAwsError(message + "; nothing was changed, try again")
        raise BadInput(message)
    return {s.name: (kind, state) for s, (kind, state) in zip(specs, results, strict=True) if isinstance(state, dict)}


def record_release(ctx: EnvContext, label: str) -> ReleaseRow:
    if not label.strip():
        raise BadInput("--version: a release needs a non-empty label")
    with ctx.session() as session:
        # Fail on a duplicate label before touching AWS.
        if store.release_exists(session, ctx.app, ctx.env, label):
            raise BadInput(f"release {label!r} already exists in {ctx.env}; releases are immutable, use a new label")
    states = read_states(ctx, ctx.components(), recording=True)
    for name, (_kind, state) in states.items():
        if redact(state) != state:
            raise BadInput(f"{name}: its recorded state contains a secret value; lastgood never stores secrets")
    with ctx.session() as session:
        release = store.record_release(session, ctx.app, ctx.env, label, states, ctx.actor.name, ctx.clock.now())
        for warning in warnings_for(ctx, release):
            store.add_event(session, ctx.app, ctx.env, "release-warning", f"{label}: {warning}", ctx.clock.now())
    return release


def warnings_for(ctx: EnvContext, release: ReleaseRow) -> list[str]:
    """What the kinds want the user to know about a recorded release (e.g. point-in-time recovery is off)."""
    specs = {s.name: s for s in ctx.components()}
    out = []
    for row in release.components:
        spec = specs.get(row.component)
        if spec is not None:
            out += [f"{row.component}: {w}" for w in ctx.kind_of(spec).warnings(spec, row.state)]
    return out
