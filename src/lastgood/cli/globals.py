"""The options every command takes before its name: --profile, --region, --endpoint-url, --debug.

`--debug` sends boto3's, botocore's and lastgood's logs to stderr. botocore logs request and response bodies,
so every line goes through `redact` (the secrets registered so far) and through `mask_secret_fields`, which
masks the fields AWS uses for secret values before lastgood has seen them (a SecureString read is logged
before the kind that asked for it gets the answer).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Annotated

import typer
from pydantic import ValidationError

from lastgood.aws.overrides import AwsOverrides, set_overrides
from lastgood.config.models import AwsSettings
from lastgood.config.urls import check_endpoint_url
from lastgood.errors import BadInput
from lastgood.redact import MASK, RedactingStream, redact, register_secret

ProfileOption = Annotated[
    str | None, typer.Option("--profile", help="AWS profile for every environment [default: the file's, $AWS_PROFILE]")
]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="AWS region for every environment [default: the file's, $AWS_REGION]")
]
EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="AWS endpoint for every service [default: the file's, $AWS_ENDPOINT_URL]"),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="boto3's and lastgood's logs on stderr, secrets masked")]

_SECRET_FIELD = re.compile(
    r"""(?P<key>(?P<q>["'])(?:Value|SecretString|SecretBinary|Password|MasterUserPassword|SessionToken|"""
    r"""SecretAccessKey|X-Amz-Security-Token|Authorization)(?P=q)\s*:\s*b?)(?P<v>["'])(?:\\.|(?!(?P=v)).)*(?P=v)""",
    re.IGNORECASE,
)
# Environment variables (Lambda, Amplify) arrive in maps keyed by the user's names: a name that looks secret
# (as lastgood.redact.SECRET_NAME) has its string value masked too.
_SECRET_NAMED = re.compile(
    r"""(?P<key>(?P<q>["'])\w*(?:SECRET|PASSWORD|PASSWD|TOKEN|KEY|WEBHOOK|CREDENTIAL|AUTH|PRIVATE)\w*(?P=q)\s*:\s*b?)"""
    r"""(?P<v>["'])(?:\\.|(?!(?P=v)).)*(?P=v)""",
    re.IGNORECASE,
)
_LOGGERS = ("lastgood", "boto3", "botocore", "urllib3")


def apply(profile: str | None, region: str | None, endpoint_url: str | None, debug: bool) -> None:
    """Checks the values (bad ones are exit 2 before anything runs) and puts them in force."""
    set_overrides(
        AwsOverrides(
            _checked("--profile", "profile", profile), _checked("--region", "region", region), _endpoint(endpoint_url)
        )
    )
    if debug:
        enable_debug_logs()


def _checked(option: str, field: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        AwsSettings.model_validate({field: value})
    except ValidationError as error:
        message = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise BadInput(f"{option}: {message}") from None
    return value


def _endpoint(value: str | None) -> str | None:
    try:
        return None if value is None else check_endpoint_url(value)
    except ValueError as error:
        raise BadInput(f"--endpoint-url: {error}") from None


def mask_secret_fields(text: str) -> str:
    def mask(m: re.Match[str]) -> str:
        return f"{m['key']}{m['v']}{MASK}{m['v']}"

    return _SECRET_NAMED.sub(mask, _SECRET_FIELD.sub(mask, text))


class _Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_secret_fields(redact(super().format(record)))


def enable_debug_logs() -> None:
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        register_secret(os.environ.get(name))
    handler = logging.StreamHandler(RedactingStream("stderr"))
    handler.setFormatter(_Redacting("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        if not any(isinstance(h.formatter, _Redacting) for h in logger.handlers):
            logger.addHandler(handler)
