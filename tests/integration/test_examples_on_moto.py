"""Each examples/*.yaml against AWS resources created here on moto's server: a release is recorded, the live
state then moves on, and `lastgood plan` names what a rollback would change, component by component.

Stubber-only path: Amplify (moto 5.2 does not implement it) for the amplify-branch components of
distro-nation.yaml and propie.yaml: ListJobs and GetDomainAssociation with their exact request shapes, on the
client lastgood builds (the rest of those files runs on moto)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.kinds.sql_files import apply_up
from lastgood.testing.endpoint import LocalEndpoint
from lastgood.testing.shop import handler_zip

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def template(*topics: str) -> str:
    return json.dumps({"Resources": {topic: {"Type": "AWS::SNS::Topic"} for topic in topics}})


def _role(aws: AwsClients) -> str:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    iam = aws.client("iam")
    try:
        return str(iam.get_role(RoleName="examples")["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName="examples", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def function(aws: AwsClients, name: str, alias: str | None = None, env: dict[str, str] | None = None) -> None:
    client = aws.client("lambda")
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=_role(aws),
        Handler="index.main",
        Code={"ZipFile": handler_zip("def main(event, context):\n    return 1\n")},
        Environment={"Variables": env or {}},
        Publish=True,
    )
    if alias:
        client.create_alias(FunctionName=name, Name=alias, FunctionVersion="1")


def new_version_live(aws: AwsClients, name: str, alias: str) -> None:
    """The bad release: new code published and the alias moved to it."""
    client = aws.client("lambda")
    client.update_function_code(FunctionName=name, ZipFile=handler_zip("def main(event, context):\n    return 2\n"))
    version = client.publish_version(FunctionName=name)["Version"]
    client.update_alias(FunctionName=name, Name=alias, FunctionVersion=version)


def stack(aws: AwsClients, name: str) -> None:
    # moto's first CloudFormation call imports every service's models: 20 s and more on a loaded machine.
    patient = boto3.client(
        "cloudformation",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        config=Config(read_timeout=300, retries={"max_attempts": 1}),
    )
    patient.create_stack(StackName=name, TemplateBody=template("Alerts"))


def stack_update(aws: AwsClients, name: str) -> None:
    aws.client("cloudformation").update_stack(StackName=name, TemplateBody=template("Alerts", "Audit"))


def table(aws: AwsClients, name: str, pitr: bool = True) -> None:
    client = aws.client("dynamodb")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if pitr:
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def rest_api(aws: AwsClients, name: str, stage: str) -> str:
    client = aws.client("apigateway")
    api_id = str(client.create_rest_api(name=name)["id"])
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    client.create_deployment(restApiId=api_id, stageName=stage)
    return api_id


def codedeploy_group(aws: AwsClients, application: str, group: str) -> None:
    client = aws.client("codedeploy")
    if application not in client.list_applications()["applications"]:
        client.create_application(applicationName=application, computePlatform="Lambda")
    client.create_deployment_group(applicationName=application, deploymentGroupName=group, serviceRoleArn=_role(aws))


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    run = lambda *argv: subprocess.run(["git", *argv], cwd=path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "r1")
    return path


def commit(path: Path, message: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", message],
        cwd=path,
        check=True,
        capture_output=True,
    )


class Run:
    """One example file copied beside its ledger, and the CLI run in-process on it."""

    def __init__(self, name: str, tmp: Path, endpoint: LocalEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
        self.file = tmp / name
        shutil.copy(EXAMPLES / name, self.file)
        self.endpoint, self.capsys = endpoint, capsys

    def cli(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*argv, "-f", str(self.file)])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def record(self, env: str, version: str) -> None:
        code, out, err = self.cli("release", "record", env, "--version", version)
        assert code == 0, out + err

    def plan(self, env: str) -> dict[str, Any]:
        code, out, err = self.cli("plan", env, "--output", "json")
        assert code == 0, out + err
        return dict(json.loads(out))


@pytest.fixture
def example(
    aws_env: LocalEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[str], Run]:
    monkeypatch.setenv("LASTGOOD_STATE", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.url)  # as a user points the AWS SDKs at another endpoint
    return lambda name: Run(name, tmp_path, aws_env, capsys)


def test_security_design_assistant(example: Callable[[str], Run], aws: AwsClients) -> None:
    run = example("security-design-assistant.yaml")
    function(aws, "security-assistant-api-prod", "live", {"JOBS_TABLE": "security-assistant-jobs-prod"})
    function(aws, "security-assistant-worker-prod", "live")
    for group in ("ApiFunctionDeploymentGroup", "WorkerFunctionDeploymentGroup"):
        codedeploy_group(
            aws, "security-assistant-prod-ServerlessDeploymentApplication", f"security-assistant-prod-{group}"
        )
    rest_api(aws, "security-assistant-prod", "prod")
    table(aws, "security-assistant-jobs-prod")
    stack(aws, "security-assistant-prod")
    run.record("prod", "r1")
    new_version_live(aws, "security-assistant-api-prod", "live")
    stack_update(aws, "security-assistant-prod")
    run.record("prod", "r2")
    steps = changes(run.plan("prod"), unchanged={"api-deployment", "worker-deployment", "worker", "api-stage"})
    assert steps["api"]["action"] == "update-alias" and (steps["api"]["from"], steps["api"]["to"]) == (
        "version 2",
        "version 1",
    )
    assert steps["stack"]["destructive"] and "deletes Audit (AWS::SNS::Topic)" in steps["stack"]["notes"]
    assert steps["jobs"]["action"] == "restore-copy"


def test_iracing_drivers_stats(
    example: Callable[[str], Run], aws: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = git_repo(tmp_path / "repo")
    monkeypatch.setenv("IRACING_REPO_DIR", str(repo))
    monkeypatch.setenv("API_ID", rest_api(aws, "drivers-stats", "prod"))
    run = example("iracing-drivers-stats.yaml")
    function(aws, "ir-custid", env={"TABLE_NAME": "ir_custid"})
    function(aws, "ir-auth", env={"TABLE_NAME": "ir_auth"})
    table(aws, "ir_custid")
    table(aws, "ir_auth", pitr=False)
    stack(aws, "CdkInfrastructureStack-prod")
    run.record("prod", "r1")
    commit(repo, "r2")
    stack_update(aws, "CdkInfrastructureStack-prod")
    run.record("prod", "r2")
    steps = changes(run.plan("prod"), unchanged={"api-stage"})
    assert steps["cdk-redeploy"]["kind"] == "command"
    assert steps["stack"]["kind"] == "cloudformation-stack"
    # ir_auth from the on-demand backup taken at r1, under its own name: destructive, a backup of it taken first.
    assert steps["auth-table"]["action"] == "restore-in-place" and steps["auth-table"]["destructive"]
    assert steps["custid-table"]["action"] == "restore-copy"


def test_cira_invoice(
    example: Callable[[str], Run], aws: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_jobs.up.sql").write_text("CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT);\n")
    (migrations / "0001_jobs.down.sql").write_text("DROP TABLE jobs;\n")
    database = f"sqlite:///{tmp_path / 'cira.db'}"
    monkeypatch.setenv("DATABASE_URL", database)
    monkeypatch.setenv("CIRA_MIGRATIONS_DIR", str(migrations))
    apply_up(database, migrations)
    run = example("cira-invoice.yaml")
    for name in ("Monitoring", "Workflow", "Api", "Database"):
        stack(aws, f"CiraInvoice-{name}-prod")
    address = db_instance(aws, "cira-invoice-prod")
    aws.client("secretsmanager").create_secret(
        Name="cira-invoice/prod/database", SecretString=json.dumps({"host": address, "password": "pw-not-shown"})
    )
    run.record("prod", "r1")
    (migrations / "0002_invoices.up.sql").write_text("CREATE TABLE invoices (id INTEGER PRIMARY KEY);\n")
    (migrations / "0002_invoices.down.sql").write_text("DROP TABLE invoices;\n")
    apply_up(database, migrations)
    stack_update(aws, "CiraInvoice-Api-prod")
    run.record("prod", "r2")
    steps = changes(run.plan("prod"), unchanged={"monitoring-stack", "workflow-stack", "database-stack"})
    assert steps["schema"]["action"] == "migrate-down" and steps["schema"]["waits_for"] == ["api-stack"]
    assert steps["api-stack"]["kind"] == "cloudformation-stack"
    # The snapshot taken at r1, into a new instance, once the application and its schema are back.
    assert steps["database"]["action"] == "restore-copy"
    assert steps["database"]["waits_for"] == ["api-stack", "schema"]


def db_instance(aws: AwsClients, name: str) -> str:
    described = aws.client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="password-not-shown",
        AllocatedStorage=20,
    )
    return str(described["DBInstance"]["Endpoint"]["Address"])


class AmplifyStub:
    """Amplify's answers for this test (moto has none), by operation: components are read on several threads,
    so one ordered Stubber cannot serve them. Each call's parameters are checked against the expected ones."""

    def __init__(self, aws: AwsClients, app: str, branch: str, domain: str) -> None:
        self.client = aws.client("amplify")
        self.app, self.branch, self.domain = app, branch, domain
        self.answers: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        self.lock = threading.Lock()
        self.taken = threading.local()  # the answer of the call this thread is making

    def expect(self, operation: str, params: dict[str, Any], answer: dict[str, Any]) -> None:
        self.answers.setdefault(operation, []).append((params, answer))

    def reads(self, job_id: str, commit_id: str, serves: str, variables: dict[str, str] | None = None) -> None:
        """One read of the branch: its jobs, which branch the domain's apex serves, its environment variables."""
        when = datetime(2026, 11, 30, tzinfo=UTC)
        summary = {
            "jobArn": f"arn:aws:amplify:us-east-1:123456789012:apps/{self.app}/branches/{self.branch}/jobs/{job_id}",
            "jobId": job_id,
            "commitId": commit_id,
            "commitMessage": "deploy",
            "commitTime": when,
            "startTime": when,
            "status": "SUCCEED",
            "jobType": "WEB_HOOK",
        }
        listing = {"appId": self.app, "branchName": self.branch, "maxResults": 50}
        self.expect("ListJobs", listing, {"jobSummaries": [summary]})
        if self.domain:
            sub = {"subDomainSetting": {"prefix": "", "branchName": serves}, "verified": True, "dnsRecord": "x"}
            association = {"domainName": self.domain, "domainStatus": "AVAILABLE", "subDomains": [sub]}
            self.expect(
                "GetDomainAssociation",
                {"appId": self.app, "domainName": self.domain},
                {"domainAssociation": association},
            )
        if variables is not None:
            branch = {"branchName": self.branch, "environmentVariables": variables}
            self.expect("GetBranch", {"appId": self.app, "branchName": self.branch}, {"branch": branch})

    def _take(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """The call's own parameters pick its answer (the first expected with exactly these parameters)."""
        with self.lock:
            queue = self.answers.get(model.name) or []
            found = next((i for i, (expected, _a) in enumerate(queue) if expected == params), None)
            assert found is not None, f"amplify:{model.name}({params}) was not expected"
            self.taken.answer = queue.pop(found)[1]

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse(None, 200, {}, None), self.taken.answer

    @contextmanager
    def serving(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        original = AwsClients.client
        monkeypatch.setattr(
            AwsClients,
            "client",
            lambda me, service, *a, **kw: self.client if service == "amplify" else original(me, service, *a, **kw),
        )
        self.client.meta.events.register_first("before-parameter-build.amplify", self._take)
        self.client.meta.events.register_first("before-call.amplify", self._answer)
        yield
        assert not any(self.answers.values()), f"amplify answers left: {self.answers}"


def test_propie(example: Callable[[str], Run], aws: AwsClients, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPLIFY_APP_ID", "d1propie")
    run = example("propie.yaml")
    function(aws, "prop-ie-production-api", env={"DYNAMODB_TABLE": "prop-ie-production-data"})
    table(aws, "prop-ie-production-data")
    stack(aws, "prop-ie-production-appsync-stack")
    amplify = AmplifyStub(aws, "d1propie", "production", "prop-ie-app.com")
    with amplify.serving(monkeypatch):
        amplify.reads("7", "aaaaaaaaaa", serves="production")
        run.record("production", "r1")
        amplify.reads("8", "bbbbbbbbbb", serves="staging")
        stack_update(aws, "prop-ie-production-appsync-stack")
        run.record("production", "r2")
        amplify.reads("8", "bbbbbbbbbb", serves="staging")
        steps = changes(run.plan("production"), unchanged=set())
    assert steps["frontend"]["action"] == "redeploy"
    assert steps["frontend"]["to"] == "commit aaaaaaaa (job 7), domain -> production"
    assert steps["appsync-stack"]["kind"] == "cloudformation-stack"
    assert steps["data"]["action"] == "restore-copy"


def changes(plan: dict[str, Any], unchanged: set[str]) -> dict[str, Any]:
    """The plan's steps by component, after checking that every component was recorded and nothing blocks."""
    assert plan["blocked"] is None and plan["not_recorded"] == []
    assert set(plan["unchanged"]) == unchanged
    return {step["component"]: step for step in plan["steps"]}


class Flags:
    """A JSON flag service on 127.0.0.1 (the seed names no flag system): GET returns the flags, PUT replaces."""

    def __init__(self, flags: dict[str, Any]) -> None:
        self.flags = flags
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps(service.flags).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/flags"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def gsutil(bin_dir: Path, newest: str) -> None:
    """A stand-in for Google's gsutil on PATH: `ls` lists the Firebase backups, the newest last."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "gsutil"
    script.write_text(f'#!/bin/sh\nprintf "gs://b/2026-11-01_data.json.gz\\n{newest}\\n"\n')
    script.chmod(0o755)


def test_distro_nation(
    example: Callable[[str], Run], aws: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = Flags({"new_checkout": True, "search_v2": 100})
    cdk = git_repo(tmp_path / "cdk")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_users.up.sql").write_text("CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
    (migrations / "0001_users.down.sql").write_text("DROP TABLE users;\n")
    database = f"sqlite:///{tmp_path / 'dn.db'}"
    apply_up(database, migrations)
    gsutil(tmp_path / "bin", "gs://b/2026-11-30_data.json.gz")
    for name, value in {
        "DN_AMPLIFY_APP_ID": "d1distro",
        "DN_FLAGS_URL": flags.url,
        "DN_CDK_DIR": str(cdk),
        "DN_DATABASE_URL": database,
        "DN_MIGRATIONS_DIR": str(migrations),
        "DN_FIREBASE_BACKUP_BUCKET": "b",
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
    }.items():
        monkeypatch.setenv(name, value)
    run = example("distro-nation.yaml")
    function(aws, "distro-nation-api", "PROD")
    codedeploy_group(aws, "distro-nation-api", "distro-nation-api-production")
    stack(aws, "distro-nation-api-production")
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/distro-nation/production/api-url", Value="https://api.example.com", Type="String")
    secrets = aws.client("secretsmanager")
    secrets.create_secret(Name="distro-nation/production/api", SecretString='{"key": "k1-not-shown"}')
    endpoint = aurora(aws, "distro-nation-production")
    secrets.create_secret(Name="distro-nation/production/aurora", SecretString=json.dumps({"host": endpoint}))
    bucket(aws, "distro-nation-production-media")
    group = security_group(aws)
    monkeypatch.setenv("DN_SECURITY_GROUP_ID", group)
    good = {"REACT_APP_API_ENDPOINT": "https://api.example.com", "REACT_APP_FEATURE_FLAGS": "on"}
    amplify = AmplifyStub(aws, "d1distro", "main", "")
    with amplify.serving(monkeypatch):
        amplify.reads("3", "aaaaaaaaaa", serves="", variables=good)
        run.record("production", "r1")
        bad = {**good, "REACT_APP_API_ENDPOINT": "https://bad.example.com"}
        amplify.reads("4", "bbbbbbbbbb", serves="", variables=bad)
        ec2_rule(aws, group, "0.0.0.0/0")
        flags.flags = {"new_checkout": False, "search_v2": 100}
        new_version_live(aws, "distro-nation-api", "PROD")
        ssm.put_parameter(Name="/distro-nation/production/api-url", Value="https://bad", Type="String", Overwrite=True)
        secrets.put_secret_value(SecretId="distro-nation/production/api", SecretString='{"key": "k2-not-shown"}')
        commit(cdk, "r2")
        aws.client("s3").put_object(Bucket="distro-nation-production-media", Key="logo.png", Body=b"bad")
        gsutil(tmp_path / "bin", "gs://b/2026-12-01_data.json.gz")
        run.record("production", "r2")
        amplify.reads("4", "bbbbbbbbbb", serves="", variables=bad)
        steps = changes(
            run.plan("production"),
            unchanged={"core-api-deployment", "api-stack", "database-schema"},
        )
    assert steps["frontend"]["to"] == "commit aaaaaaaa (job 3)"
    assert steps["core-api"]["to"] == "version 1"
    assert {"feature-flags", "api-config", "api-secrets", "infrastructure", "firebase-database", "media"} <= set(steps)
    assert steps["frontend-config"]["kind"] == "amplify-env" and "frontend:redeploy" in steps
    assert any("traffic it allows now is cut" in note for note in steps["network"]["notes"])
    assert steps["firebase-database"]["destructive"]
    assert steps["database"]["action"] == "restore-copy" and "core-api" in steps["database"]["waits_for"]
    assert "k1-not-shown" not in json.dumps(steps) and "k2-not-shown" not in json.dumps(steps)


def aurora(aws: AwsClients, name: str) -> str:
    client = aws.client("rds")
    described = client.create_db_cluster(
        DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="app", MasterUserPassword="pw-not-shown"
    )
    client.create_db_instance(
        DBInstanceIdentifier=f"{name}-1",
        DBClusterIdentifier=name,
        DBInstanceClass="db.r5.large",
        Engine="aurora-postgresql",
    )
    return str(described["DBCluster"]["Endpoint"])


def bucket(aws: AwsClients, name: str) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=name, Key="logo.png", Body=b"good")


def security_group(aws: AwsClients) -> str:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return str(ec2.create_security_group(GroupName="distro-api", Description="api", VpcId=vpc)["GroupId"])


def ec2_rule(aws: AwsClients, group: str, cidr: str) -> None:
    """The bad release opens the API's port to the world."""
    aws.client("ec2").authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": cidr}]}],
    )
