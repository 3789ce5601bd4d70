"""The one exception tree.

LastgoodError                 exit code 1 unless a subclass says otherwise
├── BadInput                  exit 2: the user asked for something that cannot be (nothing changed)
│   ├── ConfigError           the runbook file is broken; carries one message per problem
│   ├── UnknownRelease
│   ├── UnknownRollback
│   ├── UnknownDeployment
│   └── UnknownDrill
├── Refused                   exit 3: no confirmation, or nothing to roll back to
│   ├── EnvironmentHeld       another operation holds the environment (its holder named)
│   ├── NotPermitted          this person may not do this (roles, the two-person rule): 403 on the API
│   └── ConfirmationNeeded    a use case needs the caller's yes first (it carries the question)
├── AwsError                  translated at the edge by lastgood.aws.errors.map_aws_errors
│   ├── TransientAwsError     throttling, 5xx, connection trouble: retry with backoff
│   ├── ResourceNotFound
│   ├── AccessDenied
│   └── CredentialsError
└── StepFailed                a rollback step failed for good
"""

from __future__ import annotations


class LastgoodError(Exception):
    exit_code = 1


class BadInput(LastgoodError):
    exit_code = 2


class ConfigError(BadInput):
    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(problems))


class UnknownRelease(BadInput):
    pass


class UnknownRollback(BadInput):
    pass


class UnknownDeployment(BadInput):
    pass


class UnknownDrill(BadInput):
    pass


class Refused(LastgoodError):
    exit_code = 3


class EnvironmentHeld(Refused):
    def __init__(self, message: str, holder: dict[str, object]) -> None:
        super().__init__(message)
        self.holder = holder


class NotPermitted(Refused):
    """The actor lacks a role this needs, or the two-person rule forbids it."""


class ConfirmationNeeded(Refused):
    """Nothing was changed: ask `question` and call again with the confirmation."""

    def __init__(self, message: str, question: str) -> None:
        super().__init__(message)
        self.question = question


class LeaseLost(LastgoodError):
    """This process's claim expired and another took the operation over: it must stop writing."""


class AwsError(LastgoodError):
    retryable = False


class TransientAwsError(AwsError):
    retryable = True


class ResourceNotFound(AwsError):
    pass


class AccessDenied(AwsError):
    pass


class CredentialsError(AwsError):
    exit_code = 2


class StepFailed(LastgoodError):
    pass
