"""Notifiers against real servers: Slack and the signed webhook on a local HTTP server, email on a local SMTP
server (with STARTTLS and AUTH), SNS on the moto server delivering to an SQS queue."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import socketserver
import ssl
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lastgood import redact
from lastgood.aws.clients import AwsClients
from lastgood.config.notifications import Notifications
from lastgood.errors import AwsError
from lastgood.notify import Dispatcher, Message, NotifyError, build_notifiers, message_from_rollback
from lastgood.notify.email import EmailNotifier, EmailSettings
from lastgood.notify.slack import SlackNotifier, SlackSettings
from lastgood.notify.sns import SnsNotifier, SnsSettings
from lastgood.notify.webhook import WebhookNotifier, WebhookSettings

TEMPLATE_LABELS = ("Issue: ", "Impact: ", "Action: ", "ETA: ", "Status: ")


def sample(event: str = "rollback-started", **facts: Any) -> Message:
    base = {
        "id": "rb-0123456789",
        "app": "shop",
        "env": "prod",
        "from_release": "v42",
        "to_release": "v41",
        "reason": "api error rate above 5%",
        "severity": "SEV1",
        "steps_done": 1,
        "steps_total": 4,
        "estimate_seconds": 120.0,
        "elapsed_seconds": 30.0,
        "requested_by": "lastgood-guard",
    }
    return message_from_rollback(event, base | facts)


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    yield
    redact.clear()


# --- a real HTTP receiver ------------------------------------------------------------------------------------


class Receiver:
    """Records each POST (path, headers, raw body); answers with queued status codes, else 200 'ok'."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                receiver.arrived.set()
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                data = b"ok" if status == 200 else b"invalid_payload"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_slack_posts_the_template_as_text_and_blocks(receiver: Receiver) -> None:
    notifier = SlackNotifier(SlackSettings(webhook_url=receiver.url + "/services/T0/B0/xyz"))
    notifier.send(sample())
    path, headers, body = receiver.requests[0]
    assert path == "/services/T0/B0/xyz"
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    text = payload["text"]
    assert text.startswith("[URGENT] Rolling back shop prod (rb-0123456789): In Progress (1 of 4 steps done)")
    for label in TEMPLATE_LABELS:
        assert f"\n{label}" in text
    assert "Issue: SEV1: api error rate above 5%" in text
    assert "Action: rolling back from v42 to v41" in text
    assert "ETA: about 1m30s (estimate 2m)" in text
    header, fields = payload["blocks"][0], payload["blocks"][1]
    assert header["type"] == "header" and header["text"]["text"].startswith("[URGENT] Rolling back")
    assert [f["text"].split(":*")[0] for f in fields["fields"]] == ["*Issue", "*Impact", "*Action", "*ETA", "*Status"]


def test_slack_escapes_mrkdwn_so_a_detail_cannot_ping_everyone(receiver: Receiver) -> None:
    message = sample()
    message = Message(**(message.as_dict() | {"details": ["<!channel> & <https://evil|click>"]}))
    SlackNotifier(SlackSettings(webhook_url=receiver.url)).send(message)
    payload = json.loads(receiver.requests[0][2])
    details = payload["blocks"][2]["text"]["text"]
    assert "<!channel>" not in payload["text"] and "<!channel>" not in details
    assert "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;" in details


def test_slack_error_answer_raises_without_the_url(receiver: Receiver) -> None:
    receiver.answers.append((400, {}))
    url = receiver.url + "/services/T0/B0/secret-token"
    with pytest.raises(NotifyError) as caught:
        SlackNotifier(SlackSettings(webhook_url=url), name="channels[0].slack").send(sample())
    assert "HTTP 400" in str(caught.value) and "invalid_payload" in str(caught.value)
    assert "secret-token" not in str(caught.value)
    assert str(caught.value).startswith("channels[0].slack:")


def test_webhook_is_signed_over_the_exact_body(receiver: Receiver) -> None:
    secret = "whsec-5f0e9d1c"
    WebhookNotifier(WebhookSettings(url=receiver.url + "/hook", secret=secret)).send(sample("rollback-failed"))
    path, headers, body = receiver.requests[0]
    assert path == "/hook"
    assert headers["X-Lastgood-Event"] == "rollback-failed"
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Lastgood-Signature"], expected)
    wrong = "sha256=" + hmac.new(b"other", body, hashlib.sha256).hexdigest()
    assert headers["X-Lastgood-Signature"] != wrong
    document = json.loads(body)
    assert document["event"] == "rollback-failed" and document["rollback_id"] == "rb-0123456789"
    assert document["status"] == "Failed (1 of 4 steps done)"
    assert (
        document["action"] == "rollback from v42 to v41 stopped; fix the cause, then run: lastgood resume rb-0123456789"
    )
    assert document["eta"] == "unknown: the rollback needs a person"
    assert document["text"].splitlines()[0] == "Issue: SEV1: api error rate above 5%"
    assert document["subject"].startswith("[URGENT] Rollback failed shop prod")


def test_webhook_refuses_to_follow_a_redirect(receiver: Receiver) -> None:
    receiver.answers.append((307, {"Location": receiver.url + "/elsewhere"}))
    with pytest.raises(NotifyError, match="HTTP 307"):
        WebhookNotifier(WebhookSettings(url=receiver.url + "/hook", secret="s3cr3t")).send(sample())
    assert [path for path, _, _ in receiver.requests] == ["/hook"]


def test_webhook_to_a_closed_port_raises_notify_error() -> None:
    server = Receiver()
    url = server.url
    server.close()
    with pytest.raises(NotifyError, match="webhook"):
        WebhookNotifier(WebhookSettings(url=url, secret="s3cr3t"), timeout=2).send(sample())


# --- a real SMTP server --------------------------------------------------------------------------------------


class SmtpServer:
    """Enough SMTP for smtplib: EHLO/HELO, STARTTLS (with a certificate), AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def __init__(self, tls: ssl.SSLContext | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.mails: list[dict[str, Any]] = []
        self.auth: list[tuple[str, str, bool]] = []  # user, password, over TLS
        smtp = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")
                self.wfile.flush()

            def start_tls(self) -> None:
                assert tls is not None
                self.reply("220 ready to start TLS")
                self.connection = tls.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")
                self.secure = True

            def handle(self) -> None:
                self.secure = False
                envelope: dict[str, Any] = {"rcpt": []}
                self.reply("220 localhost test ESMTP")
                while line := self.rfile.readline():
                    verb, _, argument = line.decode().rstrip("\r\n").partition(" ")
                    verb = verb.upper()
                    if verb == "EHLO":
                        extensions = ["AUTH PLAIN"] + (["STARTTLS"] if tls and not self.secure else [])
                        lines = ["localhost", *extensions]
                        for text in lines[:-1]:
                            self.wfile.write(f"250-{text}\r\n".encode())
                        self.reply(f"250 {lines[-1]}")
                    elif verb == "HELO" or verb in ("NOOP", "RSET"):
                        self.reply("250 ok")
                    elif verb == "STARTTLS" and tls and not self.secure:
                        self.start_tls()
                    elif verb == "AUTH":
                        _, _, response = argument.partition(" ")
                        _, user, password = base64.b64decode(response).decode().split("\0")
                        smtp.auth.append((user, password, self.secure))
                        ok = credentials is None or (user, password) == credentials
                        self.reply("235 accepted" if ok else "535 authentication failed")
                    elif verb == "MAIL":
                        envelope["from"] = argument.split(":", 1)[1].split()[0].strip("<>")
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        envelope["rcpt"].append(argument.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        envelope["data"] = self.read_data()
                        envelope["tls"] = self.secure
                        smtp.mails.append(envelope)
                        envelope = {"rcpt": []}
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

            def read_data(self) -> bytes:
                lines = []
                while (line := self.rfile.readline()) != b".\r\n":
                    lines.append(line[1:] if line.startswith(b"..") else line)
                return b"".join(lines)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (as an IP SAN) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def email_settings(port: int, **extra: Any) -> EmailSettings:
    data = {"smtp_host": "127.0.0.1", "smtp_port": port, "from": "lastgood@example.com"}
    data["to"] = ["oncall@example.com", "sre@example.com"]
    return EmailSettings.model_validate(data | extra)


def parse(mail: dict[str, Any]) -> EmailMessage:
    parsed = message_from_bytes(mail["data"], policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_email_delivers_the_template_to_every_recipient() -> None:
    server = SmtpServer()
    try:
        EmailNotifier(email_settings(server.port)).send(sample("rollback-succeeded", steps_done=4))
    finally:
        server.close()
    (mail,) = server.mails
    assert mail["from"] == "lastgood@example.com"
    assert mail["rcpt"] == ["oncall@example.com", "sre@example.com"]
    parsed = parse(mail)
    assert parsed["Subject"] == "[RESOLVED] Rolled back shop prod (rb-0123456789): Complete (4 of 4 steps done)"
    assert parsed["X-Lastgood-Event"] == "rollback-succeeded"
    body = parsed.get_content()
    assert body.splitlines()[:5] == [
        "Issue: SEV1: api error rate above 5%",
        "Impact: users of shop in prod may be affected",
        "Action: rolled back from v42 to v41",
        "ETA: done",
        "Status: Complete (4 of 4 steps done)",
    ]
    assert "- requested by lastgood-guard" in body
    assert server.auth == [] and mail["tls"] is False


def test_email_starttls_then_login_and_the_password_stays_out_of_the_mail(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = SmtpServer(tls=server_context, credentials=("lastgood", "smtp-pass-0071"))
    settings = email_settings(server.port, starttls=True, username="lastgood", password="smtp-pass-0071")
    redact.register_secret("smtp-pass-0071")
    message = sample(reason="login with smtp-pass-0071 failed")
    try:
        EmailNotifier(settings, ssl_context=ssl.create_default_context(cafile=str(cert))).send(message)
        with pytest.raises(NotifyError, match=r"SSLCertVerificationError|CERTIFICATE_VERIFY_FAILED"):
            EmailNotifier(settings).send(message)  # the system's CAs do not trust this certificate
    finally:
        server.close()
    assert server.auth[0] == ("lastgood", "smtp-pass-0071", True)  # logged in after STARTTLS, not before
    (mail,) = server.mails
    assert mail["tls"] is True
    assert b"smtp-pass-0071" not in mail["data"]
    assert "Issue: SEV1: login with **** failed" in parse(mail).get_content()


def test_email_rejected_login_raises_notify_error() -> None:
    server = SmtpServer(credentials=("lastgood", "right"))
    try:
        with pytest.raises(NotifyError, match="SMTPAuthenticationError"):
            EmailNotifier(email_settings(server.port, username="lastgood", password="wrong")).send(sample())
    finally:
        server.close()
    assert server.mails == []


# --- SNS on the moto server ----------------------------------------------------------------------------------


def topic_with_queue(aws: AwsClients, region: str) -> tuple[str, Any, str]:
    """A topic subscribed by an SQS queue in `region`: (topic ARN, SQS client, queue URL)."""
    sns = boto3.client("sns", region_name=region, endpoint_url=aws.endpoint_url)
    sqs = boto3.client("sqs", region_name=region, endpoint_url=aws.endpoint_url)
    topic_arn = sns.create_topic(Name="lastgood-rollbacks")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, sqs, queue_url


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_sns_publishes_subject_message_and_attributes(aws: AwsClients) -> None:
    topic_arn, sqs, queue_url = topic_with_queue(aws, "us-east-1")
    SnsNotifier(SnsSettings(topic_arn=topic_arn), aws).send(sample("approval-needed", approvals_needed=2))
    (envelope,) = received(sqs, queue_url)
    assert envelope["TopicArn"] == topic_arn
    assert envelope["Subject"] == "[URGENT] Approval needed to roll back shop prod (rb-0123456789): Awaiting approval"
    lines = envelope["Message"].splitlines()
    assert [line.split(": ")[0] for line in lines[:5]] == ["Issue", "Impact", "Action", "ETA", "Status"]
    assert "Action: waiting for 2 approvals (an approver) to roll back from v42 to v41" in lines
    assert "ETA: about 2m once approved" in lines
    assert envelope["MessageAttributes"]["event"] == {"Type": "String", "Value": "approval-needed"}


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_sns_publishes_to_a_topic_in_another_region(aws: AwsClients) -> None:
    topic_arn, sqs, queue_url = topic_with_queue(aws, "eu-west-1")
    assert ":eu-west-1:" in topic_arn and aws.region == "us-east-1"
    SnsNotifier(SnsSettings(topic_arn=topic_arn), aws).send(sample())
    (envelope,) = received(sqs, queue_url)
    assert envelope["Subject"].startswith("[URGENT] Rolling back shop prod")


def test_sns_missing_topic_raises_a_lastgood_error(aws: AwsClients) -> None:
    arn = "arn:aws:sns:us-east-1:123456789012:nope"
    with pytest.raises(AwsError, match="sns:Publish"):
        SnsNotifier(SnsSettings(topic_arn=arn), aws).send(sample())


# --- from the file, through the dispatcher ------------------------------------------------------------------


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_every_channel_from_the_file_delivers_and_a_broken_one_is_recorded(aws: AwsClients) -> None:
    """One Slack, SNS, email, webhook each, plus a webhook that answers 500: four deliver, one is recorded."""
    slack, hook, broken = Receiver(), Receiver(), Receiver()
    broken.answers += [(500, {})] * 3
    smtp = SmtpServer()
    topic_arn, sqs, queue_url = topic_with_queue(aws, "us-east-1")
    settings = Notifications.model_validate(
        {
            "channels": [
                {"slack": {"webhook_url": slack.url + "/services/x"}},
                {"sns": {"topic_arn": topic_arn}},
                {"email": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "from": "lg@x.io", "to": ["a@x.io"]}},
                {"webhook": {"url": hook.url, "secret": "hook-secret-1"}},
                {"webhook": {"url": broken.url, "secret": "hook-secret-2"}},
            ],
            "retries": 2,
        }
    )
    notifiers = build_notifiers(settings, aws)
    assert [n.name for n in notifiers] == [
        "channels[0].slack",
        "channels[1].sns",
        "channels[2].email",
        "channels[3].webhook",
        "channels[4].webhook",
    ]
    failures: list[tuple[str, str, str]] = []
    dispatcher = Dispatcher(notifiers, lambda n, m, e: failures.append((n, m.event, e)), settings.retries, 0.01)
    try:
        dispatcher.send(sample("rollback-succeeded"))
        assert dispatcher.close(timeout=20)
    finally:
        for server in (slack, hook, broken, smtp):
            server.close()
    assert len(slack.requests) == 1 and len(hook.requests) == 1 and len(smtp.mails) == 1
    assert len(received(sqs, queue_url)) == 1
    assert len(broken.requests) == 3  # 1 + retries
    ((name, event, error),) = failures
    assert (name, event) == ("channels[4].webhook", "rollback-succeeded")
    assert "HTTP 500" in error and "gave up after 3 attempts" in error


def test_aws_clients_for_another_region_keep_the_endpoint(aws: AwsClients) -> None:
    from lastgood.notify.sns import _clients_for

    other = _clients_for(aws, "arn:aws:sns:ap-south-1:123456789012:t")
    assert other.region == "ap-south-1" and other.endpoint_url == aws.endpoint_url
    assert _clients_for(aws, "arn:aws:sns:us-east-1:123456789012:t") is aws
