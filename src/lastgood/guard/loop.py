"""The guard loop: every period, fetch every trigger's series in one batch, judge, act on what fires."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from lastgood.config.models import Component, Trigger
from lastgood.domain.state import State
from lastgood.errors import ExitCode
from lastgood.guard.canary import CanaryWatch, feed_for, judge_key
from lastgood.guard.judges import LedgerJudgeStore
from lastgood.guard.verdicts import Coverage
from lastgood.judge.base import Judge, TriggerVerdict
from lastgood.judge.threshold import ThresholdJudge
from lastgood.kinds.base import WeightedKind
from lastgood.kinds.registry import as_weighted
from lastgood.ledger import judges, store
from lastgood.runtime.context import EnvContext
from lastgood.runtime.notifications import notify_alert
from lastgood.sources.base import MetricSource, Series, SeriesRequest
from lastgood.sources.registry import build_source, close_sources, sources_for


class RollbackRun(Protocol):
    """What the guard reports of the rollback its responder ran."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    def summary(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class Response:
    """What was done about a firing rollback trigger."""

    status: str  # rolled-back | rollback-failed | interrupted | joined | held | nothing-to-roll-back-to | ...
    message: str
    rollback: RollbackRun | None = None
    decision: dict[str, Any] | None = None


class Responder(Protocol):
    """Acts on a rollback trigger that holds: the service's rollback use case (the guard knows no engine)."""

    def respond(self, fired: TriggerVerdict, detected_at: datetime) -> Response: ...


class GuardListener(Protocol):
    def evaluated(self, verdicts: list[TriggerVerdict]) -> None: ...
    def rollback_started(self, rollback_id: str, verdict: TriggerVerdict) -> None: ...


class QuietGuardListener:
    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        pass

    def rollback_started(self, rollback_id: str, verdict: TriggerVerdict) -> None:
        pass


@dataclass
class GuardOutcome:
    env: str
    status: str  # healthy | blind | inconclusive | rolled-back | rollback-failed | joined | interrupted | ...
    evaluations: int
    fired: TriggerVerdict | None = None
    rollback: RollbackRun | None = None
    alerts: list[TriggerVerdict] = field(default_factory=list)
    detected_at: datetime | None = None
    message: str = ""
    decision: dict[str, Any] | None = None
    canary: list[dict[str, Any]] = field(default_factory=list)  # each in-flight canary's judge, at the end
    blind: list[str] = field(default_factory=list)  # each episode of a canary judge that could not judge
    triggers: list[dict[str, Any]] = field(default_factory=list)  # each rollback trigger's coverage of the watch

    @property
    def exit_code(self) -> int:
        return GUARD_EXIT_CODES.get(self.status, ExitCode.FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "status": self.status,
            "evaluations": self.evaluations,
            "fired": self.fired.to_dict() if self.fired else None,
            "detected_at": self.detected_at.isoformat() if self.detected_at else None,
            "rollback": self.rollback.to_dict() if self.rollback else None,
            "alerts": [a.to_dict() for a in self.alerts],
            "message": self.message,
            "decision": self.decision,
            "canary": self.canary,
            "blind": self.blind,
            "triggers": self.triggers,
        }


GUARD_EXIT_CODES = {
    "healthy": ExitCode.OK,
    "blind": ExitCode.BLIND,
    "inconclusive": ExitCode.INCONCLUSIVE,
    "nothing-to-roll-back-to": ExitCode.REFUSED,
    "held": ExitCode.REFUSED,
    "fired": ExitCode.REFUSED,
    "interrupted": ExitCode.INTERRUPTED,
    "restored-unhealthy": ExitCode.RESTORED_UNHEALTHY,
}
_NOT_THE_CAUSE = "\0not-the-cause"  # in `_alerting`: the not-the-cause alert of the current firing episode


@dataclass(frozen=True)
class PlannedFetch:
    source_type: str
    requests: tuple[SeriesRequest, ...]
    start: datetime
    end: datetime

    @property
    def key(self) -> tuple[str, tuple[str, ...], datetime, datetime]:
        return (self.source_type, tuple(r.id for r in self.requests), self.start, self.end)


def window_end(now: datetime, period: float) -> datetime:
    """The end of the last complete period: the current, partial one is not judged."""
    stamp = int(now.timestamp() // period * period)
    return datetime.fromtimestamp(stamp, UTC)


class Guard:
    def __init__(
        self,
        ctx: EnvContext,
        source: MetricSource | Mapping[str, MetricSource] | None = None,
        judge: Judge | None = None,
        listener: GuardListener | None = None,
        responder: Responder | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """`source`: one source for the CloudWatch triggers (tests, drills), or sources by type; the sources
        the triggers need beyond those are built by sources/registry.py."""
        self.ctx = ctx
        self.judge = judge or ThresholdJudge()
        self.listener = listener or QuietGuardListener()
        self.responder = responder
        self.stop = stop or threading.Event()  # set by an interrupt: stop watching
        self.triggers = ctx.runbook.triggers_for(ctx.env)
        given = source if isinstance(source, Mapping) else {"cloudwatch": source} if source is not None else {}
        self.sources = sources_for(self.triggers, ctx.aws, given)
        self._built = {kind: s for kind, s in self.sources.items() if kind not in given}  # closed after run
        self._alerting: set[str] = set()
        self.canary = ctx.runbook.canary_for(ctx.env)
        self.canaries: list[CanaryWatch] = []  # built when the guard runs: one per canary in flight
        self._canary_keys: list[tuple[str, str, str]] = []
        self._fired_since: float | None = None  # when the firing rollback trigger began to fire
        self._baselines: dict[tuple[str, float, datetime], dict[str, Series]] = {}
        self.coverage = Coverage(self.triggers, ctx.clock.now())  # restarted by open()
        self.prefetched: dict[tuple[str, tuple[str, ...], datetime, datetime], dict[str, Series]] = {}
        # With `act_later`, `step` leaves a rollback it would start in `pending` (see `act_pending`), so that a
        # caller judging many environments records the others' periods before one rollback takes its time.
        self.act_later = False
        self.pending: TriggerVerdict | None = None

    @property
    def interval(self) -> float:
        periods = [t.period for t in self.triggers] + [w.canary.period for w in self.canaries]
        return min(periods, default=60.0)

    def _groups(self) -> dict[tuple[str, float], list[Trigger]]:
        groups: dict[tuple[str, float], list[Trigger]] = {}
        for trigger in self.triggers:
            groups.setdefault((trigger.source_type, trigger.period), []).append(trigger)
        return groups

    def planned_fetches(self, now: datetime) -> list[PlannedFetch]:
        """The live fetches `evaluate` at `now` makes, one per trigger group: a caller guarding many environments
        may fetch them together and hand each guard its series (`prefetched`)."""
        out = []
        for (source_type, period), triggers in self._groups().items():
            end = window_end(now, period)
            longest = max(t.within or t.for_ for t in triggers)
            live = [r for t in triggers for r in self.judge.requests(t) if r.window == "live"]
            start = datetime.fromtimestamp(end.timestamp() - longest, UTC)
            out.append(PlannedFetch(source_type, tuple(live), start, end))
        return out

    def evaluate(self) -> list[TriggerVerdict]:
        now = self.ctx.clock.now()
        recorded = self._live_recorded_at() if any(t.when.kind == "baseline" for t in self.triggers) else None
        verdicts = []
        prefetched, self.prefetched = self.prefetched, {}
        for (source_type, period), triggers in self._groups().items():
            end = window_end(now, period)
            longest = max(t.within or t.for_ for t in triggers)
            requests = [r for t in triggers for r in self.judge.requests(t)]
            live = [r for r in requests if r.window == "live"]
            start = datetime.fromtimestamp(end.timestamp() - longest, UTC)
            series = prefetched.get(PlannedFetch(source_type, tuple(live), start, end).key)
            if series is None:
                series = self.sources[source_type].fetch(live, start, end)
            baseline_end = window_end(recorded, period) if recorded is not None else None
            baseline = [r for r in requests if r.window == "baseline"]
            if baseline and baseline_end is not None:
                span = max(t.baseline_window for t in triggers if t.when.kind == "baseline")
                series.update(self._baseline(source_type, baseline, baseline_end, span))
            verdicts += [self.judge.judge(t, series, end, baseline_end) for t in triggers]
        self.coverage.observe(verdicts, now)
        self.listener.evaluated(verdicts)
        return verdicts

    def _live_recorded_at(self) -> datetime | None:
        with self.ctx.session() as session:
            release = store.live_release(session, self.ctx.app, self.ctx.env)
            return release.recorded_at if release is not None else None

    def _baseline(
        self, source_type: str, requests: list[SeriesRequest], end: datetime, span: float
    ) -> dict[str, Series]:
        """The window before the live release was recorded: fetched once (it does not change), unless it failed."""
        key = (source_type, requests[0].period, end)
        if key not in self._baselines:
            series = self.sources[source_type].fetch(requests, end - timedelta(seconds=span), end)
            if any(s.status == "error" for s in series.values()):
                return series
            self._baselines[key] = series
        return self._baselines[key]

    def run(self, duration: float) -> GuardOutcome:
        try:
            self.open()
            if not self.triggers and not self.canaries:
                return GuardOutcome(self.ctx.env, "healthy", 0, message="the file has no triggers; nothing to watch")
            return self._run(duration)
        finally:
            self.close()

    def open(self) -> None:
        """Before the first period: the watch starts now; a judge for each canary in flight."""
        self.coverage = Coverage(self.triggers, self.ctx.clock.now())
        self.refresh_canaries()

    def close(self) -> None:
        close_sources(self._built)

    def refresh_canaries(self) -> None:
        """Follow deployments in flight: a judge for each canary that started (a deployment from anywhere), none
        for one no longer in flight (promoted, rolled back); a canary still in flight keeps its judge."""
        kept = dict(zip(self._canary_keys, self.canaries, strict=True))
        found = self._canaries_in_flight()
        self._canary_keys = [key for key, _ in found]
        self.canaries = [kept.get(key) or make() for key, make in found]

    def _canaries_in_flight(self) -> list[tuple[tuple[str, str, str], Callable[[], CanaryWatch]]]:
        """With a `canary:` block: one judge per weighted component (lambda-alias, stepfunctions-alias,
        elbv2-listener, route53-weighted) whose live split sends part, not all, of its traffic to a second version;
        keyed by (component, new version, old version)."""
        if self.canary is None:
            return []
        canary = self.canary
        found: list[tuple[tuple[str, str, str], Callable[[], CanaryWatch]]] = []
        for spec in self.ctx.components():
            kind = as_weighted(self.ctx.kind_of(spec))
            if kind is None:
                continue
            state = self.ctx.kind_of(spec).read(spec, self.ctx.kind_context)
            split = kind.current_split(spec, state)
            if not split.in_flight or split.candidate is None:
                continue
            versions = (split.candidate, split.stable)
            label = f"{spec.name} at {split.weight * 100:g}%"

            def make(
                kind: WeightedKind[Any] = kind,
                spec: Component = spec,
                state: State = state,
                versions: tuple[str, str] = versions,
                label: str = label,
            ) -> CanaryWatch:
                source = self._canary_source(canary.source_type)
                feed = feed_for(canary, kind, spec, state, versions, source, self.ctx.clock.now())
                with self.ctx.session() as session:
                    deployment = judges.deployment_for(session, self.ctx.app, self.ctx.env, spec.name, *versions)
                key = judge_key(self.ctx.app, self.ctx.env, spec.name, *versions, deployment)
                return CanaryWatch(canary, feed, label, LedgerJudgeStore(self.ctx), key)

            found.append(((spec.name, *versions), make))
        return found

    def _canary_source(self, source_type: str) -> MetricSource:
        if source_type not in self.sources:
            self.sources[source_type] = self._built[source_type] = build_source(source_type, self.ctx.aws, [])
        return self.sources[source_type]

    def _run(self, duration: float) -> GuardOutcome:
        deadline = self.ctx.clock.now().timestamp() + duration
        outcome = GuardOutcome(self.ctx.env, "healthy", 0)
        while not self.step(outcome):
            remaining = deadline - self.ctx.clock.now().timestamp()
            if remaining <= 0:
                ended = f"no rollback trigger fired in {duration:g}s ({outcome.evaluations} evaluations)"
                self.conclude(outcome, ended)
                return outcome
            if self._pause(min(self.interval, remaining)):
                outcome.status = "interrupted"
                outcome.message = f"stopped watching after {outcome.evaluations} evaluations (interrupted)"
                outcome.triggers = self.coverage.to_list()
                return outcome
        outcome.triggers = self.coverage.to_list()
        return outcome

    def conclude(self, outcome: GuardOutcome, ended: str) -> None:
        """A watch that ended without acting: healthy, blind or inconclusive (guard/verdicts.py), and why."""
        outcome.status = self.coverage.verdict
        outcome.message = f"{ended}; {self.coverage.message()}"
        outcome.triggers = self.coverage.to_list()

    def step(self, outcome: GuardOutcome) -> bool:
        """One period: evaluate, report alerts, judge the canaries, act on what fires. True when the guard acted
        (`outcome` says how); False when it should go on watching."""
        verdicts = self.evaluate() if self.triggers else []
        outcome.evaluations += 1
        self._record_alerts(verdicts, outcome)
        fired = next((v for v in verdicts if v.fires_rollback), None)
        now = self.ctx.clock.now().timestamp()
        for watch in self.canaries:
            watch.update(self.ctx.clock.now(), fired is not None)
            if watch.blind_started:  # once per episode: the next good period ends it
                self._blind(watch, outcome)
        outcome.canary = [watch.to_dict() for watch in self.canaries]
        judged_bad = next((w for w in self.canaries if w.state == "rollback"), None)
        if judged_bad is not None:
            return self._act(self._canary_verdict(judged_bad), outcome)
        if fired is None:
            self._fired_since = None
            self._alerting.discard(_NOT_THE_CAUSE)
            return False
        self._fired_since = now if self._fired_since is None else self._fired_since
        if self._hold_for_the_canary(fired, now - self._fired_since, outcome):
            return False
        return self._act(fired, outcome)

    def _act(self, fired: TriggerVerdict, outcome: GuardOutcome) -> bool:
        if self.act_later:
            self.pending = fired
            return False
        self._roll_back(fired, outcome)
        return True

    def act_pending(self, outcome: GuardOutcome) -> bool:
        """Roll back for the verdict that `step` left pending (with `act_later`); False when none is."""
        fired, self.pending = self.pending, None
        if fired is None:
            return False
        self._roll_back(fired, outcome)
        return True

    def _hold_for_the_canary(self, fired: TriggerVerdict, waited: float, outcome: GuardOutcome) -> bool:
        """Whether a firing rollback trigger is held back by the canary judges: every in-flight canary is judged
        no worse than its baseline (`not-the-cause`: an alert instead), or one is still warming up (wait a little)."""
        if not self.canaries:
            return False
        if all(w.state == "not-the-cause" for w in self.canaries):
            if _NOT_THE_CAUSE not in self._alerting:
                self._alerting.add(_NOT_THE_CAUSE)
                self._not_the_cause(fired, outcome)
            return True
        warming = [w for w in self.canaries if w.state == "warming-up"]
        return bool(warming) and waited < max(w.patience for w in warming)

    def _not_the_cause(self, fired: TriggerVerdict, outcome: GuardOutcome) -> None:
        details = [f"{w.label}: {w.detail()}" for w in self.canaries]
        why = f"trigger {fired.trigger} fires, but every canary is no worse than its baseline: not the release"
        outcome.alerts.append(fired)
        self._event("guard-alert", f"{why} ({'; '.join(details)})", None, fired)
        notify_alert(
            self.ctx,
            "not-the-cause",
            f"guard {self.ctx.env}",
            issue=f"trigger {fired.trigger} fired: {fired.detail}",
            action="none by lastgood: both versions are equally bad, so the release did not cause it",
            details=details,
        )

    def _blind(self, watch: CanaryWatch, outcome: GuardOutcome) -> None:
        why = watch.blind_message()
        outcome.blind.append(why)
        self._event("guard-alert", why, None, None)
        notify_alert(
            self.ctx,
            "canary-blind",
            f"guard {self.ctx.env}",
            issue=why,
            action="none by lastgood yet: the rollback triggers still act; look at the per-version metrics",
            details=[watch.detail()],
        )

    def _canary_verdict(self, watch: CanaryWatch) -> TriggerVerdict:
        verdict = watch.verdict
        assert verdict is not None and self.canary is not None
        return TriggerVerdict(
            trigger="canary-judge",
            state="firing",
            action="rollback",
            severity=self.canary.severity,
            value=verdict.ratio,
            breaching_periods=watch.judged,
            required_periods=0,
            detail=watch.reason(),
        )

    def _record_alerts(self, verdicts: list[TriggerVerdict], outcome: GuardOutcome) -> None:
        for verdict in verdicts:
            if verdict.state == "firing" and verdict.action == "alert" and verdict.trigger not in self._alerting:
                self._alerting.add(verdict.trigger)
                outcome.alerts.append(verdict)
                self._event("guard-alert", f"alert {verdict.trigger}: {verdict.detail}", None, verdict)
            elif verdict.state != "firing":
                self._alerting.discard(verdict.trigger)

    def _pause(self, seconds: float) -> bool:
        """Sleep in short slices so an interrupt is seen at once; True when interrupted."""
        end = self.ctx.clock.now().timestamp() + seconds
        while not self.stop.is_set():
            left = end - self.ctx.clock.now().timestamp()
            if left <= 0:
                return False
            self.ctx.clock.sleep(min(left, 0.5))
        return True

    def _roll_back(self, fired: TriggerVerdict, outcome: GuardOutcome) -> GuardOutcome:
        outcome.fired = fired
        outcome.detected_at = self.ctx.clock.now()
        if self.responder is None:
            self._event("guard-fired", f"trigger {fired.trigger} ({fired.severity}): {fired.detail}", None, fired)
            outcome.status, outcome.message = "fired", f"trigger {fired.trigger} fired; no responder to roll back"
            return outcome
        response = self.responder.respond(fired, outcome.detected_at)
        outcome.status, outcome.message = response.status, response.message
        outcome.rollback, outcome.decision = response.rollback, response.decision
        return outcome

    def _event(self, type_: str, message: str, rollback_id: str | None, verdict: TriggerVerdict | None) -> None:
        with self.ctx.session() as session:
            store.add_event(
                session,
                self.ctx.app,
                self.ctx.env,
                type_,
                message,
                self.ctx.clock.now(),
                rollback_id,
                verdict.to_dict() if verdict is not None else None,
            )
