"""SQLAlchemy tables. Changes here need a migration in migrations/versions (alembic revision --autogenerate)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite keeps no zone, so it is added back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # PostgreSQL answers in the session's TimeZone, which need not be UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime()}  # noqa: RUF012


class EnvironmentRow(Base):
    __tablename__ = "environments"
    app: Mapped[str] = mapped_column(String(128), primary_key=True)
    env: Mapped[str] = mapped_column(String(128), primary_key=True)
    live_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))


class ReleaseRow(Base):
    __tablename__ = "releases"
    # (app, env, id): an environment's newest releases, read without sorting them all
    __table_args__ = (
        UniqueConstraint("app", "env", "label", name="uq_release_label"),
        Index("ix_releases_app_env_id", "app", "env", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(256))
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(256))
    bad: Mapped[bool] = mapped_column(default=False)
    bad_reason: Mapped[str | None] = mapped_column(Text)
    marked_bad_at: Mapped[datetime | None]
    components: Mapped[list[ReleaseComponentRow]] = relationship(
        back_populates="release", cascade="all, delete-orphan", order_by="ReleaseComponentRow.id"
    )


class ReleaseComponentRow(Base):
    __tablename__ = "release_components"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    component: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(64))
    state: Mapped[dict[str, Any]]
    state_hash: Mapped[str] = mapped_column(String(64))
    release: Mapped[ReleaseRow] = relationship(back_populates="components")


class RollbackRow(Base):
    __tablename__ = "rollbacks"
    __table_args__ = (
        Index("ix_rollbacks_app_env_created", "app", "env", "created_at"),  # an environment's newest
        Index("ix_rollbacks_app_created", "app", "created_at"),  # the KPIs' window of every environment
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(128))
    from_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    to_release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    status: Mapped[str] = mapped_column(String(32))
    partial: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # The decision: severity x time since deployment -> method (policy.decision), and who must approve.
    severity: Mapped[str | None] = mapped_column(String(16))
    method: Mapped[str | None] = mapped_column(String(32))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    approvals_needed: Mapped[int] = mapped_column(default=0, server_default="0")
    approver_roles: Mapped[list[Any] | None] = mapped_column(JSON)
    # The incident's clock: when the bad release was detected, decided on, approved, started.
    detected_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    trigger: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the values that caused it
    drill: Mapped[bool] = mapped_column(default=False, server_default=false())
    unnecessary: Mapped[bool | None] = mapped_column(default=None)  # set by rollback-review
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(256))
    steps: Mapped[list[StepRow]] = relationship(
        back_populates="rollback", cascade="all, delete-orphan", order_by="StepRow.position"
    )


class StepRow(Base):
    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("rollback_id", "component", name="uq_step_component"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollback_id: Mapped[str] = mapped_column(ForeignKey("rollbacks.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    component: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    target: Mapped[dict[str, Any]]
    waits_for: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    detail: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a kind's captured output, row counts, ...
    # Restores: the writes the restored copy will not have.
    data_loss_window_seconds: Mapped[float | None] = mapped_column(Float)
    rollback: Mapped[RollbackRow] = relationship(back_populates="steps")


class EventRow(Base):
    __tablename__ = "events"
    # (app, id): the newest entries of one app (the audit log of a ledger that several apps share)
    __table_args__ = (Index("ix_events_app_env", "app", "env"), Index("ix_events_app_id", "app", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(128))
    rollback_id: Mapped[str | None] = mapped_column(String(32), index=True)
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    # The audit chain: each entry's hash covers the one before, so an edit or a deletion shows.
    actor: Mapped[str] = mapped_column(String(256), default="")
    prev_hash: Mapped[str] = mapped_column(String(64), default="")
    hash: Mapped[str] = mapped_column(String(64), default="")


class ChainHeadRow(Base):
    """The newest audit entry's hash, in one row: appends lock it, and deleting the newest entries shows."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64), default="")


class ApprovalRow(Base):
    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollback_id: Mapped[str] = mapped_column(ForeignKey("rollbacks.id", ondelete="CASCADE"), index=True)
    who: Mapped[str] = mapped_column(String(256))
    decision: Mapped[str] = mapped_column(String(16))  # approve | deny
    roles: Mapped[list[Any]]
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    signed: Mapped[bool] = mapped_column(default=False)


class DrillRow(Base):
    __tablename__ = "drills"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(32))  # running | passed | failed
    rollback_id: Mapped[str | None] = mapped_column(String(32))
    detect_seconds: Mapped[float | None]
    restore_seconds: Mapped[float | None]
    targets: Mapped[dict[str, Any]]
    notes: Mapped[str] = mapped_column(Text, default="")


class EmergencyStopRow(Base):
    """`lastgood stop`: what each component was before traffic was cut, so `--release` undoes it exactly."""

    __tablename__ = "emergency_stops"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))  # active | released
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(256))
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(256))
    saved: Mapped[dict[str, Any]]


class DeploymentRow(Base):
    """`lastgood deploy`: a progressive shift of one component, and a person's promote/abort request for it."""

    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_app_env", "app", "env"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(128))
    component: Mapped[str] = mapped_column(String(256))
    from_version: Mapped[str] = mapped_column(String(128))
    to_version: Mapped[str] = mapped_column(String(128))
    release_label: Mapped[str] = mapped_column(String(256))
    previous_release: Mapped[str | None] = mapped_column(String(256))
    steps: Mapped[list[Any]]  # percentages, e.g. [10, 50, 100]
    current_step: Mapped[int] = mapped_column(default=-1)  # index into steps; -1 before the first shift
    weight: Mapped[float] = mapped_column(Float, default=0.0)  # the share of traffic on to_version now
    pause_seconds: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32))  # running | promoted | aborted | failed
    requested: Mapped[str | None] = mapped_column(String(16))  # promote | abort | pause, by a person from elsewhere
    requested_by: Mapped[str | None] = mapped_column(String(256))
    started_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rollback_id: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    decisions: Mapped[list[Any]]  # one per judged step: the verdicts and their values


class HoldRow(Base):
    """Who holds an environment: one operation (rollback, deploy, stop, drill) at a time, across processes and
    machines. The row is also the lease of the running operation: its owner renews `expires_at`; once that has
    passed anyone may take the operation over."""

    __tablename__ = "holds"
    app: Mapped[str] = mapped_column(String(128), primary_key=True)
    env: Mapped[str] = mapped_column(String(128), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))  # rollback | deploy | stop | drill
    subject: Mapped[str] = mapped_column(String(64))  # the rollback, deployment, stop or drill id
    actor: Mapped[str] = mapped_column(String(256))
    via: Mapped[str] = mapped_column(String(32))  # cli | guard | api | worker | ...
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int]
    token: Mapped[str] = mapped_column(String(64))  # this claim; a takeover gets a new one
    since: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class UserRow(Base):
    """A person or a program the server lets in; `role` is what they may do through it (viewer < operator <
    approver < admin). Approvals still need the file's roles of the person with this name (`policy.people`)."""

    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())


class ApiTokenRow(Base):
    """An API token: only its SHA-256 is stored; `id` is the public part printed with it (lg_<id>_<secret>)."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    label: Mapped[str] = mapped_column(String(256), default="")


class WebSessionRow(Base):
    """A browser's sign-in: the cookie carries the session's secret, only its SHA-256 is stored; `csrf` is
    the token every form and every unsafe request from the page must echo."""

    __tablename__ = "web_sessions"
    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class CanaryJudgeRow(Base):
    """The canary judge of one canary (component, canary version, baseline version): its whole state, so a
    restarted guard or deploy continues the same test, and a guard and a deploy share it. `version` is
    compared on every save: whoever saves second reloads instead of overwriting."""

    __tablename__ = "canary_judges"
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    app: Mapped[str] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(128))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    next_start: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class GuardPeriodRow(Base):
    """One guard period of one watched release, claimed by the process that judges it: the primary key is what
    makes each period judged once however many workers look (the second claim meets it and does nothing)."""

    __tablename__ = "guard_periods"
    app: Mapped[str] = mapped_column(String(128), primary_key=True)
    env: Mapped[str] = mapped_column(String(128), primary_key=True)
    release_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_end: Mapped[datetime] = mapped_column(primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(256))
    claimed_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(64))


class GuardWatchRow(Base):
    """An environment's guard as its last period left it (`GuardHealth` as JSON): what every replica shows."""

    __tablename__ = "guard_watches"
    app: Mapped[str] = mapped_column(String(128), primary_key=True)
    env: Mapped[str] = mapped_column(String(128), primary_key=True)
    release_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    health: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class EscalationRow(Base):
    """One escalation step, stakeholder update or acknowledgement of one rollback, claimed once: the primary key
    (rollback, key) makes each step sent once however many workers or guards look (a second claim meets it).
    `key`: `escalation:N` (the file's Nth step), `update:N` (the Nth update), or `ack` (who acknowledged)."""

    __tablename__ = "escalations"
    rollback_id: Mapped[str] = mapped_column(ForeignKey("rollbacks.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    app: Mapped[str] = mapped_column(String(128))
    env: Mapped[str] = mapped_column(String(128))
    claimed_by: Mapped[str] = mapped_column(String(256))
    claimed_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
