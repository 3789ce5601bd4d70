"""botocore errors are translated here, once; the rest of lastgood sees lastgood.errors only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lastgood.errors import AccessDenied, AwsError, CredentialsError, ResourceNotFound, TransientAwsError

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "ResourceConflictException",  # Lambda: an update is already in progress on the function
}
_NOT_FOUND = {
    "ResourceNotFoundException",
    "ResourceNotFound",
    "NotFound",
    "NotFoundException",  # Amplify, API Gateway
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "StateMachineDoesNotExist",
    "ServiceNotFoundException",
    "ClusterNotFoundException",
    "ListenerNotFound",
    "RuleNotFound",
    "TargetGroupNotFound",
    "NoSuchHostedZone",
    "NoSuchBucket",
    "NoSuchKey",
    "NoSuchVersion",
    "StackNotFound",
    "DBInstanceNotFound",
    "DBClusterNotFoundFault",
    "DBSnapshotNotFound",
    "DBClusterSnapshotNotFoundFault",
    "TableNotFoundException",
    "BackupNotFoundException",
    "DeploymentGroupDoesNotExistException",
    "ApplicationDoesNotExistException",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}


def is_throttling(code: str) -> bool:
    return code in _THROTTLING


def _is_not_found(code: str, message: str) -> bool:
    if code in _NOT_FOUND or code.endswith(("NotFoundException", "NotFoundFault", "DoesNotExistException")):
        return True
    # CloudFormation says "Stack with id X does not exist" as a ValidationError.
    return code == "ValidationError" and "does not exist" in message


def translate(error: Exception, what: str) -> AwsError:
    # botocore is imported here, not at the top: loading a file (`validate`) reaches this module, not AWS.
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = f"{what}: {code}: {message}"
        if code in _THROTTLING or status >= 500:
            return TransientAwsError(text)
        if _is_not_found(code, message) or status == 404:  # HeadObject answers a bare 404
            return ResourceNotFound(text)
        if code in _DENIED:
            return AccessDenied(text)
        return AwsError(text)
    if isinstance(error, NoCredentialsError | PartialCredentialsError | ProfileNotFound | NoRegionError):
        return CredentialsError(f"{what}: {error}")
    if isinstance(error, EndpointConnectionError | ConnectionError | HTTPClientError):
        # HTTPClientError: a read timeout or a connection closed before the answer; the outcome is unknown,
        # so the retry is the executor's, through the kind's apply, which reads first.
        return TransientAwsError(f"{what}: {error}")
    return AwsError(f"{what}: {error}")


@contextmanager
def map_aws_errors(what: str) -> Iterator[None]:
    """Run AWS calls; re-raise botocore's errors as lastgood's, naming the call that failed."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate(error, what) from error
