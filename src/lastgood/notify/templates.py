"""The file's message templates (notifications.templates), rendered with the rollback's facts.

The variables are `config.comms.TEMPLATE_VARIABLES` (README: Message templates); a fact this message does not
have is None. Facts are redacted before rendering and the text after it, so a secret never renders. A template
that fails at run time (a fact that is None where the sample had a value) falls back to the 004 template, with
the error as a detail: a message still goes out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lastgood.config.comms import TEMPLATE_VARIABLES, render_template
from lastgood.notify.base import Message
from lastgood.redact import redact


def context_of(message: Message, facts: Mapping[str, Any]) -> dict[str, Any]:
    fields = {
        "event": message.event,
        "app": message.app,
        "env": message.env,
        "id": message.rollback_id,
        "issue": message.issue,
        "impact": message.impact,
        "action": message.action,
        "eta": message.eta,
        "status": message.status,
        "details": list(message.details),
    }
    return redact(dict.fromkeys(TEMPLATE_VARIABLES) | dict(facts) | fields)


def with_template(message: Message, templates: Mapping[Any, str], facts: Mapping[str, Any]) -> Message:
    """The message with its body rendered from the file's template for its kind (unchanged without one)."""
    source = templates.get(message.event)
    if source is None:
        return message
    from jinja2 import TemplateError  # only files with templates pay for it

    try:
        body = render_template(source, context_of(message, facts))
    except (TemplateError, TypeError, ValueError) as error:
        detail = f"the file's template for {message.event} did not render ({type(error).__name__}: {error})"
        return dataclasses.replace(message, details=[*message.details, redact(detail)])
    return dataclasses.replace(message, body=redact(body))
