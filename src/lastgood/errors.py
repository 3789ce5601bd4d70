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
├── Interrupted               exit 130: Ctrl-C at a prompt, before anything changed
├── AwsError                  translated at the edge by lastgood.aws.errors.map_aws_errors
│   ├── TransientAwsError     throttling, 5xx, connection trouble: retry with backoff; exit 75 (try again)
│   ├── ResourceNotFound
│   ├── AccessDenied
│   └── CredentialsError
└── StepFailed                a rollback step failed for good
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every command's exit codes (the README's table; tests/cli/test_exit_codes.py walks them)."""

    OK = 0
    FAILED = 1  # failed, or judged bad (the guard rolled back)
    BAD_INPUT = 2  # nothing was changed
    REFUSED = 3  # refused or not run: no confirmation, nothing to do, held, awaiting approval, denied
    BLIND = 4  # the guard could not see: a rollback trigger had no data or its source failed
    INCONCLUSIVE = 5  # the guard's watch ended before a rollback trigger's window could complete
    RESTORED_UNHEALTHY = 6  # a rollback restored every component but its validate: block failed
    CHANGES_PENDING = 10  # `plan --detailed-exitcode`: the rollback would change something (service/plans.py)
    DRILLS_DUE = 10  # `drill --due`: a scheduled drill is due (the same code: "there is something to do")
    AWS_UNAVAILABLE = 75  # transient AWS trouble (unreachable, throttled, 5xx) after retries: try again (EX_TEMPFAIL)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM


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


class Interrupted(LastgoodError):
    exit_code = ExitCode.INTERRUPTED


class LeaseLost(LastgoodError):
    """This process's claim expired and another took the operation over: it must stop writing."""


class AwsError(LastgoodError):
    retryable = False


class TransientAwsError(AwsError):
    retryable = True
    exit_code = ExitCode.AWS_UNAVAILABLE


class ResourceNotFound(AwsError):
    pass


class AccessDenied(AwsError):
    pass


class CredentialsError(AwsError):
    exit_code = 2


class StepFailed(LastgoodError):
    pass
