"""AWS access: one client factory (credentials, region, endpoint, retries) and one error translator."""

from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors

__all__ = ["AwsClients", "map_aws_errors"]
