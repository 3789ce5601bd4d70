"""Planning a rollback: which release to return to, what differs from it now, in what order. Changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lastgood.checks.run import describe as describe_checks
from lastgood.config.durations import format_duration
from lastgood.config.models import Component
from lastgood.domain.ordering import waits_for
from lastgood.domain.state import state_hash
from lastgood.engine.record import read_states
from lastgood.errors import BadInput, Refused
from lastgood.kinds import redeploy
from lastgood.kinds.base import Change, State, without_prefetched
from lastgood.ledger import store
from lastgood.ledger.tables import ReleaseRow
from lastgood.runtime.context import EnvContext


@dataclass
class PlannedStep:
    component: str
    kind: str
    change: Change
    target: State
    waits_for: list[str] = field(default_factory=list)
    current: State | None = None


@dataclass
class Plan:
    app: str
    env: str
    from_release: str | None
    from_release_id: int | None
    to_release: str
    to_release_id: int
    steps: list[PlannedStep]
    unchanged: list[str]
    not_recorded: list[str]
    partial: bool
    rto_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    blocked: str | None = None
    """Why this plan must not run as it is (e.g. code without its schema); the rollback refuses it."""
    live_hashes: dict[str, str] = field(default_factory=dict)
    """Each planned component's live state as it was read (`state_hash`): a saved plan is checked against it."""
    severity: str | None = None
    severity_target_seconds: float | None = None
    """The severity's maximum rollback time (policy.targets.rollback_time)."""
    component_rtos: dict[str, float] = field(default_factory=dict)
    """Each planned component's recovery-time objective (its own `rto:` or its kind's)."""
    validation: list[dict[str, str]] = field(default_factory=list)
    """The checks of the environment's `validate:` block that run once every step is verified (name, type, what)."""

    @property
    def destructive_steps(self) -> list[str]:
        return [s.component for s in self.steps if s.change.destructive]

    @property
    def exceeds_rto(self) -> bool:
        return self.rto_seconds is not None and self.estimate_seconds > self.rto_seconds

    @property
    def estimate_seconds(self) -> float:
        """The critical path: each step's estimate plus the longest chain of steps it waits for."""
        return max(self.finish_estimates().values(), default=0.0)

    def finish_estimates(self) -> dict[str, float]:
        """When each step is expected to be done, from the start of the rollback."""
        by_name = {s.component: s for s in self.steps}
        finish: dict[str, float] = {}

        def finish_time(name: str) -> float:
            if name not in finish:
                step = by_name[name]
                finish[name] = step.change.estimate_seconds + max((finish_time(w) for w in step.waits_for), default=0.0)
            return finish[name]

        return {name: finish_time(name) for name in by_name}

    def target_warnings(self) -> list[str]:
        """Every target the estimate exceeds: the environment's RTO, the severity's maximum, a component's RTO."""
        estimate, out = self.estimate_seconds, []
        if self.exceeds_rto and self.rto_seconds is not None:
            out.append(
                f"the estimate ({format_duration(estimate)}) exceeds {self.env}'s recovery-time objective "
                f"({format_duration(self.rto_seconds)})"
            )
        target = self.severity_target_seconds
        if target is not None and estimate > target:
            out.append(
                f"the estimate ({format_duration(estimate)}) exceeds the maximum rollback time of a "
                f"{self.severity} incident ({format_duration(target)})"
            )
        for name, finish in self.finish_estimates().items():
            rto = self.component_rtos.get(name)
            if rto is not None and finish > rto:
                out.append(
                    f"{name} is expected back after {format_duration(finish)}, over its recovery-time "
                    f"objective ({format_duration(rto)})"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "env": self.env,
            "from_release": self.from_release,
            "to_release": self.to_release,
            "partial": self.partial,
            "estimate_seconds": round(self.estimate_seconds, 1),
            "rto_seconds": self.rto_seconds,
            "exceeds_rto": self.exceeds_rto,
            "severity": self.severity,
            "severity_target_seconds": self.severity_target_seconds,
            "component_rtos": self.component_rtos,
            "target_warnings": self.target_warnings(),
            "destructive_steps": self.destructive_steps,
            "notes": self.notes,
            "blocked": self.blocked,
            "steps": [
                {
                    "component": s.component,
                    "kind": s.kind,
                    "action": s.change.action,
                    "from": s.change.before,
                    "to": s.change.after,
                    "estimate": format_duration(s.change.estimate_seconds),
                    "destructive": s.change.destructive,
                    "slow": s.change.slow,
                    "data_loss_window_seconds": s.change.data_loss_window_seconds,
                    "waits_for": s.waits_for,
                    "notes": list(s.change.notes),
                }
                for s in self.steps
            ],
            "unchanged": self.unchanged,
            "not_recorded": self.not_recorded,
            "validation": self.validation,
        }


def choose_target(ctx: EnvContext, to: str | None) -> tuple[ReleaseRow | None, ReleaseRow]:
    with ctx.session() as session:
        live = store.live_release(session, ctx.app, ctx.env)
        if to is not None:
            target = store.get_release(session, ctx.app, ctx.env, to)
        else:
            if live is None:
                raise Refused(
                    f"nothing to roll back to: no release of {ctx.app} recorded in {ctx.env} "
                    f"(record one with: lastgood release record {ctx.env} --version LABEL)"
                )
            found = store.rollback_target(session, ctx.app, ctx.env)
            if found is None:
                raise Refused(
                    f"nothing to roll back to: no release older than the live one ({live.label}) "
                    "that is not marked bad (pick one with --to)"
                )
            target = found
        target.components  # noqa: B018 - load before the session closes
        return live, target


def _reaches(wait: dict[str, list[str]], start: str, goal: str) -> bool:
    """Whether `start` waits, directly or through others, for `goal`."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name not in seen:
            seen.add(name)
            todo.extend(wait.get(name, ()))
    return False


def build_plan(
    ctx: EnvContext, to: str | None = None, only: list[str] | None = None, severity: str | None = None
) -> Plan:
    live, target = choose_target(ctx, to)
    specs = ctx.components(only)
    recorded = {c.component: c for c in target.components}
    not_recorded = [s.name for s in specs if s.name not in recorded]
    for spec in specs:
        if spec.name in recorded and recorded[spec.name].kind != spec.kind:
            raise BadInput(
                f"{spec.name}: is a {spec.kind} in the file but was a {recorded[spec.name].kind} "
                f"in release {target.label}; roll it back by hand or record a new release"
            )
    plannable = [s for s in specs if s.name in recorded]
    current = read_states(ctx, plannable, targets={s.name: recorded[s.name].state for s in plannable})
    steps, unchanged = [], []
    for spec in plannable:
        target_state = recorded[spec.name].state
        change = ctx.kind_of(spec).plan(spec, current[spec.name][1], target_state)
        if change is None:
            unchanged.append(spec.name)
        else:
            steps.append(PlannedStep(spec.name, spec.kind, change, target_state, current=current[spec.name][1]))
    graph = {s.name: s.depends_on for s in ctx.components()}
    order = waits_for(graph, {s.component for s in steps})
    schema = {s.name for s in specs if ctx.kind_of(s).runs_after_code}
    code = sorted(step.component for step in steps if step.component not in schema)
    for name in sorted(schema & set(order)):
        # Application first, then schema; but not code the schema must go first for (its database, its stack).
        order[name] = sorted(set(order[name]) | {c for c in code if not _reaches(order, c, name)})
    for step in steps:
        step.waits_for = order[step.component]
    steps += _redeploy_steps(ctx, {s.component for s in steps})
    plan = Plan(
        app=ctx.app,
        env=ctx.env,
        from_release=live.label if live else None,
        from_release_id=live.id if live else None,
        to_release=target.label,
        to_release_id=target.id,
        steps=steps,
        unchanged=unchanged,
        not_recorded=not_recorded,
        partial=only is not None,
        rto_seconds=ctx.runbook.environment(ctx.env).rto,
        live_hashes={name: state_hash(without_prefetched(state)) for name, (_kind, state) in current.items()},
        validation=describe_checks(ctx.runbook.validation_for(ctx.env)),
    )
    _targets(ctx, plan, plannable, severity)
    plan.notes += _stop_notes(ctx, plan)
    _schema_safety(ctx, plan, target, schema)
    return plan


def _targets(ctx: EnvContext, plan: Plan, specs: list[Component], severity: str | None) -> None:
    """The targets the plan is measured against (the severity defaults to the policy's)."""
    targets = ctx.runbook.policy.targets
    plan.severity = severity or ctx.runbook.policy.default_severity
    plan.severity_target_seconds = targets.rollback_time_for(plan.severity)
    planned = {s.component for s in plan.steps}
    rtos = {spec.name: ctx.runbook.rto_of(spec) for spec in specs if spec.name in planned}
    plan.component_rtos = {name: rto for name, rto in rtos.items() if rto is not None}


def _redeploy_steps(ctx: EnvContext, changed: set[str]) -> list[PlannedStep]:
    """The redeploys the changed components call for (`redeploy_after`), even of components left out by
    --only: what they pick up is rolled back either way."""
    planned = redeploy.plan_redeploys(ctx.components(), ctx.kind_of, changed)
    return [PlannedStep(r.step, r.kind, r.change, r.target, waits_for=r.waits_for) for r in planned]


def _schema_safety(ctx: EnvContext, plan: Plan, target: ReleaseRow, planned_schema: set[str]) -> None:
    """Code cannot go back alone over a schema that is not backward compatible; lossy schema means freeze."""
    lossy = [s.component for s in plan.steps if s.component in planned_schema and s.change.destructive]
    if lossy:
        plan.notes.append(
            f"the schema of {', '.join(lossy)} cannot go back without losing data: either roll back code and "
            f"schema together (--allow-destructive), or freeze: stop the rollout without rolling back "
            f"(lastgood stop {ctx.env})"
        )
    if not plan.partial or not any(s.component not in planned_schema for s in plan.steps):
        return
    recorded = {c.component: c for c in target.components}
    left_out = [
        s
        for s in ctx.components()
        if ctx.kind_of(s).runs_after_code and s.name not in planned_schema and s.name in recorded
    ]
    current = read_states(ctx, left_out)
    for spec in left_out:
        change = ctx.kind_of(spec).plan(spec, current[spec.name][1], recorded[spec.name].state)
        if change is not None and change.breaks_older_code:
            plan.blocked = (
                f"code cannot be rolled back alone: {spec.name}'s migrations since {target.label} are not backward "
                f"compatible. Roll back code and schema together, in that order (add {spec.name} to --only, or drop "
                f"--only), or freeze: stop the rollout without rolling back (lastgood stop {ctx.env})"
            )
            return


def _stop_notes(ctx: EnvContext, plan: Plan) -> list[str]:
    from lastgood.engine.stop import active_stop

    stop = active_stop(ctx)
    if stop is None:
        return []
    lifted = [s.component for s in plan.steps if s.component in stop.saved]
    note = f"emergency stop {stop.id} is active"
    if lifted:
        note += f"; rolling back {', '.join(lifted)} restores the release's throttling and lifts the stop there"
    return [note + f" (release it with: lastgood stop {ctx.env} --release)"]
