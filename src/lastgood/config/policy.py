"""The runbooks' judgement, in the file: severities, the decision matrix, approvals, people, escalation, KPI
targets and drills. Pure lookups; the engine and the guard consult them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from lastgood.config.durations import Duration
from lastgood.config.strict import Strict

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
Method = Literal["rollback", "restore", "planned-rollback", "fix-forward"]


def _fraction(value: Any) -> Any:
    """0.95, or '95%'. Anything else goes on to pydantic's number check, which names what it got (a null, a list:
    float() would raise TypeError, which pydantic does not turn into a problem in the file)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"expected a fraction such as 0.95 or '95%', got {value[:40]!r}") from None
    return value


Fraction = Annotated[float, BeforeValidator(_fraction), Field(ge=0, le=1)]


class DecisionRule(Strict):
    """003's matrix: a severity, and how long the release has been live, pick the method."""

    severity: Severity | None = Field(default=None, description="[default: any severity]")
    environments: list[str] | None = Field(default=None, description="[default: every environment]")
    within: Duration | None = Field(default=None, description="Applies while the release is younger than this.")
    method: Method = Field(description="What to do: roll back now, restore data, plan a rollback, or fix forward.")
    reason: str = Field(default="", description="Why; recorded with the decision.")


class ApprovalRule(Strict):
    """000's authorization matrix: a severity (and environments) need these roles to approve."""

    severity: Severity = Field(description="The severity this rule applies to.")
    environments: list[str] | None = Field(default=None, description="[default: every environment]")
    roles: list[str] = Field(default_factory=list, description="An approver must hold one of these roles.")
    count: int = Field(default=1, ge=0, description="Distinct people who must approve (0: none).")
    automation: bool = Field(default=False, description="Whether the guard may roll back alone at this severity.")


class Person(Strict):
    name: str = Field(description="The identity: LASTGOOD_USER or the OS user name.")
    roles: list[str] = Field(default_factory=list, description="The roles the approvals matrix and escalations name.")
    email: str | None = Field(default=None, description="Where escalations reach this person.")
    slack: str | None = Field(
        default=None,
        description="Slack member id (e.g. U0123ABC): named in escalations; a click on Approve / Deny in Slack by "
        "this member acts as this person.",
    )
    phone: str | None = Field(default=None, description="Named in escalations and incident reports.")


class EscalationStep(Strict):
    after: Duration = Field(description="Time since the incident started without an acknowledgement (`lastgood ack`).")
    contact: list[str] = Field(description="Roles or people to contact.")
    severity: Severity | None = Field(default=None, description="Only for rollbacks of this severity [default: any].")
    channels: list[str] = Field(
        default_factory=list,
        description="The notification channels (by `name`, or by type: slack, sns, ...) the escalation goes to "
        "[default: every channel].",
    )


class Targets(Strict):
    """000's KPIs."""

    mean_time_to_restore: Duration = Field(default=15 * 60.0, description="Mean rollback time.")
    success_rate: Fraction = Field(default=0.95, description="Rollbacks that succeed, of those that ran (95% or 0.95).")
    false_rollback_rate: Fraction = Field(
        default=0.05, description="Rollbacks reviewed unnecessary, of those that ran."
    )
    data_loss_incidents: int = Field(default=0, ge=0, description="Restores that ran with a data-loss window.")
    mean_time_to_detect: Duration | None = Field(default=None, description="From the deployment to the detection.")
    rollback_time: dict[Severity, Duration] = Field(
        default_factory=dict,
        description="Maximum rollback time per severity (003: critical: 15m, high: 1h, medium: 4h); a plan whose "
        "estimate exceeds its severity's says so, KPIs and drills count each rollback met or missed.",
    )
    rto: dict[str, Duration] = Field(
        default_factory=dict,
        description="Recovery-time objective per component kind (000: amplify-branch: 10m, lambda-alias: 5m); a "
        "component's own `rto:` wins.",
    )

    def rollback_time_for(self, severity: str | None) -> float | None:
        """The severity's maximum rollback time, when the file sets one."""
        return self.rollback_time.get(severity) if severity else None  # type: ignore[call-overload]


class Drills(Strict):
    allow_protected: bool = Field(default=False, description="Drills on protected environments (refused by default).")
    redeploy: str | None = Field(
        default=None, description="Release to re-deploy as the bad change [default: the newest release marked bad]."
    )
    command: str | None = Field(default=None, description="A shell command that makes the bad change instead.")
    guard_for: Duration = Field(default=600.0, description="How long the guard may take to catch it.")


class Policy(Strict):
    default_severity: Severity = Field(default="high", description="The severity of a rollback asked for without one.")
    decision: list[DecisionRule] = Field(
        default_factory=list,
        description="The decision matrix: severity x time since the deployment x environment -> method; the first "
        "matching rule wins [no rule matches: roll back].",
    )
    approvals: list[ApprovalRule] = Field(
        default_factory=list,
        description="The approvals matrix: severity x environment -> the roles and how many distinct people approve, "
        "and whether the guard may act alone [no rule matches: no approval].",
    )
    people: list[Person] = Field(
        default_factory=list, description="Who holds which roles, and how to reach them (email, Slack, phone)."
    )
    escalation: list[EscalationStep] = Field(
        default_factory=list, description="Whom to contact as an incident goes on unresolved."
    )
    updates: dict[Severity, Duration] = Field(
        default_factory=dict,
        description="Stakeholder update cadence per severity while a rollback is open or restored-unhealthy and "
        "not acknowledged, e.g. {critical: 15m, high: 30m}; kept by the server and `lastgood guard`.",
    )
    signed_approvals: bool = Field(
        default=False, description="Approvals on protected environments need a token signed with approval_key."
    )
    approval_key: str | None = Field(default=None, description="HMAC key for approval tokens; use ${VAR}.")
    targets: Targets = Field(
        default_factory=Targets, description="The KPI targets `lastgood kpis` and drills measure against."
    )
    drills: Drills = Field(default_factory=Drills, description="How `lastgood drill` makes its bad change and may run.")

    @model_validator(mode="after")
    def _key_when_signed(self) -> Policy:
        if self.signed_approvals and not self.approval_key:
            raise ValueError("signed_approvals needs approval_key (e.g. approval_key: ${LASTGOOD_APPROVAL_KEY})")
        return self

    def method_for(self, severity: str, age_seconds: float, env: str) -> tuple[Method, str]:
        """The first matching row of the decision matrix; without a matrix, or with no row matching, roll back
        (lastgood's default, said as such)."""
        for rule in self.decision:
            if (
                rule.severity in (None, severity)
                and (rule.environments is None or env in rule.environments)
                and (rule.within is None or age_seconds <= rule.within)
            ):
                return rule.method, rule.reason or _describe(rule)
        if not self.decision:
            return "rollback", "the file has no decision matrix (policy.decision): roll back, the default"
        return "rollback", "no decision rule matches: roll back, the default"

    def approval_for(self, severity: str, env: str) -> ApprovalRule | None:
        for rule in self.approvals:
            if rule.severity == severity and (rule.environments is None or env in rule.environments):
                return rule
        return None

    def escalation_for(self, severity: str) -> list[EscalationStep]:
        """The escalation steps that apply to a rollback of this severity, soonest first."""
        steps = [s for s in self.escalation if s.severity in (None, severity)]
        return sorted(steps, key=lambda s: s.after)

    def roles_of(self, user: str) -> set[str]:
        return {role for person in self.people if person.name == user for role in person.roles}

    def person(self, name: str) -> Person | None:
        return next((p for p in self.people if p.name == name), None)

    def person_on_slack(self, member_id: str) -> Person | None:
        """The person whose `slack:` is this Slack member id (ids are exact: U0123ABC)."""
        return next((p for p in self.people if member_id and p.slack == member_id), None)


def _describe(rule: DecisionRule) -> str:
    within = f" within {rule.within:g}s of the deployment" if rule.within is not None else ""
    return f"{rule.severity or 'any severity'}{within}: {rule.method}"
