"""The pure half of `lastgood init`: a template's references, ARNs as drafts, the order, the YAML text."""

from __future__ import annotations

import yaml

from lastgood.config.loader import parse_runbook
from lastgood.service.starter.drafts import Draft, link, order, unique_names
from lastgood.service.starter.from_tags import tag_drafts
from lastgood.service.starter.render import Header, render, scalar
from lastgood.service.starter.template import load_template, template_resources

TEMPLATE = """
Parameters:
  Env: {Type: String}
Resources:
  Table: {Type: AWS::DynamoDB::Table}
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Role: !GetAtt Role.Arn
      Environment:
        Variables:
          A: !Ref Table
          B: !Sub "${Env}-${AWS::Region}-${!Literal}-${Param}"
          C: !Sub ["${X}-${Queue.Arn}", {X: !Ref Topic}]
          D: {"Fn::GetAtt": [Bucket, Arn]}
  Role: {Type: AWS::IAM::Role}
  Param: {Type: AWS::SSM::Parameter}
  Queue: {Type: AWS::SQS::Queue}
  Topic: {Type: AWS::SNS::Topic}
  Bucket: {Type: AWS::S3::Bucket}
"""


class NoAliases:
    def lambda_aliases(self, function: str) -> list[str]:
        return []

    def api_stages(self, rest_api_id: str) -> list[str]:
        return ["prod", "staging"] if rest_api_id == "a1b2c3" else []

    def state_machine_aliases(self, state_machine_arn: str) -> list[str]:
        return []


def test_references_are_ref_getatt_and_sub_between_resources() -> None:
    resources = template_resources(load_template(TEMPLATE))
    # Parameters, pseudo parameters and ${!Literal} are not resources; a Sub's own variables are not either.
    assert resources["Fn"].refers_to == {"Role", "Table", "Param", "Queue", "Topic", "Bucket"}
    assert resources["Table"].refers_to == frozenset()
    assert load_template({"Resources": {}}) == {"Resources": {}}  # boto3 decodes a JSON template itself


def test_arns_of_tables_apis_and_databases_become_drafts() -> None:
    arns = [
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026",
        "arn:aws:apigateway:us-east-1::/restapis/a1b2c3",
        "arn:aws:apigateway:us-east-1::/restapis/a1b2c3/stages/prod",
        "arn:aws:rds:us-east-1:123456789012:db:shop-db",
        "arn:aws:sqs:us-east-1:123456789012:jobs",
    ]
    drafts, skipped = tag_drafts(arns, NoAliases())
    kinds = [(d.name, d.kind, d.disabled) for d in drafts]
    assert kinds == [
        ("orders", "dynamodb-table", True),  # the pointer is a choice: commented out until it is made
        ("api-a1b2c3-prod", "apigateway-stage", False),
        ("api-a1b2c3-staging", "apigateway-stage", False),
        ("shop-db", "rds-instance", True),
    ]
    assert skipped == [arns[1], arns[3], arns[5]]


def test_the_data_goes_last_and_no_reference_makes_a_cycle() -> None:
    resources = template_resources(
        load_template(
            """
Resources:
  Api: {Type: AWS::ApiGateway::RestApi}
  Method: {Type: AWS::ApiGateway::Method, Properties: {RestApiId: !Ref Api, Uri: !GetAtt Fn.Arn}}
  Fn: {Type: AWS::Lambda::Function, Properties: {Environment: {Variables: {URL: !Sub "https://${Api}"}}}}
  Bucket: {Type: AWS::S3::Bucket, Properties: {NotificationConfiguration: {Function: !GetAtt Fn.Arn}}}
"""
        )
    )
    api = Draft("api", "apigateway-stage", {"rest_api_id": "x", "stage": "prod"}, {"Api", "Method"})
    fn = Draft("fn", "lambda-alias", {"function": "f"}, {"Fn"})
    bucket = Draft("bucket", "s3-prefix", {"bucket": "b"}, {"Bucket"})
    drafts = [bucket, api, fn]
    unique_names(drafts)
    link(drafts, resources)
    assert api.depends_on == {"fn": "Method refers to Fn in the template"}
    assert list(fn.depends_on) == ["bucket"]  # Fn -> Api would close a cycle: noted, not written
    assert any("a cycle" in note for note in fn.notes)
    assert bucket.depends_on == {}  # the bucket's reference to the function is not an order: data last
    assert any("data is rolled back after the code" in note for note in bucket.notes)
    assert [d.name for d in order(drafts)] == ["api", "fn", "bucket"]


def test_the_text_reads_back_as_the_values_written() -> None:
    for value in ["true", "123", "", "a b", "x: y", "#hash", "/shop/prod/x", "arn:aws:x:y", "null", "[x]"]:
        assert yaml.safe_load(f"k: {scalar(value)}") == {"k": value}, value
    drafts = [Draft("a", "secret", {"secret": "yes"}), Draft("a", "secret", {"secret": "no"}, disabled=True)]
    unique_names(drafts)
    text = render(Header("shop", "prod", "us-east-1", "tags", "lastgood init"), drafts, ["arn:aws:sqs:::q"])
    runbook = parse_runbook(text)
    assert [(c.name, c.secret) for c in runbook.components] == [("a", "yes")]
    assert "  # - name: a-2\n" in text and "#   arn:aws:sqs:::q" in text
