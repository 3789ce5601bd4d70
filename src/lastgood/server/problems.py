"""Errors as RFC 9457 problem documents (`application/problem+json`), with the CLI's meanings:
bad input 400/422, not signed in 401, not allowed 403, unknown 404, refused or held 409; AWS trouble 502/503.
Bad input never answers 5xx."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lastgood.errors import (
    AwsError,
    BadInput,
    ConfigError,
    CredentialsError,
    EnvironmentHeld,
    LastgoodError,
    LeaseLost,
    NotPermitted,
    Refused,
    ResourceNotFound,
    TransientAwsError,
    UnknownDeployment,
    UnknownDrill,
    UnknownRelease,
    UnknownRollback,
)
from lastgood.redact import redact
from lastgood.server.apps import UnknownApp, UnknownEnvironment
from lastgood.server.jobs import NoBackgroundWork

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad input",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Refused",
    422: "Invalid request",
    502: "AWS error",
    503: "Unavailable",
}


def status_of(error: LastgoodError) -> int:
    """The HTTP status meaning what the CLI's exit code means for the same error."""
    if isinstance(error, UnknownApp | UnknownEnvironment | UnknownRelease | UnknownRollback):
        return 404
    if isinstance(error, UnknownDeployment | UnknownDrill):
        return 404
    if isinstance(error, ResourceNotFound):
        return 404
    if isinstance(error, CredentialsError):
        return 502
    if isinstance(error, BadInput):
        return 400
    if isinstance(error, NotPermitted):
        return 403
    if isinstance(error, Refused | LeaseLost):
        return 409
    if isinstance(error, TransientAwsError | NoBackgroundWork):
        return 503
    if isinstance(error, AwsError):
        return 502
    return 500


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": redact(detail)}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(LastgoodError)
    async def lastgood_error(request: Request, error: LastgoodError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if isinstance(error, EnvironmentHeld):
            extra["holder"] = error.holder
        if isinstance(error, ConfigError):
            extra["problems"] = [redact(p) for p in error.problems]
        return problem(status_of(error), str(error), exit_code=error.exit_code, **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in error.errors()
        ]
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem(422, where or "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        response = problem(error.status_code, str(error.detail))
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response
