"""`lastgood init`: a starter runbook from what exists in the account (a CloudFormation stack, or tagged
resources), with its components ordered (code first, data last) and comments where a person must choose.

The modules: `discover` reads the account, `template` reads a template's references, `from_stack` and
`from_tags` make draft components, `drafts` orders them, `render` writes the YAML text. The text is validated
before it is handed back: a starter that `lastgood validate` would refuse is a bug, never a file.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import parse_runbook
from lastgood.errors import BadInput
from lastgood.service.starter.discover import AwsLookups, read_stack, tagged_arns
from lastgood.service.starter.drafts import Draft, Lookups, link, order, unique_names
from lastgood.service.starter.from_stack import stack_drafts
from lastgood.service.starter.from_tags import tag_drafts
from lastgood.service.starter.render import Header, render

__all__ = ["Starter", "parse_tag", "starter_from_stack", "starter_from_tags"]


class Starter(BaseModel):
    text: str
    components: list[str]  # written as they are
    to_choose: list[str]  # written commented out: a choice is needed first
    skipped: list[str]  # found, but no kind rolls them back


def starter_from_stack(
    clients: AwsClients, stack: str, app: str | None, env: str, lookups: Lookups | None = None
) -> Starter:
    found = read_stack(clients, stack)
    drafts, skipped = stack_drafts(found, lookups or AwsLookups(clients))
    unique_names(drafts)
    link(drafts, found.resources)
    header = Header(
        _app_name(app or stack), env, clients.region, f"the stack {stack}", f"lastgood init --from-stack {stack}", stack
    )
    return _starter(header, order(drafts), skipped)


def starter_from_tags(clients: AwsClients, tag: str, app: str | None, env: str) -> Starter:
    key, value = parse_tag(tag)
    drafts, skipped = tag_drafts(tagged_arns(clients, key, value), AwsLookups(clients))
    unique_names(drafts)
    link(drafts, {})
    header = Header(
        _app_name(app or value),
        env,
        clients.region,
        f"the resources tagged {key}={value}",
        f"lastgood init --from-tags {tag}",
    )
    return _starter(header, order(drafts), skipped)


def parse_tag(tag: str) -> tuple[str, str]:
    key, sep, value = tag.partition("=")
    if not sep or not key:
        raise BadInput(f"--from-tags: expected KEY=VALUE, e.g. app=shop, got {tag!r}")
    return key, value


def _app_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if not name:
        raise BadInput(f"cannot make an app name of {text!r}: pass --app NAME")
    return name


def _starter(header: Header, drafts: list[Draft], skipped: list[str]) -> Starter:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", header.env):
        raise BadInput(f"--env: {header.env!r} is not an environment name (letters, digits, '-', '_', '.')")
    text = render(header, drafts, skipped)
    parse_runbook(text, source="the starter runbook", environ={})
    return Starter(
        text=text,
        components=[d.name for d in drafts if not d.disabled],
        to_choose=[d.name for d in drafts if d.disabled],
        skipped=skipped,
    )
