"""Starting, running and resuming a deployment, holding the environment for the whole run.

`Deployer.deploy` claims the environment ("deploy", the deployment's id), starts the deployment and runs it in
one hold, so a rollback or another deployment is refused while it runs; its own abort's rollback runs inside
that hold. Each step: shift, then watch (`watch.StepWatch`); a rollback trigger or the canary judge aborts,
every step healthy promotes. Setting `stop` (Ctrl-C, SIGTERM) pauses: no new shift, the row `paused`,
`resume` goes on from the current step. A process that dies stops renewing its lease; once it expires,
`resume` takes the deployment over.
"""

from __future__ import annotations

import threading

from lastgood.domain.states import DeploymentStatus
from lastgood.engine.deploy import finish, rows
from lastgood.engine.deploy.listener import DeployListener, QuietDeployListener
from lastgood.engine.deploy.models import Deployment, DeployResult
from lastgood.engine.deploy.shift import shift, weighted
from lastgood.engine.deploy.start import DeployRequest, check_component, start
from lastgood.engine.executor import Listener
from lastgood.errors import LastgoodError, LeaseLost, Refused
from lastgood.guard.canary import CanaryWatch, feed_for, judge_key
from lastgood.guard.judges import LedgerJudgeStore
from lastgood.guard.loop import Guard
from lastgood.judge.base import TriggerVerdict
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import Lease, hold
from lastgood.service.deploy.watch import ABORT, ELSEWHERE, HEALTHY, PAUSE, PROMOTE, StepWatch
from lastgood.sources.base import MetricSource
from lastgood.sources.prometheus import PrometheusSource


class _GuardAdapter:
    """Hands the guard's verdicts to the deployment's listener."""

    def __init__(self, listener: DeployListener) -> None:
        self.listener = listener

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        self.listener.evaluated(verdicts)

    def rollback_started(self, rollback_id: str, verdict: TriggerVerdict) -> None:
        pass


class Deployer:
    def __init__(
        self,
        ctx: EnvContext,
        source: MetricSource,
        listener: DeployListener | None = None,
        rollback_listener: Listener | None = None,
        stop: threading.Event | None = None,
        wait: float | None = None,
    ) -> None:
        """`stop`: set it (a signal handler) to pause; `wait`: how long to queue for the environment."""
        self.ctx = ctx
        self.source = source
        self.listener: DeployListener = listener or QuietDeployListener()
        self.rollback_listener = rollback_listener
        self.stop = stop or threading.Event()
        self.wait = wait
        self.guard = Guard(ctx, source, listener=_GuardAdapter(self.listener))
        self.canary = ctx.runbook.canary_for(ctx.env)
        self.canary_watch: CanaryWatch | None = None

    def check(self, ask: DeployRequest) -> None:
        """Before anyone is asked: BadInput when the component cannot be deployed (nothing changed)."""
        check_component(self.ctx, ask.component)

    def deploy(self, ask: DeployRequest, deployment_id: str | None = None) -> DeployResult:
        """Start and run in one hold of the environment; `deployment_id`: one the caller chose (`rows.new_id`)."""
        check_component(self.ctx, ask.component)
        deployment_id = deployment_id or rows.new_id()
        with hold(self.ctx, "deploy", deployment_id, self.wait) as lease:
            deployment = start(self.ctx, deployment_id, ask, self.listener)
            self.listener.message(self._started(deployment))
            return self._run(deployment.id, lease)

    def start(self, ask: DeployRequest) -> Deployment:
        """Only start (holding the environment meanwhile); `run` goes on."""
        check_component(self.ctx, ask.component)
        deployment_id = rows.new_id()
        with hold(self.ctx, "deploy", deployment_id, self.wait):
            return start(self.ctx, deployment_id, ask, self.listener)

    def run(self, deployment_id: str) -> DeployResult:
        with hold(self.ctx, "deploy", deployment_id, self.wait) as lease:
            return self._run(deployment_id, lease)

    def resume(self, deployment_id: str) -> DeployResult:
        """A paused deployment, or one whose process died, goes on from its current step (refused, with the
        owner named, while the owner's lease is live)."""
        deployment = rows.get(self.ctx, deployment_id)
        if deployment.status not in (DeploymentStatus.RUNNING, DeploymentStatus.PAUSED):
            raise Refused(f"deployment {deployment.id} is {deployment.status}; nothing to resume")
        with hold(self.ctx, "deploy", deployment_id, self.wait) as lease:
            took_over = lease.took_over
            owner = f"{took_over['actor']} (pid {took_over['pid']} on {took_over['host']})" if took_over else None
            finish.resume(self.ctx, deployment_id, lease, owner)
            self.listener.message(f"resuming {deployment_id} at step {max(deployment.current_step, 0) + 1}")
            return self._run(deployment_id, lease)

    def _started(self, deployment: Deployment) -> str:
        return (
            f"deployment {deployment.id}: {deployment.component} version {deployment.from_version} -> "
            f"{deployment.to_version}, release {deployment.release} recorded; {len(self.guard.triggers)} triggers\n"
            f"  promote now: lastgood promote {deployment.env} -c {deployment.component}    "
            f"abort: lastgood abort {deployment.env} -c {deployment.component}    pause: Ctrl-C"
        )

    def _judged_for(self, pause: float) -> float:
        longest = max((t.for_ + t.period for t in self.guard.triggers), default=0.0)
        if self.canary is not None:  # the judge needs its warmup and one period more, after a period to settle
            longest = max(longest, (self.canary.warmup_intervals + 3) * self.canary.period)
        if self.guard.triggers and longest > pause:
            self.listener.message(
                f"each step is judged for {longest:g}s, not {pause:g}s: "
                "every trigger needs one full window of data after the shift"
            )
        return max(pause, longest)

    def _run(self, deployment_id: str, lease: Lease) -> DeployResult:
        deployment = rows.get(self.ctx, deployment_id)
        judged_for = self._judged_for(deployment.pause_seconds)
        try:
            return self._steps(deployment, judged_for, lease)
        except LeaseLost:
            raise
        except LastgoodError as error:
            # The component may be part-way: pause, so that `--resume`, `promote` or `abort` can finish it.
            if rows.get(self.ctx, deployment_id).status == DeploymentStatus.RUNNING:
                finish.pause(self.ctx, deployment_id, f"stopped by an error: {error}", lease, self.listener)
            raise

    def _steps(self, deployment: Deployment, judged_for: float, lease: Lease) -> DeployResult:
        # A resumed deployment shifts its current step again (idempotent) and watches it from the start.
        for index in range(max(deployment.current_step, 0), len(deployment.steps)):
            if self.stop.is_set() or rows.get(self.ctx, deployment.id).requested == PAUSE:
                return self._end(deployment.id, PAUSE, lease)
            percent = deployment.steps[index]
            if percent >= 100:
                break
            deployment = shift(self.ctx, deployment, index, percent, lease, self.listener)
            if self.canary is not None and self.canary_watch is None:
                self.canary_watch = self._canary_watch(deployment)
            watch = StepWatch(self.ctx, self.guard, self.canary_watch, self.listener, lease, self.stop)
            outcome = watch.run(deployment.id, index, percent, judged_for)
            if outcome != HEALTHY:
                return self._end(deployment.id, outcome, lease)
        return finish.promote(self.ctx, rows.get(self.ctx, deployment.id), "all steps healthy", lease, self.listener)

    def _end(self, deployment_id: str, outcome: str, lease: Lease) -> DeployResult:
        deployment = rows.get(self.ctx, deployment_id)
        if outcome == ELSEWHERE:
            return DeployResult.of_deployment(deployment)
        if outcome == PAUSE:
            asked = deployment.requested == PAUSE and not self.stop.is_set()
            why = f"paused by {deployment.requested_by}" if asked else "interrupted"
            return finish.pause(self.ctx, deployment_id, why, lease, self.listener)
        if outcome == PROMOTE:
            why = f"promoted by {deployment.requested_by}"
            return finish.promote(self.ctx, deployment, why, lease, self.listener)
        if outcome == ABORT:
            why = f"aborted by {deployment.requested_by}"
            return finish.abort(self.ctx, deployment, why, lease, self.listener, self.rollback_listener)
        deployment = deployment.model_copy(update={"requested_by": "lastgood-deploy"})
        return finish.abort(self.ctx, deployment, outcome, lease, self.listener, self.rollback_listener)

    def _canary_watch(self, deployment: Deployment) -> CanaryWatch:
        assert self.canary is not None
        spec = self.ctx.components([deployment.component])[0]
        state = self.ctx.kind_of(spec).read(spec, self.ctx.kind_context)
        source = self.source if self.canary.source_type == "cloudwatch" else PrometheusSource()
        versions = (deployment.to_version, deployment.from_version)
        feed = feed_for(self.canary, weighted(spec), spec, state, versions, source, self.ctx.clock.now())
        key = judge_key(self.ctx.app, self.ctx.env, spec.name, *versions, deployment.id)
        return CanaryWatch(self.canary, feed, store=LedgerJudgeStore(self.ctx), key=key)
