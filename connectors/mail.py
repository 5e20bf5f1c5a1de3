"""Outbound mail over SMTP: confirmation, survey, SLA alert and escalation messages from the templates in
`config/templates/` (`<name>.<language>.subject|txt|html`, Jinja2), sent as text + HTML alternatives.

Rendering is strict: a variable the template uses and the caller did not pass is an error, not an empty gap in
a customer's mail. HTML templates are autoescaped, so text a customer typed into the form cannot inject markup.
SMTP has no idempotency; a caller that needs a send to happen once passes a stable `message_id` and records the
send (flows/effects.py `send_once`). A send is retried inline only when the server certainly does not hold the
message (refused or timed-out connection, a 4xx reply); once the message went out after DATA, a lost reply is
MaybeSent and is not sent again.
"""
from __future__ import annotations

import contextlib
import contextvars
import email.utils
import re
import smtplib
import ssl
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from email.header import Header
from email.message import EmailMessage
from email.policy import EmailPolicy
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import jinja2

from core.addresses import InvalidAddress, mailbox
from core.settings import ROOT, Settings

from .errors import InvalidRequest, MaybeSent, Unauthorized, Unavailable, VendorError
from .policy import Policy, backoff

TEMPLATES = ROOT / "config" / "templates"
LANGUAGES = ("hu", "en")
DEFAULT_LANGUAGE = "hu"   # the policies' language; an unknown language gets the Hungarian text
VENDOR = "smtp"
BUDAPEST = ZoneInfo("Europe/Budapest")


# Called just before DATA is sent: from then on the server may hold the message. A caller that records its sends notes that here (flows/effects.py `send_once`); if the callback
# raises, the message is not written, the session is closed and the server holds nothing.
_before_message: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "switchboard_before_message", default=None)


@contextlib.contextmanager
def before_message(callback: Callable[[], None]) -> Iterator[None]:
    """Within this block, every send calls `callback` at the point after which the server may hold the message."""
    token = _before_message.set(callback)
    try:
        yield
    finally:
        _before_message.reset(token)


class MailTemplateError(ValueError):
    """A template is missing or needs a variable the caller did not pass: a bug to fix, never retried."""


def huf(amount: Any, language: str = DEFAULT_LANGUAGE) -> str:
    """100000 -> '100 000 Ft' (hu) or 'HUF 100,000' (en)."""
    value = f"{int(round(float(amount))):,}"
    return f"{value.replace(',', ' ')} Ft" if language == "hu" else f"HUF {value}"


def local_time(value: Any) -> str:
    """An aware datetime as Budapest wall-clock time ('2026-11-24 15:30'); anything else as it is."""
    if isinstance(value, datetime):
        moment: datetime = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(BUDAPEST).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=True,
    )
    env.filters["huf"] = huf
    env.filters["local_time"] = local_time
    return env


class Mailer:
    def __init__(self, host: str, port: int, mail_from: str, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0, templates: Path = TEMPLATES,
                 policy: Policy | None = None) -> None:
        self.host, self.port = host, port
        self.mail_from = mail_from
        self.username, self.password = username, password
        self.timeout = timeout
        self.template_dir = templates
        self.templates = _environment(templates)
        # A refused connection or a 4xx is retried briefly; a long outage goes back to the job queue.
        self.policy = policy or Policy(vendor=VENDOR, timeout=timeout, attempts=3,
                                       backoff=backoff(0.5, 5))

    @classmethod
    def from_settings(cls, settings: Settings, policy: Policy | None = None) -> "Mailer":
        env = settings.env
        return cls(env.smtp_host, env.smtp_port, env.mail_from, username=env.smtp_username,
                   password=env.secret("smtp_password") or None, timeout=settings.config.timeouts_seconds,
                   policy=policy)

    # ------------------------------------------------------------ rendering

    def render(self, template: str, language: str, **context: Any) -> tuple[str, str, str]:
        """(subject, text, html) of `template` in `language`."""
        language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        context.setdefault("language", language)
        parts = []
        for suffix in ("subject", "txt", "html"):
            name = f"{template}.{language}.{suffix}"
            try:
                parts.append(self.templates.get_template(name).render(**context))
            except jinja2.TemplateNotFound:
                raise MailTemplateError(f"mail template {name} not found in {self.template_dir}") from None
            except jinja2.UndefinedError as exc:
                raise MailTemplateError(f"mail template {name}: {exc.message} (pass it to send())") from None
        subject = " ".join(parts[0].split())  # one line: a newline in a header would be an injection
        return subject, parts[1], parts[2]

    def build(self, to: str | Iterable[str], template: str, language: str, message_id: str | None = None,
              **context: Any) -> EmailMessage:
        recipients = [to] if isinstance(to, str) else list(to)
        for recipient in recipients:
            try:
                mailbox(recipient)  # the To header is parsed for the envelope: "a,b@x" would reach b
            except InvalidAddress as exc:
                raise InvalidRequest(VENDOR, f"recipient is not a single mailbox: {exc}") from None
        subject, text, html = self.render(template, language, **context)
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = ", ".join(recipients)
        _set_subject(msg, subject)
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg["Message-ID"] = _message_id(message_id, self.mail_from)
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        # After add_alternative, which moves every Content-* header of the message into the text part.
        msg["Content-Language"] = language if language in LANGUAGES else DEFAULT_LANGUAGE
        return msg

    # ------------------------------------------------------------ sending

    def send(self, to: str | Iterable[str], template: str, language: str, message_id: str | None = None,
             **context: Any) -> str:
        """Render and send; the Message-ID. Pass a stable `message_id` to make a retried send recognisable."""
        msg = self.build(to, template, language, message_id=message_id, **context)
        self.policy.call(lambda: self._deliver(msg))
        return str(msg["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        if self.port == 465:  # implicit TLS (SMTPS)
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _login(self, smtp: smtplib.SMTP) -> None:
        if self.username and not isinstance(smtp, smtplib.SMTP_SSL):
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                # Never send credentials in clear text.
                raise Unauthorized(VENDOR, "the server offers no STARTTLS; credentials not sent")
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if self.username:
            smtp.login(self.username, self.password or "")

    def _deliver(self, msg: EmailMessage) -> None:
        """One SMTP session. Until the server answered 354 to DATA and the message went out it holds nothing to
        deliver, and a failure is a typed error the policy may retry; after that, silence may hide an acceptance:
        MaybeSent. `send_message` cannot tell those apart, so the session is spelled out with smtplib's public
        commands (MAIL, RCPT, DATA), the way its `sendmail` runs them."""
        smtp = None
        accepted = in_data = False
        try:
            smtp = self._connect()
            self._login(smtp)
            smtp.ehlo_or_helo_if_needed()
            sender, recipients, options, flat = _envelope(smtp, msg)
            code, reply = smtp.mail(sender, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            refused = {}
            for recipient in recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    refused[recipient] = (code, reply)
            if len(refused) == len(recipients):
                raise smtplib.SMTPRecipientsRefused(refused)
            # From here a lost connection may hide an acceptance; one lost before the 354 is counted so too, on
            # the safe side (no second mail). A refusal of DATA is a reply, which _failure reads as decided.
            in_data = True
            if (mark := _before_message.get()) is not None:
                mark()  # before DATA rather than at its 354: the same safe side as in_data
            code, reply = smtp.data(flat)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
            accepted = True
        except (smtplib.SMTPException, OSError) as exc:
            raise _failure(exc, maybe_sent=in_data) from None
        finally:
            if smtp is not None:
                _end(smtp, accepted)


def _envelope(smtp: smtplib.SMTP, msg: EmailMessage) -> tuple[str, list[str], list[str], bytes]:
    """Sender, recipients, MAIL options and the message as SMTP carries it, as `send_message` derives them (our
    messages have From and To only). A non-ASCII address needs the server's SMTPUTF8."""
    sender = email.utils.getaddresses([str(msg["From"])])[0][1]
    recipients = [address for _, address in email.utils.getaddresses([str(msg["To"])])]
    # Our messages are made with the default EmailPolicy, the one with `utf8`.
    policy = cast(EmailPolicy, msg.policy).clone(linesep="\r\n")
    options: list[str] = []
    if not "".join([sender, *recipients]).isascii():
        if not smtp.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("an address needs SMTPUTF8, which the server does not offer")
        policy, options = policy.clone(utf8=True), ["SMTPUTF8", "BODY=8BITMIME"]
    return sender, recipients, options, msg.as_bytes(policy=policy)


def _end(smtp: smtplib.SMTP, accepted: bool) -> None:
    """QUIT after an accepted message, whose fate no QUIT reply can change (smtplib's `with` would raise on one
    that is not 221, and the send be retried); after a failure, just close."""
    try:
        if accepted:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def _failure(exc: Exception, maybe_sent: bool) -> VendorError:
    """The typed error of a failed session. A 4xx or 5xx reply is the server's decision, even to the final dot
    (it did not take the message); a timeout, a dropped connection or an unreadable reply after DATA is not."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _refused(exc.recipients)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Unauthorized(VENDOR, _text(exc.smtp_error), exc.smtp_code)
    decided = isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 600
    if maybe_sent and not decided:
        return MaybeSent(VENDOR, f"no reply to the message ({type(exc).__name__}); the server may have accepted it")
    if isinstance(exc, smtplib.SMTPResponseException):  # sender refused, data refused, other replies
        cls = InvalidRequest if 500 <= exc.smtp_code < 600 else Unavailable
        return cls(VENDOR, _text(exc.smtp_error), exc.smtp_code)
    return Unavailable(VENDOR, f"{type(exc).__name__}: {exc}")  # refused or dropped connection, timeout, TLS


def _set_subject(msg: EmailMessage, subject: str) -> None:
    if subject.isascii():
        msg["Subject"] = subject
        return
    # CPython's header folder (3.11) drops the space where it splits a line between two encoded words
    # ("Nem működik" arrives as "Nemműködik"); the legacy encoder splits inside encoded words and keeps it.
    msg.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode())


def _message_id(given: str | None, mail_from: str) -> str:
    domain = email.utils.parseaddr(mail_from)[1].rpartition("@")[2] or "switchboard.local"
    if not given:
        return email.utils.make_msgid(domain=domain)
    given = given.strip().strip("<>")
    return f"<{given}>" if "@" in given else f"<{given}@{domain}>"


def _refused(recipients: dict[str, tuple[int, bytes]]) -> VendorError:
    """Every recipient refused: permanent (5xx) only if every refusal is permanent, else worth a retry."""
    codes = [code for code, _ in recipients.values()]
    # A refusal usually quotes the address ("450 4.2.1 <anna@example.com>: mailbox busy"), and the error's text
    # reaches logs and tracebacks: the address goes, the server's code and reason stay.
    message = "; ".join(f"{code} {_without_addresses(_text(reply))}" for code, reply in recipients.values())
    if codes and all(500 <= code < 600 for code in codes):
        return InvalidRequest(VENDOR, f"recipient refused: {message}", max(codes))
    return Unavailable(VENDOR, f"recipient deferred: {message}", max(codes) if codes else None)


ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")


def _without_addresses(text: str) -> str:
    return ADDRESS.sub("<recipient>", text)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
