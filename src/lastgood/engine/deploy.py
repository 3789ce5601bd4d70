"""Progressive delivery: shift a weighted component to a new version step by step, the guard judging each step.

The component is of a kind that splits traffic by weight (`kinds.base.WeightedKind`): a lambda-alias (versions
are Lambda versions), a stepfunctions-alias (state machine versions), an elbv2-listener (target groups) or a
route53-weighted record (record sets by SetIdentifier). The kind says what the live split is, whether a version
exists and what the state at each share of traffic is; this module knows no kind.

`Deployer.start` records the release (the deploying component at its new version, every other component as it
is) before the first shift, so that any rollback, this deployment's abort or a guard's, returns to the release
that was live before. `Deployer.run` then, for each step, moves that share of traffic to the new version and
evaluates the file's triggers every period for the pause. A rollback trigger that fires aborts: the component
goes back to its state in the previous release (all traffic on the old version) through the planner and the
executor (so the abort is a recorded, verified rollback) and the release is marked bad. Every step healthy: all
traffic is on the new version.

With a `canary:` block, the canary judge (`judge/canary.py`, fed by `guard/canary.py`) compares the new version
with the old one, both behind the component, every period of every step below 100%. One judge serves the whole
deployment, so its alpha is per deployment; the canary's share is measured in each period from the versions'
request counts, so a shift between steps keeps the test exact. Its verdict `rollback` aborts. An absolute
rollback trigger that fires while the judge finds the canary no worse than the baseline (`not-the-cause`: both
versions are equally bad, so the release did not cause it) is recorded as an alert and the deployment goes on;
until the judge has judged a period past its warmup, such a trigger waits for it for a few periods, then aborts.

The deployment is a row in the ledger; `request` (from `lastgood promote` / `lastgood abort`, any process) sets
a flag that the running deployment reads at each poll. `promote_now` / `abort_now` act directly, for a
deployment whose process is gone.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import select

from lastgood.config.models import Component
from lastgood.engine.executor import Executor, Listener, RollbackResult
from lastgood.engine.planner import build_plan
from lastgood.engine.record import read_states
from lastgood.errors import BadInput, LastgoodError, Refused
from lastgood.guard.canary import CanaryWatch, feed_for
from lastgood.guard.loop import Guard
from lastgood.judge.base import TriggerVerdict
from lastgood.kinds.base import WeightedKind
from lastgood.kinds.registry import as_weighted, get_kind, weighted_kinds
from lastgood.ledger import store
from lastgood.ledger.tables import DeploymentRow
from lastgood.redact import redact
from lastgood.runtime.context import EnvContext
from lastgood.runtime.notifications import notify_alert
from lastgood.sources.base import MetricSource
from lastgood.sources.prometheus import PrometheusSource

RUNNING, PROMOTED, ABORTED, FAILED = "running", "promoted", "aborted", "failed"
DEPLOYABLE_KINDS = weighted_kinds()


class DeployListener(Protocol):
    def shifted(self, deployment: DeploymentRow, step: int, percent: float) -> None: ...
    def evaluated(self, verdicts: list[TriggerVerdict]) -> None: ...
    def judged(self, decision: dict[str, Any]) -> None: ...
    def canary(self, state: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...


class QuietDeployListener:
    def shifted(self, deployment: DeploymentRow, step: int, percent: float) -> None:
        pass

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        pass

    def judged(self, decision: dict[str, Any]) -> None:
        pass

    def canary(self, state: dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass


class _GuardAdapter:
    """Hands the guard's verdicts to the deployment's listener."""

    def __init__(self, listener: DeployListener) -> None:
        self.listener = listener

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        self.listener.evaluated(verdicts)

    def rollback_started(self, rollback_id: str, verdict: TriggerVerdict) -> None:
        pass


@dataclass
class DeployResult:
    id: str
    env: str
    component: str
    status: str
    from_version: str
    to_version: str
    release: str
    previous_release: str | None
    steps: list[float]
    current_step: int
    weight: float
    message: str
    rollback: RollbackResult | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == PROMOTED else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.env,
            "component": self.component,
            "status": self.status,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "release": self.release,
            "previous_release": self.previous_release,
            "steps": self.steps,
            "current_step": self.current_step,
            "weight": self.weight,
            "message": self.message,
            "rollback": self.rollback.to_dict() if self.rollback else None,
            "decisions": self.decisions,
        }


def parse_steps(text: str) -> list[float]:
    """'10,50,100' -> [10.0, 50.0, 100.0]: increasing percentages that end at 100."""
    try:
        steps = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"--steps: {text!r} is not a comma-separated list of percentages, e.g. 10,50,100") from None
    if not steps or any(not 0 < s <= 100 for s in steps):
        raise BadInput(f"--steps: each step is a percentage in (0, 100], got {text!r}")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise BadInput(f"--steps: the percentages must increase, got {text!r}")
    if steps[-1] != 100:
        steps.append(100.0)
    return steps


def new_deployment_id() -> str:
    return "dp-" + uuid.uuid4().hex[:10]


def result_of(row: DeploymentRow, rollback: RollbackResult | None = None) -> DeployResult:
    return DeployResult(
        id=row.id,
        env=row.env,
        component=row.component,
        status=row.status,
        from_version=row.from_version,
        to_version=row.to_version,
        release=row.release_label,
        previous_release=row.previous_release,
        steps=[float(s) for s in row.steps],
        current_step=row.current_step,
        weight=row.weight,
        message=row.message,
        rollback=rollback,
        decisions=list(row.decisions),
    )


def running_deployment(ctx: EnvContext, component: str | None = None) -> DeploymentRow:
    """The one running deployment in the environment (of `component`, when given)."""
    with ctx.session() as session:
        query = select(DeploymentRow).filter_by(app=ctx.app, env=ctx.env, status=RUNNING)
        if component is not None:
            query = query.filter_by(component=component)
        rows = list(session.scalars(query.order_by(DeploymentRow.created_at.desc())))
    if not rows:
        what = f" of {component}" if component else ""
        raise Refused(f"no deployment{what} is running in {ctx.env}")
    if len(rows) > 1:
        names = ", ".join(f"{r.id} ({r.component})" for r in rows)
        raise BadInput(f"more than one deployment is running in {ctx.env}: {names}; name one with --component")
    return rows[0]


def list_deployments(ctx: EnvContext, limit: int = 20) -> list[DeploymentRow]:
    with ctx.session() as session:
        query = select(DeploymentRow).filter_by(app=ctx.app, env=ctx.env)
        return list(session.scalars(query.order_by(DeploymentRow.created_at.desc()).limit(limit)))


def request(ctx: EnvContext, deployment_id: str, what: str, by: str | None = None) -> DeploymentRow:
    """A person asks the running deployment to promote now or abort; it acts at its next poll."""
    assert what in ("promote", "abort")
    who = by or ctx.actor.name
    with ctx.session() as session:
        row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise Refused(f"no deployment {deployment_id!r}")
        if row.status != RUNNING:
            raise Refused(f"deployment {row.id} is {row.status}; nothing to {what}")
        row.requested, row.requested_by, row.updated_at = what, who, ctx.clock.now()
        store.add_event(
            session,
            ctx.app,
            ctx.env,
            f"deploy-{what}-requested",
            f"deployment {row.id} ({row.component} -> version {row.to_version}): {what} requested by {who}",
            ctx.clock.now(),
            data={"deployment": row.id},
            actor=who,
        )
        return row


def get_deployment(ctx: EnvContext, deployment_id: str) -> DeploymentRow:
    with ctx.session() as session:
        row = session.get(DeploymentRow, deployment_id)
    if row is None:
        raise Refused(f"no deployment {deployment_id!r}")
    return row


class Deployer:
    def __init__(
        self,
        ctx: EnvContext,
        source: MetricSource,
        listener: DeployListener | None = None,
        rollback_listener: Listener | None = None,
    ) -> None:
        self.ctx = ctx
        self.source = source
        self.listener: DeployListener = listener or QuietDeployListener()
        self.rollback_listener = rollback_listener
        self.guard = Guard(ctx, source, listener=_GuardAdapter(self.listener))
        self.canary = ctx.runbook.canary_for(ctx.env)
        self.canary_watch: CanaryWatch | None = None

    # -- starting ---------------------------------------------------------------------------------------------

    def start(
        self, component: str, version: str, steps: list[float], pause: float, label: str | None = None
    ) -> DeploymentRow:
        """Check, record the release, and write the deployment row. Shifts nothing yet."""
        spec = self.ctx.components([component])[0]
        kind = self._weighted(spec)
        with self.ctx.session() as session:
            busy = session.scalars(
                select(DeploymentRow).filter_by(app=self.ctx.app, env=self.ctx.env, component=component, status=RUNNING)
            ).first()
            if busy is not None:
                raise Refused(
                    f"deployment {busy.id} of {component} is already running in {self.ctx.env} "
                    f"(promote it: lastgood promote {self.ctx.env}, or abort it: lastgood abort {self.ctx.env})"
                )
        current = self.ctx.kind_of(spec).read(spec, self.ctx.kind_context)
        split = kind.current_split(spec, current)
        if split.candidate is not None:
            raise Refused(
                f"{component} already splits its traffic ({self.ctx.kind_of(spec).describe(current)}); "
                "finish or undo that shift first"
            )
        version = kind.resolve_version(spec, self.ctx.kind_context, current, version)
        from_version = split.stable
        if from_version == version:
            raise BadInput(f"{component} is already on {kind.version_noun} {version}")
        label = label or version
        with self.ctx.session() as session:
            if label in {r.label for r in store.list_releases(session, self.ctx.app, self.ctx.env)}:
                raise BadInput(f"release {label!r} already exists in {self.ctx.env}; use --release with a new label")
        previous = self._ensure_previous_release(label)
        now = self.ctx.clock.now()
        states = read_states(self.ctx, self.ctx.components(), recording=True)
        promoted = kind.split(spec, self.ctx.kind_context, current, from_version, version, 100.0)
        states[component] = (spec.kind, promoted)
        if redact(states) != states:
            raise BadInput("a recorded state contains a secret value; lastgood never stores secrets")
        row = DeploymentRow(
            id=new_deployment_id(),
            app=self.ctx.app,
            env=self.ctx.env,
            component=component,
            from_version=from_version,
            to_version=version,
            release_label=label,
            previous_release=previous,
            steps=steps,
            current_step=-1,
            weight=0.0,
            pause_seconds=pause,
            status=RUNNING,
            started_by=self.ctx.actor.name,
            created_at=now,
            updated_at=now,
            message="",
            decisions=[],
        )
        with self.ctx.session() as session:
            store.record_release(session, self.ctx.app, self.ctx.env, label, states, self.ctx.actor.name, now)
            session.add(row)
            store.add_event(
                session,
                self.ctx.app,
                self.ctx.env,
                "deploy-started",
                f"deployment {row.id}: {component} version {from_version} -> {version} in steps "
                f"{','.join(f'{s:g}' for s in steps)}% (release {label}; back to {previous} on abort)",
                now,
                data=self._data(row),
            )
        return row

    @staticmethod
    def _weighted(spec: Component) -> WeightedKind[Any]:
        kind = as_weighted(get_kind(spec.kind))
        if kind is None:
            raise BadInput(
                f"--component: {spec.name} is a {spec.kind}; deploy shifts {', '.join(DEPLOYABLE_KINDS)} components"
            )
        return kind

    def _ensure_previous_release(self, label: str) -> str:
        """The release to go back to; when none is recorded, the live state is recorded first as one."""
        with self.ctx.session() as session:
            live = store.live_release(session, self.ctx.app, self.ctx.env)
        if live is not None and not live.bad:
            return live.label
        from lastgood.engine.record import record_release

        before = f"{label}-before"
        self.listener.message(
            f"no good live release recorded in {self.ctx.env}: recording the current state as {before}"
        )
        return record_release(self.ctx, before).label

    # -- running ----------------------------------------------------------------------------------------------

    def run(self, deployment_id: str) -> DeployResult:
        row = get_deployment(self.ctx, deployment_id)
        steps = [float(s) for s in row.steps]
        longest = max((t.for_ + t.period for t in self.guard.triggers), default=0.0)
        if self.canary is not None:  # the judge needs its warmup and one period more, after a period to settle
            longest = max(longest, (self.canary.warmup_intervals + 3) * self.canary.period)
        judged_for = max(row.pause_seconds, longest)
        if self.guard.triggers and judged_for > row.pause_seconds:
            self.listener.message(
                f"each step is judged for {judged_for:g}s, not {row.pause_seconds:g}s: "
                "every trigger needs one full window of data after the shift"
            )
        try:
            for index in range(row.current_step + 1, len(steps)):
                percent = steps[index]
                if percent >= 100:
                    return self._promote(row.id, "all steps healthy")
                self._shift(row.id, index, percent)
                if self.canary is not None and self.canary_watch is None:
                    self.canary_watch = self._canary_watch(row)
                outcome = self._watch(row.id, index, percent, judged_for)
                if outcome == "elsewhere":
                    return result_of(get_deployment(self.ctx, row.id))
                if outcome == "promote":
                    return self._promote(row.id, f"promoted by {get_deployment(self.ctx, row.id).requested_by}")
                if outcome == "abort":
                    who = get_deployment(self.ctx, row.id).requested_by
                    return self._abort(row.id, f"aborted by {who}", requested_by=who)
                if outcome != "healthy":
                    return self._abort(row.id, outcome, requested_by="lastgood-deploy")
            return self._promote(row.id, "all steps healthy")
        except LastgoodError as error:
            # The component may be part-way: leave the row running so that `lastgood abort --force` can finish it.
            self._update(row.id, message=f"stopped by an error: {error}")
            raise

    def _shift(self, deployment_id: str, index: int, percent: float) -> None:
        row = get_deployment(self.ctx, deployment_id)
        self._apply(row, percent)
        now = self.ctx.clock.now()
        with self.ctx.session() as session:
            stored = session.get(DeploymentRow, deployment_id)
            assert stored is not None
            stored.current_step, stored.weight, stored.updated_at = index, percent / 100, now
            store.add_event(
                session,
                self.ctx.app,
                self.ctx.env,
                "deploy-step",
                f"deployment {row.id}: {percent:g}% of {row.component} on version {row.to_version}",
                now,
                data={**self._data(stored), "step": index, "percent": percent},
            )
            row = stored
        self.listener.shifted(row, index, percent)

    def _canary_watch(self, row: DeploymentRow) -> CanaryWatch:
        assert self.canary is not None
        spec = self.ctx.components([row.component])[0]
        state = self.ctx.kind_of(spec).read(spec, self.ctx.kind_context)
        source = self.source if self.canary.source_type == "cloudwatch" else PrometheusSource()
        versions = (row.to_version, row.from_version)
        feed = feed_for(self.canary, self._weighted(spec), spec, state, versions, source, self.ctx.clock.now())
        return CanaryWatch(self.canary, feed)

    def _watch(self, deployment_id: str, index: int, percent: float, judged_for: float) -> str:
        """Evaluate every period for the pause: 'healthy', 'promote', 'abort' (a person), or why it failed."""
        deadline = self.ctx.clock.now().timestamp() + judged_for
        canary = self.canary_watch
        interval = min(self.guard.interval, canary.canary.period) if canary is not None else self.guard.interval
        fired_since: float | None = None
        alerted = False
        while True:
            now_row = get_deployment(self.ctx, deployment_id)
            if now_row.status != RUNNING:
                return "elsewhere"  # `lastgood promote/abort --force` finished it from another process
            if now_row.requested in ("promote", "abort"):
                return now_row.requested
            verdicts = self.guard.evaluate() if self.guard.triggers else []
            fired = next((v for v in verdicts if v.fires_rollback), None)
            now = self.ctx.clock.now().timestamp()
            remaining = deadline - now
            if canary is not None:
                self._canary_update(canary, fired is not None)
                if canary.state == "rollback":
                    reason = canary.reason(percent)
                    self._decide(deployment_id, index, percent, "canary-rollback", verdicts, reason)
                    return reason
            if fired is not None:
                reason = f"trigger {fired.trigger} ({fired.severity}) fired at {percent:g}%: {fired.detail}"
                fired_since = now if fired_since is None else fired_since
                if canary is not None and canary.state == "not-the-cause":
                    if not alerted:  # once per episode of the trigger firing
                        alerted = True
                        self._not_the_cause(deployment_id, index, percent, verdicts, fired, canary)
                elif canary is None or now - fired_since >= canary.patience or remaining <= 0:
                    if canary is not None:
                        reason += f" (the canary judge could not compare the versions: {canary.detail()})"
                    self._decide(deployment_id, index, percent, "fired", verdicts, reason)
                    return reason
            else:
                fired_since, alerted = None, False
            if remaining <= 0 and (fired is None or alerted):
                broken = [v for v in verdicts if v.action == "rollback" and v.state == "error"]
                if broken:
                    reason = f"cannot judge the step at {percent:g}%: " + "; ".join(
                        f"{v.trigger}: {v.detail}" for v in broken
                    )
                    self._decide(deployment_id, index, percent, "unjudgeable", verdicts, reason)
                    return reason
                if alerted:
                    why = f"not the release at {percent:g}%: both versions are equally bad; going on"
                    self._decide(deployment_id, index, percent, "not-the-cause", verdicts, why)
                else:
                    self._decide(deployment_id, index, percent, "healthy", verdicts, f"healthy at {percent:g}%")
                return "healthy"
            self.ctx.clock.sleep(max(min(interval, remaining), 0.05))

    def _canary_update(self, canary: CanaryWatch, absolute_firing: bool) -> None:
        for reading in canary.update(self.ctx.clock.now(), absolute_firing):
            if reading.interval is None:
                self.listener.message(
                    f"canary: no data for the period at {reading.start:%H:%M:%S} ({'; '.join(reading.missing)}); "
                    "not judged"
                )
        self.listener.canary(canary.to_dict())

    def _not_the_cause(
        self,
        deployment_id: str,
        index: int,
        percent: float,
        verdicts: list[TriggerVerdict],
        fired: TriggerVerdict,
        canary: CanaryWatch,
    ) -> None:
        """An alert, not a rollback: the absolute trigger fires, yet the canary is no worse than the baseline."""
        why = (
            f"trigger {fired.trigger} fired at {percent:g}%, but both versions are equally bad: not the release "
            f"(canary judge: {canary.detail()})"
        )
        now = self.ctx.clock.now()
        with self.ctx.session() as session:
            store.add_event(
                session,
                self.ctx.app,
                self.ctx.env,
                "deploy-alert",
                f"deployment {deployment_id}: {why}",
                now,
                data={"deployment": deployment_id, "trigger": fired.to_dict(), "canary": canary.to_dict()},
            )
        self.listener.message(f"alert: {why}")
        notify_alert(
            self.ctx,
            "not-the-cause",
            deployment_id,
            issue=f"trigger {fired.trigger} fired during deployment {deployment_id} at {percent:g}%: {fired.detail}",
            action="none by lastgood: both versions are equally bad, so the release did not cause it; "
            "look at what they share (a dependency, the data, the network)",
            details=[canary.detail()],
        )
        self._decide(deployment_id, index, percent, "not-the-cause", verdicts, why)

    def _decide(
        self, deployment_id: str, index: int, percent: float, verdict: str, verdicts: list[TriggerVerdict], why: str
    ) -> None:
        now = self.ctx.clock.now()
        decision = {
            "step": index,
            "percent": percent,
            "at": now.isoformat(),
            "decision": verdict,
            "reason": why,
            "verdicts": [v.to_dict() for v in verdicts],
            "canary": self.canary_watch.to_dict() if self.canary_watch is not None else None,
        }
        with self.ctx.session() as session:
            row = session.get(DeploymentRow, deployment_id)
            assert row is not None
            row.decisions = [*row.decisions, redact(decision)]
            row.updated_at = now
            store.add_event(
                session,
                self.ctx.app,
                self.ctx.env,
                "deploy-judged",
                f"deployment {row.id} at {percent:g}%: {verdict} ({why})",
                now,
                data={**self._data(row), **decision},
            )
        self.listener.judged(decision)

    # -- finishing --------------------------------------------------------------------------------------------

    def _promote(self, deployment_id: str, why: str) -> DeployResult:
        row = get_deployment(self.ctx, deployment_id)
        if row.status != RUNNING:
            return result_of(row)
        self._apply(row, 100.0)
        now = self.ctx.clock.now()
        with self.ctx.session() as session:
            stored = session.get(DeploymentRow, deployment_id)
            assert stored is not None
            release = store.get_release(session, self.ctx.app, self.ctx.env, stored.release_label)
            store.set_live(session, self.ctx.app, self.ctx.env, release.id)
            stored.status, stored.weight, stored.finished_at, stored.updated_at = PROMOTED, 1.0, now, now
            stored.current_step = len(stored.steps) - 1
            stored.message = (
                f"{stored.component} is on version {stored.to_version}: {why}; release {release.label} is live"
            )
            store.add_event(
                session,
                self.ctx.app,
                self.ctx.env,
                "deploy-promoted",
                f"deployment {stored.id}: {stored.message}",
                now,
                data=self._data(stored),
            )
            row = stored
        self.listener.message(row.message)
        return result_of(row)

    def _abort(self, deployment_id: str, why: str, requested_by: str | None) -> DeployResult:
        """Back to the previous release's state for this component, as a verified rollback; the release is bad."""
        row = get_deployment(self.ctx, deployment_id)
        if row.status != RUNNING:
            return result_of(row)
        self.listener.message(f"aborting {row.id}: {why}")
        rollback: RollbackResult | None = None
        if row.previous_release is None:
            self._apply(row, 0.0)
        else:
            plan = build_plan(self.ctx, to=row.previous_release, only=[row.component])
            if plan.steps:
                executor = Executor(self.ctx, self.rollback_listener)
                rollback_id = executor.create(
                    plan, reason=f"deployment {row.id} aborted: {why}", requested_by=requested_by or "lastgood-deploy"
                )
                rollback = executor.run(rollback_id)
        now = self.ctx.clock.now()
        ok = rollback is None or rollback.status == "succeeded"
        with self.ctx.session() as session:
            stored = session.get(DeploymentRow, deployment_id)
            assert stored is not None
            stored.status = ABORTED if ok else FAILED
            stored.finished_at, stored.updated_at = now, now
            stored.rollback_id = rollback.id if rollback else None
            stored.weight = 0.0 if ok else stored.weight
            if ok:
                stored.message = f"{stored.component} is back on version {stored.from_version}: {why}"
                release = store.get_release(session, self.ctx.app, self.ctx.env, stored.release_label)
                if stored.previous_release is not None:
                    previous = store.get_release(session, self.ctx.app, self.ctx.env, stored.previous_release)
                    store.set_live(session, self.ctx.app, self.ctx.env, previous.id)
                if not release.bad:
                    store.mark_bad(session, release, f"deployment {stored.id} aborted: {why}", now)
            else:
                assert rollback is not None
                stored.message = f"the abort's rollback failed ({why}): {rollback.summary()}"
            store.add_event(
                session,
                self.ctx.app,
                self.ctx.env,
                "deploy-aborted" if ok else "deploy-failed",
                f"deployment {stored.id}: {stored.message}",
                now,
                stored.rollback_id,
                data=self._data(stored),
            )
            row = stored
        self.listener.message(row.message)
        return result_of(row, rollback)

    def promote_now(self, deployment_id: str) -> DeployResult:
        """For a deployment whose process is gone: jump to 100% from here."""
        row = request(self.ctx, deployment_id, "promote")
        return self._promote(row.id, f"promoted by {row.requested_by} (directly)")

    def abort_now(self, deployment_id: str) -> DeployResult:
        """For a deployment whose process is gone: go back from here."""
        row = request(self.ctx, deployment_id, "abort")
        return self._abort(row.id, f"aborted by {row.requested_by} (directly)", row.requested_by)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _apply(self, row: DeploymentRow, percent: float) -> None:
        """`percent` of the component's traffic on the new version, the rest on the old one."""
        spec = self.ctx.components([row.component])[0]
        kind, ctx = self.ctx.kind_of(spec), self.ctx.kind_context
        state = kind.read(spec, ctx)
        target = self._weighted(spec).split(spec, ctx, state, row.from_version, row.to_version, percent)
        kind.apply(spec, replace(ctx, known_state=state), target)

    @staticmethod
    def _data(row: DeploymentRow) -> dict[str, Any]:
        return {
            "deployment": row.id,
            "component": row.component,
            "from_version": row.from_version,
            "to_version": row.to_version,
            "release": row.release_label,
            "weight": row.weight,
        }

    def _update(self, deployment_id: str, **values: Any) -> None:
        with self.ctx.session() as session:
            row = session.get(DeploymentRow, deployment_id)
            if row is not None:
                for key, value in values.items():
                    setattr(row, key, value)
                row.updated_at = self.ctx.clock.now()
