"""The component-kind interface: read the live state, compare it to a recorded one, apply, verify, IAM.

`WeightedKind` is the optional second interface of the kinds that split traffic between versions by weight
(lambda-alias, stepfunctions-alias, elbv2-listener, route53-weighted): `lastgood deploy` shifts them step by step
and the guard's canary judge compares their two versions.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeAlias, TypeVar

from lastgood.aws.clients import AwsClients
from lastgood.config.models import Component
from lastgood.domain import state as _state
from lastgood.errors import StepFailed

State: TypeAlias = _state.State
state_hash = _state.state_hash

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


class Prefetched:
    """What a rollback's read fetched for apply in the same call (an SSM parameter's recorded value), carried in
    a live state under PREFETCHED, in memory only: its repr hides it and it is not JSON, so a state carrying it
    cannot reach the ledger, a log or an output by mistake."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def __repr__(self) -> str:
        return "<prefetched>"


PREFETCHED = "_prefetched"


def without_prefetched(state: State) -> State:
    """The state as the ledger and a saved plan's fingerprint see it: without what a rollback's read prefetched."""
    return {key: value for key, value in state.items() if key != PREFETCHED} if PREFETCHED in state else state


def prefetched(state: State | None) -> dict[str, Any]:
    """What `Kind.read_for_rollback` put in `state` for apply; empty for any other state."""
    holder = (state or {}).get(PREFETCHED)
    return holder.data if isinstance(holder, Prefetched) else {}


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
    restores_data: ClassVar[bool] = False
    """Data kinds (a table, a database, a bucket's objects): the file should order them after the code
    (`depends_on` from the code components); `lastgood validate` warns when it does not."""

    @abstractmethod
    def read(self, spec: SpecT, ctx: KindContext) -> State:
        """The live state, in the shape stored in the ledger. Reads only: plan and verify call it too."""

    def read_for_rollback(self, spec: SpecT, ctx: KindContext, target: State) -> State:
        """The live state read by a rollback's plan, knowing the state it returns to. A kind may fetch in the
        same calls what its apply will need (under PREFETCHED, see `Prefetched`); apply finds it in
        `ctx.known_state`. Reads only."""
        return self.read(spec, ctx)

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


@dataclass(frozen=True)
class Split:
    """How a weighted component shares its traffic, in `lastgood deploy`'s names of its versions."""

    stable: str
    """The version taking the traffic (lambda-alias: the alias's version; the others: the most weight)."""
    candidate: str | None = None
    """A second version taking part of the traffic, if any."""
    weight: float = 0.0
    """The candidate's share of the traffic, 0 to 1."""

    @property
    def in_flight(self) -> bool:
        """A canary is in flight: a second version takes some, not all, of the traffic."""
        return self.candidate is not None and 0 < self.weight < 1


class WeightedKind(ABC, Generic[SpecT]):
    """A kind whose component splits traffic between versions by weight. A version is what the user types
    after `--version` (normalised by `resolve_version`): a Lambda version, a state machine version number, a
    target group name, a record set's SetIdentifier."""

    version_noun: ClassVar[str] = "version"
    """How messages name a version of this kind, e.g. "target group"."""

    @abstractmethod
    def resolve_version(self, spec: SpecT, ctx: KindContext, state: State, version: str) -> str:
        """`version` as the user typed it -> the name `current_split` uses; BadInput when there is no such one.
        `state` is the live state (read moments ago). Reads only."""

    @abstractmethod
    def current_split(self, spec: SpecT, state: State) -> Split:
        """Which versions take the traffic in `state`, and the second one's share."""

    @abstractmethod
    def split(self, spec: SpecT, ctx: KindContext, state: State, stable: str, candidate: str, percent: float) -> State:
        """The state with `percent` of the traffic on `candidate` and the rest on `stable` (at 100 all on the
        candidate, at 0 all on the stable one); any other version of `state` gets no traffic. Reads only."""

    def placeholders(self, spec: SpecT, state: State, version: str) -> dict[str, str]:
        """The canary queries' placeholders for `version` (besides {version} and {component}), from `state`."""
        return {}


def split_by_weight(weights: Mapping[str, float], order: Callable[[str], Any] = str) -> Split:
    """The split of a kind that weighs its versions alike: the stable one takes the most weight, the candidate
    the next most (ties: the first in `order`, e.g. the older version, is the stable one)."""
    if not weights:
        raise StepFailed("no version takes traffic: nothing to split")
    ranked = sorted(weights, key=lambda v: (-weights[v], order(v)))
    total = sum(w for w in weights.values() if w > 0)
    if len(ranked) < 2 or weights[ranked[1]] <= 0:
        return Split(ranked[0])
    return Split(ranked[0], ranked[1], weights[ranked[1]] / total)


def whole_percent(percent: float) -> int:
    """A share in whole percents for the kinds whose weights are integers; a step strictly between 0 and 100
    stays strictly between them."""
    if percent <= 0 or percent >= 100:
        return 0 if percent <= 0 else 100
    return min(max(round(percent), 1), 99)
