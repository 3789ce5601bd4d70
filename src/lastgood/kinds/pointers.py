"""The pointer: where an application reads which table or database endpoint to use.

Data kinds never overwrite the data an application uses; they restore into a new copy and then switch the
pointer to it. A pointer is exactly one of:

- `ssm_parameter`: an SSM parameter whose value is the name / endpoint;
- `lambda_env`: one environment variable of a Lambda function (the other variables are kept); with `alias`,
  a version is published from the updated $LATEST and the alias moved to it (kinds/lambda_env.py);
- `secret_key`: one key of a JSON Secrets Manager secret. Only that key is read back; the secret's other
  values are held in memory just long enough to write the new version and are never stored or logged.

`set_pointer` is idempotent: it reads first and writes only when the value differs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import Field, model_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Strict
from lastgood.errors import ResourceNotFound
from lastgood.kinds import lambda_env
from lastgood.kinds.base import IamScope, IamStatement, KindContext

_TOKEN_NAMESPACE = uuid.UUID("6f1d3c1e-7a52-4c8e-9d0b-2f3a5b6c7d8e")


class LambdaEnv(Strict):
    function: str = Field(description="Function name or ARN.")
    variable: str = Field(description="Environment variable holding the name / endpoint.")
    alias: str | None = Field(
        default=None,
        description="Publish a version after the switch and move this alias to it (functions invoked through "
        "the alias read the new value); omitted: only $LATEST is updated.",
    )


class SecretKey(Strict):
    secret: str = Field(description="Secret name or ARN; its value must be a JSON object.")
    key: str = Field(description="The JSON key holding the name / endpoint.")


class Pointer(Strict):
    """Exactly one of ssm_parameter, lambda_env, secret_key."""

    ssm_parameter: str | None = Field(default=None, description="SSM parameter whose value is the name/endpoint.")
    lambda_env: LambdaEnv | None = Field(default=None, description="A Lambda function's environment variable.")
    secret_key: SecretKey | None = Field(default=None, description="A key inside a JSON Secrets Manager secret.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Pointer:
        given = [n for n in ("ssm_parameter", "lambda_env", "secret_key") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "a pointer is exactly one of ssm_parameter, lambda_env, secret_key"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


def describe_pointer(pointer: Pointer) -> str:
    if pointer.ssm_parameter is not None:
        return f"SSM parameter {pointer.ssm_parameter}"
    if pointer.lambda_env is not None:
        return f"environment variable {pointer.lambda_env.variable} of Lambda {pointer.lambda_env.function}"
    assert pointer.secret_key is not None
    return f"key {pointer.secret_key.key} of secret {pointer.secret_key.secret}"


def read_pointer(pointer: Pointer, ctx: KindContext) -> str:
    """The name / endpoint the application currently uses."""
    if pointer.ssm_parameter is not None:
        return _read_ssm(pointer.ssm_parameter, ctx)
    if pointer.lambda_env is not None:
        target = pointer.lambda_env
        qualifier = lambda_env.alias_version(target.function, target.alias, ctx) if target.alias else None
        variables = lambda_env.variables_of(lambda_env.configuration(target.function, ctx, qualifier))
        if pointer.lambda_env.variable not in variables:
            raise ResourceNotFound(f"{describe_pointer(pointer)}: the variable is not set")
        return variables[pointer.lambda_env.variable]
    assert pointer.secret_key is not None
    return _secret_key_value(pointer.secret_key, _secret_document(pointer.secret_key, ctx)[0])


def set_pointer(pointer: Pointer, ctx: KindContext, value: str) -> bool:
    """Point the application at `value`. Returns whether anything was written (False: it already did)."""
    if pointer.ssm_parameter is not None:
        return _set_ssm(pointer.ssm_parameter, ctx, value)
    if pointer.lambda_env is not None:
        return _set_lambda(pointer.lambda_env, ctx, value)
    assert pointer.secret_key is not None
    return _set_secret_key(pointer.secret_key, ctx, value)


def _read_ssm(name: str, ctx: KindContext) -> str:
    with map_aws_errors(f"ssm:GetParameter {name}"):
        return str(ctx.aws.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])


def _set_ssm(name: str, ctx: KindContext, value: str) -> bool:
    # A missing parameter raises ResourceNotFound: creating one means choosing its type and key, which is
    # the runbook author's call, not a rollback's.
    if _read_ssm(name, ctx) == value:
        return False
    with map_aws_errors(f"ssm:PutParameter {name}"):
        # No Type: an overwrite keeps the parameter's type (and a SecureString its key).
        ctx.aws.client("ssm").put_parameter(Name=name, Value=value, Overwrite=True)
    return True


def _set_lambda(target: LambdaEnv, ctx: KindContext, value: str) -> bool:
    latest = lambda_env.configuration(target.function, ctx)
    variables = lambda_env.variables_of(latest)
    if variables.get(target.variable) != value:
        # With RevisionId: refuse to overwrite a configuration someone changed since we read it.
        latest = lambda_env.update_variables(
            target.function, ctx, {**variables, target.variable: value}, latest.get("RevisionId")
        )
    elif target.alias is None or _alias_reads(target, ctx) == value:
        return False
    if target.alias is not None:
        lambda_env.publish_to_alias(target.function, target.alias, ctx, latest.get("RevisionId"))
    return True


def _alias_reads(target: LambdaEnv, ctx: KindContext) -> str | None:
    assert target.alias is not None
    version = lambda_env.alias_version(target.function, target.alias, ctx)
    return lambda_env.variables_of(lambda_env.configuration(target.function, ctx, version)).get(target.variable)


def _secret_document(target: SecretKey, ctx: KindContext) -> tuple[dict[str, Any], str]:
    """The secret's current JSON object and version id. Held in memory only; never stored or logged."""
    with map_aws_errors(f"secretsmanager:GetSecretValue {target.secret}"):
        current = ctx.aws.client("secretsmanager").get_secret_value(SecretId=target.secret, VersionStage="AWSCURRENT")
    try:
        document = json.loads(current.get("SecretString") or "")
    except ValueError:
        document = None
    if not isinstance(document, dict):
        # The message must not echo the value: it is a secret.
        raise ResourceNotFound(f"secret {target.secret}: the value is not a JSON object")
    return document, str(current["VersionId"])


def _secret_key_value(target: SecretKey, document: dict[str, Any]) -> str:
    if target.key not in document:
        raise ResourceNotFound(f"secret {target.secret}: has no key {target.key!r}")
    return str(document[target.key])


def _set_secret_key(target: SecretKey, ctx: KindContext, value: str) -> bool:
    document, version = _secret_document(target, ctx)
    if document.get(target.key) == value:
        return False
    document[target.key] = value
    # Same step, same starting version, same value: the same token, so a repeated put creates no new version.
    # The starting version is part of it because a token may only ever carry one SecretString.
    token = str(uuid.uuid5(_TOKEN_NAMESPACE, json.dumps([ctx.token, target.secret, target.key, value, version])))
    client = ctx.aws.client("secretsmanager")
    with map_aws_errors(f"secretsmanager:PutSecretValue {target.secret} ({target.key})"):
        written = client.put_secret_value(
            SecretId=target.secret, SecretString=json.dumps(document), ClientRequestToken=token
        )
    if "AWSCURRENT" not in (written.get("VersionStages") or []):
        # The token's version existed already (an earlier attempt) but is no longer current: make it current.
        with map_aws_errors(f"secretsmanager:UpdateSecretVersionStage {target.secret}"):
            client.update_secret_version_stage(
                SecretId=target.secret,
                VersionStage="AWSCURRENT",
                MoveToVersionId=written["VersionId"],
                RemoveFromVersionId=version,
            )
    return True


def pointer_iam_statements(pointer: Pointer, scope: IamScope) -> list[IamStatement]:
    prefix = f"arn:{scope.partition}"
    if pointer.ssm_parameter is not None:
        name = pointer.ssm_parameter.lstrip("/")
        return [
            IamStatement(
                actions=("ssm:GetParameter", "ssm:PutParameter"),
                resources=(f"{prefix}:ssm:{scope.region}:{scope.account}:parameter/{name}",),
                purpose="read and switch the pointer parameter",
            )
        ]
    if pointer.lambda_env is not None:
        return lambda_env.lambda_env_iam(pointer.lambda_env.function, pointer.lambda_env.alias, scope)
    assert pointer.secret_key is not None
    secret = pointer.secret_key.secret
    arn = _arn(secret, f"{prefix}:secretsmanager:{scope.region}:{scope.account}:secret:{secret}-*")
    return [
        IamStatement(
            actions=(
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ),
            resources=(arn,),
            purpose=f"read and switch key {pointer.secret_key.key} (the other keys are rewritten unchanged)",
        ),
        IamStatement(
            actions=("kms:Decrypt", "kms:GenerateDataKey"),
            resources=(f"{prefix}:kms:{scope.region}:{scope.account}:key/*",),
            purpose="only if the secret uses a customer managed key; narrow to that key",
        ),
    ]


def _arn(name: str, built: str) -> str:
    return name if name.startswith("arn:") else built
