"""People and words as data (issue 15): the file's checklists, message templates and post-rollback actions.

A checklist item is ticked automatically when its `auto:` names a fact the ledger proves (`AUTO_FACTS`; the
report evaluates them), or by hand (`lastgood check ROLLBACK_ID ITEM`). Message templates are Jinja2 in a
sandbox with StrictUndefined; each is rendered against `SAMPLE_FACTS` when the file loads, so a typo is exit 2
at `validate`, not a silent message at 3 a.m.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from lastgood.config.strict import Strict

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

# Facts the ledger can prove, by name; the report holds how each is read (report/checklist.py FACT_CHECKS).
# Extensible: a part that records a new fact registers its name here and its check there.
AUTO_FACTS: dict[str, str] = {
    "issue-confirmed": "a trigger's values or a reason were recorded",
    "severity-assessed": "a severity was recorded",
    "method-decided": "the decision matrix's method was recorded",
    "approval-granted": "the approvals the severity needs were given (or none were needed)",
    "release-recorded": "the release rolled back from was recorded in the ledger",
    "target-identified": "the target release is recorded and not marked bad",
    "backup-available": "each database restore has a backup or point-in-time recovery at the target",
    "order-kept": "dependents rolled back before what they depend on",
    "progress-recorded": "every step that started recorded its outcome",
    "no-errors": "no step ended in error",
    "components-verified": "every component read back at its recorded state",
    "rollback-succeeded": "the rollback succeeded",
    "data-verified": "the data components' checks passed",
    "notified": "a notification was sent in this phase (before the start; after the end for post items)",
    "reviewed": "the rollback was reviewed (lastgood review)",
    "validation-passed": "every check of the environment's validate: block passed after the restore",
}


Phase = Literal["pre", "during", "post"]
PHASES: tuple[Phase, ...] = ("pre", "during", "post")


def register_fact(name: str, description: str) -> None:
    """A new fact `auto:` may name (e.g. validation-passed, once post-rollback validation records it)."""
    AUTO_FACTS[name] = description


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "item"


def _item_shorthand(value: Any) -> Any:
    return {"item": value} if isinstance(value, str) else value


class ChecklistEntry(Strict):
    """One item: its text, an id for `lastgood check` [default: the text as a slug], and how it is ticked."""

    item: str = Field(min_length=1, description="What a person does or checks.")
    id: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9-]*$", description="The name `lastgood check ID ITEM` takes."
    )
    auto: str | None = Field(
        default=None, description="A fact the ledger proves, ticking the item by itself (see AUTO_FACTS)."
    )

    @field_validator("auto")
    @classmethod
    def _known_fact(cls, value: str | None) -> str | None:
        if value is not None and value not in AUTO_FACTS:
            raise ValueError(f"unknown fact {value!r}: one of {', '.join(sorted(AUTO_FACTS))}")
        return value

    @property
    def key(self) -> str:
        return self.id or slug(self.item)


Entry = Annotated[ChecklistEntry, BeforeValidator(_item_shorthand)]


class Checklists(Strict):
    """004's pre / during / post lists; an item is text, or {item, id, auto}."""

    pre: list[Entry] = Field(default_factory=list, description="Before the rollback.")
    during: list[Entry] = Field(default_factory=list, description="While it runs.")
    post: list[Entry] = Field(default_factory=list, description="After it.")

    def entries(self) -> list[tuple[Phase, ChecklistEntry]]:
        return [(phase, e) for phase in PHASES for e in getattr(self, phase)]

    def find(self, key: str) -> tuple[Phase, ChecklistEntry] | None:
        return next(((p, e) for p, e in self.entries() if e.key == key), None)

    @model_validator(mode="after")
    def _unique(self) -> Checklists:
        keys = [e.key for _p, e in self.entries()]
        doubles = sorted({k for k in keys if keys.count(k) > 1})
        if doubles:
            raise ValueError(f"item ids must be unique (give one an id:): {', '.join(doubles)}")
        return self


class PostAction(Strict):
    """003's post-rollback actions, listed in the report under their horizon."""

    action: str = Field(min_length=1, description="What to do after the rollback.")
    when: Literal["immediate", "short-term", "long-term"] = Field(
        default="short-term", description="immediate (0-1 h), short-term (1-24 h) or long-term (1-7 days)."
    )
    owner: str | None = Field(default=None, description="A role or person.")


# --- message templates -----------------------------------------------------------------------------------------

MessageKind = Literal[
    "rollback-started",
    "approval-needed",
    "step-succeeded",
    "step-failed",
    "status-update",
    "rollback-succeeded",
    "rollback-failed",
    "rollback-interrupted",
    "not-the-cause",
    "canary-blind",
]
MESSAGE_KINDS: tuple[str, ...] = get_args(MessageKind)

# The variables a template sees: the rollback's facts, then the message's own fields.
SAMPLE_FACTS: dict[str, Any] = {
    "event": "rollback-started",
    "id": "rb-0123456789",
    "app": "shop",
    "env": "prod",
    "from_release": "v42",
    "to_release": "v41",
    "reason": "5XX rate above 5% for 5 minutes",
    "severity": "high",
    "method": "rollback",
    "requested_by": "lastgood-guard",
    "drill": False,
    "approvals_needed": 1,
    "approver_roles": ["lead"],
    "steps_done": 1,
    "steps_total": 3,
    "failed": {},
    "not_started": ["database"],
    "error": None,
    "elapsed_seconds": 120.0,
    "estimate_seconds": 600.0,
    "trigger": {"trigger": "errors", "value": 7.5},
    "issue": "high: 5XX rate above 5% for 5 minutes",
    "impact": "users of shop in prod may be affected",
    "action": "rolling back from v42 to v41",
    "eta": "about 8m (estimate 10m)",
    "status": "In Progress (1 of 3 steps done)",
    "details": ["requested by lastgood-guard"],
}
TEMPLATE_VARIABLES: tuple[str, ...] = tuple(SAMPLE_FACTS)


def template_environment() -> SandboxedEnvironment:
    """Sandboxed (no attribute escapes), strict (an unknown name is an error), text (no HTML escaping).
    Jinja2 is imported here: only files with templates pay for it."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def render_template(source: str, context: dict[str, Any]) -> str:
    return template_environment().from_string(source).render(**context)


def check_template(source: str) -> str:
    """A template that renders against the sample facts (StrictUndefined: an unknown name fails here)."""
    from jinja2 import TemplateError

    try:
        render_template(source, SAMPLE_FACTS)
    except TemplateError as error:
        lineno = getattr(error, "lineno", None)
        line = f" (line {lineno})" if lineno else ""
        raise ValueError(f"the template does not render{line}: {error}") from None
    return source


Template = Annotated[str, AfterValidator(check_template)]
