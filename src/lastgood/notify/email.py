"""Email over SMTP: one plain-text message per notification; STARTTLS and login when the file asks for them."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from lastgood.aws.clients import AwsClients
from lastgood.config.plugins import ChannelSettings
from lastgood.notify.base import Message, NotifyError

if TYPE_CHECKING:
    import ssl


class EmailSettings(ChannelSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)

    smtp_host: str
    smtp_port: int = 25
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password: str | None = Field(default=None, description="Use ${VAR}.")
    starttls: bool = False


def email_of(message: Message, sender: str, to: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain="lastgood")
    mail["X-Lastgood-Event"] = message.event
    mail["X-Lastgood-Rollback"] = message.rollback_id
    mail.set_content(message.text() + "\n")
    return mail


class EmailNotifier:
    """`ssl_context` verifies the server on STARTTLS (default: the system's CAs and hostname checking)."""

    key: ClassVar[str] = "email"
    settings: ClassVar[type[ChannelSettings]] = EmailSettings

    @classmethod
    def build(cls, settings: ChannelSettings, aws: AwsClients, name: str) -> EmailNotifier:
        assert isinstance(settings, EmailSettings)
        return cls(settings, name=name)

    def __init__(
        self,
        settings: EmailSettings,
        name: str = "email",
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self._settings: EmailSettings = settings
        self._timeout = timeout
        self._ssl_context = ssl_context

    def send(self, message: Message) -> None:
        import smtplib  # here: smtplib and ssl cost every command that reads the file 30 ms
        import ssl

        s = self._settings
        mail = email_of(message.redacted(), s.sender, s.to)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                if s.starttls:
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if s.username:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(mail, from_addr=s.sender, to_addrs=s.to)
        except (smtplib.SMTPException, OSError) as error:
            raise NotifyError(f"{self.name}: {type(error).__name__}: {error}") from None
        if refused:
            raise NotifyError(f"{self.name}: recipients refused: {', '.join(sorted(refused))}")
