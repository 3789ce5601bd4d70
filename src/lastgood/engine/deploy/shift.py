"""Moving a share of a weighted component's traffic to the new version, through its `WeightedKind`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lastgood.config.models import Component
from lastgood.engine.deploy import rows
from lastgood.engine.deploy.listener import DeployListener
from lastgood.engine.deploy.models import Deployment
from lastgood.errors import BadInput
from lastgood.kinds.base import WeightedKind
from lastgood.kinds.registry import as_weighted, get_kind, weighted_kinds
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import Lease

DEPLOYABLE_KINDS = weighted_kinds()


def weighted(spec: Component) -> WeightedKind[Any]:
    kind = as_weighted(get_kind(spec.kind))
    if kind is None:
        raise BadInput(
            f"--component: {spec.name} is a {spec.kind}; deploy shifts {', '.join(DEPLOYABLE_KINDS)} components"
        )
    return kind


def apply_share(ctx: EnvContext, deployment: Deployment, percent: float) -> None:
    """`percent` of the component's traffic on the new version, the rest on the old one (idempotent)."""
    spec = ctx.components([deployment.component])[0]
    kind, kctx = ctx.kind_of(spec), ctx.kind_context
    state = kind.read(spec, kctx)
    target = weighted(spec).split(spec, kctx, state, deployment.from_version, deployment.to_version, percent)
    kind.apply(spec, replace(kctx, known_state=state), target)


def shift(
    ctx: EnvContext, deployment: Deployment, index: int, percent: float, lease: Lease | None, listener: DeployListener
) -> Deployment:
    """Step `index`: apply its share, then record it."""
    apply_share(ctx, deployment, percent)
    with rows.editing(ctx, deployment.id, lease) as (session, row):
        row.current_step, row.weight = index, percent / 100
        message = f"{percent:g}% of {row.component} on version {row.to_version}"
        rows.event(ctx, session, row, "deploy-step", message, {"step": index, "percent": percent})
        shifted = Deployment.of(row)
    listener.shifted(shifted, index, percent)
    return shifted
