"""Helpers shared by the kinds that restore data into a new copy (DynamoDB, RDS, Aurora).

Data lineage: a restored copy is tagged with the source it was restored from and the recorded point in time it
was restored to. A component is at a release's state when the pointer points at a copy whose lineage is that
release's (source, recorded time): the copy's name differs from the recorded name, but its data is the
release's data. Tags live on the copy itself, so a second plan (any process, any rollback) sees it.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from lastgood.aws.errors import map_aws_errors
from lastgood.config.durations import format_duration
from lastgood.errors import AwsError
from lastgood.kinds.base import Change, KindContext, State

TAG_SOURCE = "lastgood:restored-from"
TAG_AT = "lastgood:restored-to"
TAG_STEP = "lastgood:rollback-step"


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def short_token(token: str, length: int = 10) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:length]


_TOKEN_LENGTH = 10
_SUFFIX = "-restored-"


def copy_stem(base: str, max_length: int = 255, rds: bool = False) -> str:
    """What every restored copy's name starts with (before "-restored-<id>"); IAM policies use it too.

    RDS identifiers are at most 63 lowercase letters, digits and single hyphens, starting with a letter.
    """
    room = max_length - len(_SUFFIX) - _TOKEN_LENGTH
    if not rds:
        return base[:room]
    stem = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", base.lower()))
    if not stem[:1].isalpha():
        stem = "db-" + stem
    return stem[:room].rstrip("-")


def copy_name(base: str, token: str, max_length: int = 255, rds: bool = False) -> str:
    """The restored copy's name: the same for every attempt of one rollback step, new for every step."""
    return f"{copy_stem(base, max_length, rds)}{_SUFFIX}{short_token(token, _TOKEN_LENGTH)}"


ALREADY_EXISTS = ("TableAlreadyExistsException", "DBInstanceAlreadyExists", "DBClusterAlreadyExistsFault")


class CopyExists(Exception):
    """The create of a copy named from the step token was refused: the copy exists."""


@contextmanager
def creating_copy() -> Iterator[None]:
    """Around the create of a copy named from the step token. "Already exists" means an earlier attempt made it
    (its answer lost on the way, and the describe before this create not seeing it yet): raise CopyExists."""
    try:
        yield
    except AwsError as error:
        if any(code in str(error) for code in ALREADY_EXISTS):
            raise CopyExists(str(error)) from error
        raise


def lineage(source: str, at: str) -> dict[str, str]:
    return {"source": source, "at": at}


def lineage_tags(source: str, at: str, token: str) -> dict[str, str]:
    return {TAG_SOURCE: source, TAG_AT: at, TAG_STEP: token[:256]}


def copy_tags(source_tags: Mapping[str, str], lineage: Mapping[str, str], limit: int = 50) -> dict[str, str]:
    """The source's own tags (cost allocation, ownership) plus the lineage; AWS and lineage keys are not copied."""
    kept = {k: v for k, v in source_tags.items() if not k.startswith(("aws:", "lastgood:"))}
    return {**dict(list(kept.items())[: limit - len(lineage)]), **lineage}


def lineage_from_tags(tags: Mapping[str, str]) -> dict[str, str] | None:
    if TAG_SOURCE in tags and TAG_AT in tags:
        return lineage(tags[TAG_SOURCE], tags[TAG_AT])
    return None


def restored_for_target(current: State, target: State, name_key: str) -> bool:
    """Whether the pointer points at a copy restored from the target's source as of its recorded time."""
    wanted = target.get(name_key)
    return wanted is not None and current.get("restored_for") == lineage(wanted, target["recorded_at"])


def data_loss_window(current: State, target: State) -> float | None:
    """Seconds of writes the restored copy lacks: from the recorded point to the moment current was read."""
    try:
        seconds = (parse_iso(current["recorded_at"]) - parse_iso(target["recorded_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, seconds)


def restore_change(
    describe: Callable[[State], str], estimate: float, current: State, target: State, notes: list[str]
) -> Change:
    """The plan step of every restore-into-a-copy kind: slow, not destructive, with its data-loss window."""
    window = data_loss_window(current, target)
    if window is not None:
        notes = [*notes, f"writes made in the last {format_duration(window)} are not in the restored copy"]
    return Change(
        action="restore-copy",
        before=describe(current),
        after=describe(target),
        estimate_seconds=estimate,
        slow=True,
        notes=tuple(notes),
        data_loss_window_seconds=window,
    )


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_dict(tags: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in tags or []}


class StatusReporter:
    """Reports a copy's status through ctx.progress only when it changes (verify polls every few seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], str] = {}

    def report(self, ctx: KindContext, resource: str, status: str) -> None:
        key = (ctx.token, resource)
        with self._lock:
            if self._seen.get(key) == status:
                return
            self._seen[key] = status
        ctx.progress(f"{resource} is {status}")


def kms_arn(ctx: KindContext, key: str) -> str:
    """A KMS key's ARN from its id, ARN or alias (`alias/...`), so that keys named two ways compare equal."""
    with map_aws_errors(f"kms:DescribeKey {key}"):
        return str(ctx.aws.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"])


def same_key(ctx: KindContext, reported: str | None, expected: str) -> bool:
    """Whether the key a restored copy reports is the expected one (compared by ARN)."""
    if reported is None:
        return False
    if reported == expected:
        return True
    try:
        return kms_arn(ctx, reported) == kms_arn(ctx, expected)
    except AwsError as error:
        if error.retryable:
            raise
        return False
