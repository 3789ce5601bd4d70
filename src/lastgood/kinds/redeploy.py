"""The redeploy step: a component that must pick up its dependencies' rollback (CIRA: the API stack after the
database endpoint in Secrets Manager moved) says `redeploy_after: [db-secret]`.

When a plan changes any component listed there, it adds the step `<component>:redeploy` (a name no component
can have: ':' is not allowed in names), waiting for those steps and for the component's own. The step runs
`redeploy_command` if the file gives one, or else the kind's own redeploy action (a `Redeployable` kind, e.g.
cloudformation-stack: UpdateStack with the same template and parameters, which resolves SSM parameter types
again). A component whose kind has no such action must give a command; the loader says so (exit 2).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic

from lastgood.config.durations import format_duration
from lastgood.config.models import Component
from lastgood.errors import StepFailed
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, SpecT, State

SUFFIX = ":redeploy"
COMMAND_TIMEOUT_SECONDS = 600.0


class Redeployable(ABC, Generic[SpecT]):
    """A kind with a redeploy action of its own."""

    redeploy_estimate_seconds: ClassVar[float] = 120.0
    redeploy_description: ClassVar[str] = "redeploy"
    """What the plan says the action does, e.g. "UpdateStack with the same template and parameters"."""

    @abstractmethod
    def redeploy(self, spec: SpecT, ctx: KindContext) -> ApplyResult:
        """Start the redeploy; safe to repeat (a start derived from ctx.token, or one already under way kept)."""

    @abstractmethod
    def redeploy_pending(self, spec: SpecT, ctx: KindContext) -> list[str]:
        """What is still under way (empty: done); raises StepFailed when the redeploy failed. Reads only."""


def step_name(component: str) -> str:
    return component + SUFFIX


def component_of(step: str) -> str:
    """The component a step belongs to (a redeploy step's component, or the step's own name)."""
    return step.removesuffix(SUFFIX)


def is_redeploy(step: str) -> bool:
    return step.endswith(SUFFIX)


def can_redeploy(spec: Component, kind: Kind[Any]) -> bool:
    return spec.redeploy_command is not None or isinstance(kind, Redeployable)


@dataclass(frozen=True)
class PlannedRedeploy:
    step: str
    kind: str
    change: Change
    target: State
    waits_for: list[str]


def plan_redeploys(
    specs: Iterable[Component], kind_of: Callable[[Component], Kind[Any]], changed: set[str]
) -> list[PlannedRedeploy]:
    """A redeploy step for each component with a `redeploy_after` component among the changed ones."""
    out = []
    for spec in specs:
        after = sorted(set(spec.redeploy_after) & changed)
        if not after:
            continue
        kind = kind_of(spec)
        how, estimate = _how(spec, kind)
        change = Change(
            action="redeploy",
            before=f"after {', '.join(after)} changed",
            after=how,
            estimate_seconds=estimate,
            notes=(f"picks up the rollback of {', '.join(after)}",),
            slow=estimate >= 60,
        )
        waits = sorted(set(after) | ({spec.name} & changed))
        out.append(PlannedRedeploy(step_name(spec.name), spec.kind, change, {"after": after}, waits))
    return out


def _how(spec: Component, kind: Kind[Any]) -> tuple[str, float]:
    if spec.redeploy_command is not None:
        return "runs redeploy_command", 30.0
    assert isinstance(kind, Redeployable)
    return kind.redeploy_description, kind.redeploy_estimate_seconds


class RedeployStep(Kind[Component]):
    """What the executor runs for a redeploy step: apply starts the redeploy, verify waits for it."""

    name = "redeploy"
    spec_model = Component
    verify_timeout_seconds = 3600.0
    verify_interval_seconds = 5.0

    def __init__(self, kind: Kind[Any]) -> None:
        self.kind = kind

    def apply(self, spec: Component, ctx: KindContext, target: State) -> ApplyResult:
        if spec.redeploy_command is None:
            assert isinstance(self.kind, Redeployable)
            return self.kind.redeploy(spec, ctx)
        from lastgood.kinds.command import run_shell  # the command kind's runner: only a redeploy_command needs it

        env = {"LASTGOOD_ENV": ctx.env, "LASTGOOD_APP": ctx.app, "LASTGOOD_STEP": ctx.token}
        ran = run_shell(spec.redeploy_command, _Settings(), env, "redeploy")
        if ran.code != 0:
            tail = ran.output[-2000:].strip() or "(none)"
            raise StepFailed(f"redeploy command exited {ran.code}; last output:\n{tail}")
        return ApplyResult(f"redeploy command exited 0 after {format_duration(ran.seconds)}", observed=target)

    def verify(self, spec: Component, ctx: KindContext, target: State) -> list[str]:
        if spec.redeploy_command is not None:
            return []  # the command has finished when it exits
        assert isinstance(self.kind, Redeployable)
        return self.kind.redeploy_pending(spec, ctx)

    def differences(self, spec: Component, current: State, target: State) -> list[str]:
        return []

    def read(self, spec: Component, ctx: KindContext) -> State:
        raise NotImplementedError("a redeploy step has no state of its own")

    def describe(self, state: State) -> str:
        return "redeploy"

    def iam_statements(self, spec: Component, scope: IamScope) -> list[IamStatement]:
        return []


class _Settings:
    cwd: str | None = None
    timeout: float = COMMAND_TIMEOUT_SECONDS

    @property
    def env(self) -> dict[str, str]:
        return {}
