"""The SMTP connector against a real SMTP server: the sandbox's aiosmtpd sink, and small aiosmtpd servers of
our own that refuse recipients the way real servers do."""
from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest
from aiosmtpd.controller import Controller

from connectors.errors import InvalidRequest, Unauthorized, Unavailable
from connectors.mail import Mailer, MailTemplateError
from connectors.policy import Policy

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
def refusing_server():
    started = []

    def start(reply: str) -> tuple[Refusing, int]:
        handler = Refusing(reply)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        started.append(controller)
        return handler, controller.port

    yield start
    for controller in started:
        controller.stop()


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
