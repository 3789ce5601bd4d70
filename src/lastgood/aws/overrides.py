"""The command line's --profile, --region and --endpoint-url: they win over the file's `aws:` settings.

As with the AWS CLI, a flag is the most specific thing a person can say, so it beats the runbook's per-environment
settings, which beat AWS_* variables and the shared config files (botocore's own order below that).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lastgood.config.models import AwsSettings


@dataclass(frozen=True)
class AwsOverrides:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None


_lock = threading.Lock()
_current = AwsOverrides()


def set_overrides(overrides: AwsOverrides) -> None:
    """Called once per command by the CLI's root callback (each call replaces the last)."""
    global _current
    with _lock:
        _current = overrides


def apply_overrides(settings: AwsSettings) -> AwsSettings:
    with _lock:
        current = _current
    update = {k: v for k, v in vars(current).items() if v is not None}
    return settings.model_copy(update=update) if update else settings
