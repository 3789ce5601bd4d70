"""CloudWatch metric math: a trigger's `expression` over its `metrics`, named by id, sent to GetMetricData as an
Expression query (CloudWatch evaluates it; lastgood only checks the ids and renames them per request).

Ids start with a lowercase letter; CloudWatch's functions (`FILL`, `IF`, `RATE`, `METRICS`, ...) are upper case,
so every lowercase word outside a quoted string is an id the expression names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import Field, ValidationInfo, field_validator

from lastgood.config.models import MetricQuery, Strict

_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")
# A quoted string (SEARCH's '...'), a number (1e3 is one token), or a word that may be an id.
_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\d[\w.]*|[A-Za-z_][A-Za-z0-9_]*""")


class MetricMath(Strict):
    """CloudWatch metric math: `expression` over the `metrics`, named by id (e.g. `100 * timeouts / invocations`)."""

    metrics: dict[str, MetricQuery] = Field(description="The metrics the expression names, by id (m1, m2, ...).")
    expression: str = Field(
        min_length=1,
        max_length=2048,
        description="A CloudWatch metric math expression over the ids in `metrics`, e.g. `100 * m1 / m2`.",
    )

    @field_validator("metrics")
    @classmethod
    def _ids(cls, value: dict[str, MetricQuery]) -> dict[str, MetricQuery]:
        if not value:
            raise ValueError("metric math needs at least one metric")
        bad = [key for key in value if not _ID.fullmatch(key)]
        if bad:
            raise ValueError(f"metric ids must start with a lowercase letter, then letters, digits or _: {bad}")
        return value

    @field_validator("expression")
    @classmethod
    def _named(cls, value: str, info: ValidationInfo) -> str:
        metrics = info.data.get("metrics")
        if metrics is None:  # the metrics were wrong: reported there
            return value
        unknown = [name for name in ids_in(value) if name not in metrics]
        if unknown:
            known = ", ".join(metrics)
            raise ValueError(f"the expression names {', '.join(unknown)}, not in metrics (its ids: {known})")
        return value


def ids_in(expression: str) -> list[str]:
    """The ids an expression names, in order, once each."""
    words = (m.group(0) for m in _TOKEN.finditer(expression))
    return list(dict.fromkeys(w for w in words if _ID.fullmatch(w)))


def rename(expression: str, names: Mapping[str, str]) -> str:
    """The expression with each id replaced (strings and functions untouched)."""
    return _TOKEN.sub(lambda m: names.get(m.group(0), m.group(0)), expression)
