"""The component-kind interface: read the live state, compare it to a recorded one, apply, verify, IAM."""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from lastgood.aws.clients import AwsClients
from lastgood.config.models import Component

State = dict[str, Any]
"""A component's recorded state: JSON-able, never a secret value (values are stored as hashes)."""

SpecT = TypeVar("SpecT", bound=Component)


def _no_progress(message: str) -> None:
    pass


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class KindContext:
    """What a kind may use. `token` is stable for one step of one rollback, so a start derived from it
    (a CloudFormation ClientRequestToken, a restored table's name) is safe to repeat after a crash."""

    app: str
    env: str
    aws: AwsClients
    token: str = "lastgood"
    progress: Callable[[str], None] = _no_progress
    now: Callable[[], datetime] = _utcnow
    sleep: Callable[[float], None] = time.sleep
    known_state: State | None = None
    """The state the plan read moments ago in this process (None on a resume or a retry). A kind whose write
    is naturally idempotent may use it to skip a second read; it must never skip the write because of it."""


@dataclass(frozen=True)
class Change:
    """What rolling one component back to a recorded state does."""

    action: str
    before: str
    after: str
    estimate_seconds: float
    destructive: bool = False
    notes: tuple[str, ...] = ()
    slow: bool = False
    data_loss_window_seconds: float | None = None
    """For a restore: the time between the recorded point and now, whose writes the restored copy lacks."""
    breaks_older_code: bool = False
    """Schema kinds: what is undone is not backward compatible, so the older code cannot run without it."""


@dataclass(frozen=True)
class IamStatement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    purpose: str = ""


@dataclass(frozen=True)
class IamScope:
    region: str
    account: str = "*"
    partition: str = "aws"


@dataclass
class ApplyResult:
    detail: str
    changed: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    observed: State | None = None
    """The component's state as AWS reported it in answer to the write (or as apply read it): when it already
    matches the target, the engine counts the step verified without another read."""


def value_hash(value: str) -> str:
    """A stable fingerprint of a value that may be secret; the value itself is never stored."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:32]


def state_hash(state: State) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


ReadinessStatus = Literal["ok", "at-risk", "impossible"]


@dataclass(frozen=True)
class ReadinessCheck:
    """Whether a rollback to a recorded state is still possible: ok, at-risk (possible now, may soon not be),
    impossible (what the rollback needs is gone)."""

    status: ReadinessStatus
    detail: str


class Kind(ABC, Generic[SpecT]):
    """One kind of component. Subclasses are registered in lastgood.kinds.registry."""

    name: ClassVar[str]
    spec_model: ClassVar[type[Component]]
    estimate_seconds: ClassVar[float] = 2.0
    verify_timeout_seconds: ClassVar[float] = 30.0
    verify_interval_seconds: ClassVar[float] = 0.5
    destructive: ClassVar[bool] = False
    slow: ClassVar[bool] = False
    runs_after_code: ClassVar[bool] = False
    """Schema kinds: rolled back after every other component of the plan (application first, then schema)."""

    @abstractmethod
    def read(self, spec: SpecT, ctx: KindContext) -> State:
        """The live state, in the shape stored in the ledger. Reads only: plan and verify call it too."""

    def record(self, spec: SpecT, ctx: KindContext) -> State:
        """The state stored when a release is recorded. Kinds that take a snapshot or an on-demand backup at
        release time (when the file asks) override this; `read` must never have such side effects."""
        return self.read(spec, ctx)

    @abstractmethod
    def differences(self, spec: SpecT, current: State, target: State) -> list[str]:
        """Human-readable differences between two states; empty when current is already the target."""

    @abstractmethod
    def apply(self, spec: SpecT, ctx: KindContext, target: State) -> ApplyResult:
        """Bring the component to target. Safe to repeat: reads first and does nothing if already there."""

    @abstractmethod
    def describe(self, state: State) -> str:
        """One short line for plans and tables."""

    @abstractmethod
    def iam_statements(self, spec: SpecT, scope: IamScope) -> list[IamStatement]:
        """The least-privilege IAM statements record, plan, apply and verify need."""

    def plan(self, spec: SpecT, current: State, target: State) -> Change | None:
        if not self.differences(spec, current, target):
            return None
        return Change(
            action=self.action_name(current, target),
            before=self.describe(current),
            after=self.describe(target),
            estimate_seconds=self.estimate_seconds,
            destructive=self.destructive,
            slow=self.slow,
        )

    def action_name(self, current: State, target: State) -> str:
        return "restore"

    def verify(self, spec: SpecT, ctx: KindContext, target: State) -> list[str]:
        """What still differs from target; polled after apply until empty or verify_timeout_seconds."""
        return self.differences(spec, self.read(spec, ctx), target)

    def warnings(self, spec: SpecT, state: State) -> list[str]:
        """Things to tell the user when a release is recorded (e.g. point-in-time recovery is off)."""
        return []

    def readiness(self, spec: SpecT, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        """Whether rolling back to `state` is still possible (what it needs still exists). Reads only."""
        return [ReadinessCheck("ok", "not checked for this kind")]

    # The emergency stop (`lastgood stop ENV`): kinds that can cut traffic override these three.

    def takes_part_in_stop(self, spec: SpecT) -> bool:
        return False

    def stop(self, spec: SpecT, ctx: KindContext) -> State:
        """Cut traffic; return what `release_stop` needs to undo it exactly. Safe to repeat."""
        raise NotImplementedError(f"{self.name} has no emergency stop")

    def release_stop(self, spec: SpecT, ctx: KindContext, saved: State) -> ApplyResult:
        raise NotImplementedError(f"{self.name} has no emergency stop")
