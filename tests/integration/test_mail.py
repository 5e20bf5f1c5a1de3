"""The SMTP connector against a real SMTP server: the sandbox's aiosmtpd sink, and small aiosmtpd servers of
our own that refuse, stall or hang up the way real servers do."""
from __future__ import annotations

import asyncio
import socket
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from connectors.errors import InvalidRequest, MaybeSent, Unauthorized, Unavailable
from connectors.mail import Mailer, MailTemplateError
from connectors.policy import Policy
from core import store

from .flowkit import fast_vendors, put_form, row, run, tickets

FAST = dict(attempts=3, timeout=2.0, backoff=lambda state: 0.01)


def mailer(settings, **overrides) -> Mailer:
    policy = Policy(vendor="smtp", **FAST)
    mailer = Mailer.from_settings(settings, policy=policy)
    for name, value in overrides.items():
        setattr(mailer, name, value)
    return mailer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_confirmation_in_hungarian_reaches_the_sink(settings, sandbox):
    message_id = mailer(settings).send("anna@example.com", "confirmation", "hu", ticket_id="#4711",
                                       subject="Nem működik a belépés", name="Kiss Anna")
    [mail] = sandbox.mail()
    assert mail["to"] == ["anna@example.com"]
    assert mail["from"] == settings.env.mail_from
    assert "#4711" in mail["subject"] and "Nem működik a belépés" in mail["subject"]
    assert "Tisztelt Kiss Anna!" in mail["text"]
    assert "2 munkanapon belül" in mail["text"]
    assert "<strong>#4711</strong>" in mail["html"]
    assert mail["message_id"] == message_id
    assert mail["headers"]["Content-Language"] == "hu"


def test_confirmation_in_english_and_default_greeting(settings, sandbox):
    mailer(settings).send("bob@example.com", "confirmation", "en", ticket_id="#12", subject="Invoice")
    [mail] = sandbox.mail()
    assert mail["subject"] == "We have received your request (#12): Invoice"
    assert "Dear Customer," in mail["text"]
    assert "within 2 working days" in mail["text"]
    assert 'lang="en"' in mail["html"]


def test_every_template_renders_in_both_languages(settings):
    contexts = {
        "confirmation": {"ticket_id": "#1", "subject": "s"},
        "survey": {"ticket_id": "#1", "link": "https://example.com/survey/t"},
        "sla_alert": {"ticket_id": "#1", "subject": "s", "opened_at": datetime(2026, 1, 5, 8, tzinfo=timezone.utc),
                      "due_at": datetime(2026, 1, 7, 15, 30, tzinfo=timezone.utc)},
        "escalation": {"ticket_id": "#1", "subject": "s", "loss_amount": 250000},
    }
    m = mailer(settings)
    for template, context in contexts.items():
        hu, en = m.render(template, "hu", **context), m.render(template, "en", **context)
        assert hu != en, template
        for subject, text, html in (hu, en):
            assert "#1" in subject and "\n" not in subject
            assert text.strip() and "<html" in html
    # Budapest wall-clock time in the staff alert (UTC+1 in January), amounts in each language's format.
    assert "2026-01-05 09:00" in m.render("sla_alert", "hu", **contexts["sla_alert"])[1]
    assert "250 000 Ft" in m.render("escalation", "hu", **contexts["escalation"])[0]
    assert "HUF 250,000" in m.render("escalation", "en", **contexts["escalation"])[0]


def test_survey_link_and_stable_message_id(settings, sandbox):
    link = "https://support.example.com/survey/abc?x=1&y=2"
    returned = mailer(settings).send("anna@example.com", "survey", "hu", message_id="survey-17",
                                     ticket_id="#17", link=link)
    [mail] = sandbox.mail()
    assert returned == mail["message_id"] == "<survey-17@example.com>"
    assert link in mail["text"]
    assert 'href="https://support.example.com/survey/abc?x=1&amp;y=2"' in mail["html"]


def test_user_text_is_escaped_in_html_only(settings, sandbox):
    evil = '<script>alert("x")</script> & <b>bold</b>'
    mailer(settings).send("anna@example.com", "confirmation", "en", ticket_id="#1", subject=evil,
                          name='<img src=x onerror="steal()">')
    [mail] = sandbox.mail()
    assert "<script>" not in mail["html"] and "<img" not in mail["html"]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in mail["html"]
    assert evil in mail["text"]  # plain text is not HTML: no entities there


def test_newline_in_subject_cannot_inject_headers(settings, sandbox):
    mailer(settings).send("anna@example.com", "confirmation", "en", ticket_id="#1",
                          subject="hello\r\nBcc: victim@example.com")
    [mail] = sandbox.mail()
    assert mail["to"] == ["anna@example.com"]
    assert "Bcc" not in mail["headers"]


def test_missing_variable_is_a_clear_error_and_nothing_is_sent(settings, sandbox):
    with pytest.raises(MailTemplateError, match=r"confirmation\.hu\.subject: 'ticket_id' is undefined"):
        mailer(settings).send("anna@example.com", "confirmation", "hu", subject="x")
    with pytest.raises(MailTemplateError, match="'link' is undefined"):
        mailer(settings).send("anna@example.com", "survey", "en", ticket_id="#1")
    assert sandbox.mail() == []


def test_unknown_template_is_a_clear_error(settings):
    with pytest.raises(MailTemplateError, match="no_such.en.subject not found"):
        mailer(settings).send("anna@example.com", "no_such", "en")


def test_unknown_language_falls_back_to_hungarian(settings, sandbox):
    mailer(settings).send("anna@example.com", "confirmation", "de", ticket_id="#1", subject="s")
    assert sandbox.mail()[0]["subject"].startswith("Bejelentését rögzítettük")


def test_sink_down_is_unavailable(settings, sandbox):
    with pytest.raises(Unavailable) as caught:
        mailer(settings, port=free_port()).send("anna@example.com", "confirmation", "en", ticket_id="#1",
                                                subject="s")
    assert caught.value.transient
    assert sandbox.mail() == []


def test_credentials_are_never_sent_without_starttls(settings, sandbox):
    # The sink offers no STARTTLS: with a username set, the mailer refuses rather than log in in clear text.
    with pytest.raises(Unauthorized, match="STARTTLS"):
        mailer(settings, username="user", password="secret").send(
            "anna@example.com", "confirmation", "en", ticket_id="#1", subject="s")
    assert sandbox.mail() == []


class Refusing:
    """An SMTP server that refuses every recipient with `reply`, counting the attempts."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.attempts = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.attempts += 1
        return self.reply


@pytest.fixture
def smtp_server():
    """Start a real SMTP server (aiosmtpd) for a handler on a free port; its port. All stop after the test."""
    started = []

    def start(handler: Any) -> int:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        started.append(controller)
        return controller.port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def refusing_server(smtp_server):
    def start(reply: str) -> tuple[Refusing, int]:
        handler = Refusing(reply)
        return handler, smtp_server(handler)
    return start


def test_permanent_recipient_refusal_is_invalid_request_without_retry(settings, refusing_server):
    handler, port = refusing_server("550 5.1.1 mailbox unavailable")
    with pytest.raises(InvalidRequest, match="mailbox unavailable") as caught:
        mailer(settings, host="127.0.0.1", port=port).send("nobody@example.com", "confirmation", "en",
                                                           ticket_id="#1", subject="s")
    assert caught.value.status == 550
    assert handler.attempts == 1


def test_temporary_recipient_refusal_is_retried_then_unavailable(settings, refusing_server):
    handler, port = refusing_server("451 4.3.0 try again later")
    with pytest.raises(Unavailable, match="try again later"):
        mailer(settings, host="127.0.0.1", port=port).send("anna@example.com", "confirmation", "en",
                                                           ticket_id="#1", subject="s")
    assert handler.attempts == FAST["attempts"]


def test_a_deferral_quoting_the_recipient_keeps_the_address_out_of_the_error_and_the_logs(settings, refusing_server,
                                                                                          caplog):
    handler, port = refusing_server("450 4.2.1 <deferred.dora@example.com>: mailbox busy")
    caplog.set_level("DEBUG")
    with pytest.raises(Unavailable) as caught:
        mailer(settings, host="127.0.0.1", port=port).send("deferred.dora@example.com", "confirmation", "en",
                                                           ticket_id="#1", subject="s")
    assert "mailbox busy" in str(caught.value) and caught.value.status == 450
    assert "deferred.dora" not in str(caught.value)
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]  # mail.log: the test's SMTP server
    assert ours and not [r for r in ours if "deferred.dora" in r.getMessage()]


def test_send_once_marks_the_intent_maybe_sent_when_the_server_answers_354(settings, sandbox):
    """The intent becomes `maybe-sent` between the server's 354 and the message: a process killed after that is
    not sent again; killed before it, the intent stays `sending` and a retry may send."""
    from flows import effects
    seen = []

    def send() -> str:
        with store.session() as s:
            seen.append(dict(store.find_effect(s, "mail:354").detail))
        return mailer(settings).send("point@example.com", "confirmation", "en", ticket_id="#1", subject="s")

    def watch() -> None:
        with store.session() as s:
            seen.append(("before", dict(store.find_effect(s, "mail:354").detail)))

    real = effects._committing
    effects._committing = lambda lease: (real(lease), watch())  # type: ignore[assignment]
    try:
        assert effects.send_once("mail:354", send) is True
    finally:
        effects._committing = real  # type: ignore[assignment]
    assert seen == [{"state": "sending"}, ("before", {"state": "maybe-sent"})]
    assert len(sandbox.mail()) == 1


def test_a_superseded_intent_stops_the_message_before_the_server_holds_it(settings, sandbox):
    from flows import effects

    def send() -> str:
        with store.session() as s:  # another attempt took the intent over while this one stalled
            store.find_effect(s, "mail:late").created_at = effects._now() + timedelta(seconds=1)
        return mailer(settings).send("late@example.com", "confirmation", "en", ticket_id="#1", subject="s")

    with pytest.raises(effects.Superseded):
        effects.send_once("mail:late", send)
    assert sandbox.mail() == []


# ---------------------------------------------------------------- retry only what certainly was not accepted

STALL = 1.0        # how long a stalling server keeps quiet: longer than the mailer's timeout below
TIMEOUT = 0.3


class Scripted:
    """An aiosmtpd handler that misbehaves at one command (`MAIL="stall"`, `DATA="drop"`, `RCPT="451 ..."`) the
    first `times` it sees it, and otherwise answers as a mail server does. `received` holds every message that
    arrived whole, `accepted` those answered 250."""

    def __init__(self, times: int = 1, **misbehave: str) -> None:
        self.misbehave, self.times = misbehave, times
        self.seen: dict[str, int] = {}
        self.received: list[bytes] = []
        self.accepted: list[bytes] = []

    async def _act(self, command: str, server) -> str | None:
        """A reply to give instead of the normal one, or None to carry on."""
        self.seen[command] = self.seen.get(command, 0) + 1
        action = self.misbehave.get(command)
        if action is None or self.seen[command] > self.times:
            return None
        if action == "stall":
            await asyncio.sleep(STALL)
            return None
        if action == "drop":
            server.transport.close()
            return "250 OK"  # never reaches the client
        return action

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        return await self._act("MAIL", server) or "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return await self._act("RCPT", server) or "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.content)
        reply = await self._act("DATA", server) or "250 Message accepted for delivery"
        if reply.startswith("250") and not server.transport.is_closing():
            self.accepted.append(envelope.content)
        return reply

    async def handle_QUIT(self, server, session, envelope):
        return await self._act("QUIT", server) or "221 Bye"


@pytest.fixture
def scripted(smtp_server):
    def start(times: int = 1, **misbehave: str) -> tuple[Scripted, int]:
        handler = Scripted(times, **misbehave)
        return handler, smtp_server(handler)
    return start


def send_to(settings, port: int) -> str:
    return mailer(settings, host="127.0.0.1", port=port, timeout=TIMEOUT).send(
        "anna@example.com", "confirmation", "en", ticket_id="#1", subject="s")


@pytest.mark.parametrize("misbehave", ["stall", "drop"])
def test_no_reply_after_the_message_went_out_is_maybe_sent_and_not_retried(settings, scripted, misbehave):
    handler, port = scripted(DATA=misbehave)
    with pytest.raises(MaybeSent) as caught:
        send_to(settings, port)
    assert caught.value.transient  # the job may carry on past the send: its record says not to send again
    assert (handler.seen["MAIL"], handler.seen["DATA"]) == (1, 1)  # one session, no inline retry
    assert len(handler.received) == 1


def test_a_lost_quit_after_an_accepted_message_is_a_success(settings, scripted):
    # smtplib's `with` raised on a QUIT reply other than 221: the policy retried an accepted message.
    handler, port = scripted(QUIT="421 4.3.2 shutting down")
    message_id = send_to(settings, port)
    assert len(handler.accepted) == 1 and handler.seen["MAIL"] == 1
    assert message_id.encode() in handler.accepted[0]


@pytest.mark.parametrize("misbehave", [{"MAIL": "stall"}, {"MAIL": "451 4.3.0 try again"},
                                       {"RCPT": "451 4.7.1 greylisted"}, {"DATA": "451 4.3.0 queue full"}],
                         ids=["MAIL timeout", "MAIL 451", "RCPT 451", "451 to the message"])
def test_a_failure_before_acceptance_is_retried_and_delivers_once(settings, scripted, misbehave):
    handler, port = scripted(**misbehave)
    send_to(settings, port)
    assert handler.seen["MAIL"] == 2  # one retry, in a new session
    assert len(handler.accepted) == 1


def test_a_permanent_refusal_of_the_message_is_not_retried(settings, scripted):
    handler, port = scripted(times=9, DATA="554 5.6.0 message refused")
    with pytest.raises(InvalidRequest, match="message refused"):
        send_to(settings, port)
    assert (handler.seen["MAIL"], handler.seen["DATA"]) == (1, 1) and handler.accepted == []


@pytest.fixture
def silent_server():
    """A TCP server that takes connections and never greets: the mailer times out while connecting."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    connections: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connections.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], connections
    stop.set()
    thread.join()
    listener.close()
    for connection in connections:
        connection.close()


def test_a_timeout_while_connecting_is_retried(settings, silent_server):
    port, connections = silent_server
    with pytest.raises(Unavailable) as caught:
        send_to(settings, port)
    assert not isinstance(caught.value, MaybeSent)
    assert len(connections) == FAST["attempts"]


# ---------------------------------------------------------------- what the caller's retry does

def test_a_confirmation_that_may_have_been_sent_is_not_sent_again_by_the_job_retry(settings, scripted):
    handler, port = scripted(DATA="stall")
    mail = fast_vendors().mail
    mail.host, mail.port, mail.timeout = "127.0.0.1", port, TIMEOUT
    inbox_id = put_form()
    with pytest.raises(MaybeSent):
        run(inbox_id)
    assert row(inbox_id).status == "failed" and row(inbox_id).last_error == "MaybeSent: smtp"
    assert run(inbox_id) == "done"
    [ticket] = tickets()
    assert ticket.confirmed_at is not None
    assert len(handler.received) == 1
