"""The satisfaction survey end to end over real HTTP: the mail through the sandbox's SMTP sink, the page through
the Flask app, the answer's writes through the connectors to the sandbox's HubSpot and HappyFox."""
from __future__ import annotations

import dataclasses
import re
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from core import jobs, store
from core import settings as settings_module
from core.models import Audit, Customer, Effect, Identity, Ticket
from core.settings import Settings, SurveySpec
from flows import vendors
from flows.closure import survey
from flows.privacy import erasure
from webhooks.app import create_app

CLOSED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
LINK = re.compile(r"https?://\S+/survey/([A-Za-z0-9_.\-]+)")


@pytest.fixture
def immediate_jobs() -> Any:
    """huey's own immediate mode: a queued job runs at once, in the caller's thread."""
    jobs.huey.immediate = True
    yield jobs.huey
    jobs.huey.immediate = False


def with_survey(loaded: Settings, **spec: Any) -> Settings:
    config = loaded.config.model_copy(update={"survey": SurveySpec(**spec)})
    return settings_module.use(Settings(env=loaded.env, config=config))


def make_ticket(language: str = "hu", email: str | None = "anna.kovacs@example.com", *, happyfox_id: int | None = None,
                hubspot_ticket_id: str | None = None, hubspot_contact_id: str | None = None) -> int:
    with store.session() as s:
        customer = Customer(first_name="Anna", last_name="Kovács", language=language)
        s.add(customer)
        s.flush()
        for system, value in (("email", email), ("hubspot", hubspot_contact_id)):
            if value:
                s.add(Identity(customer_id=customer.id, system=system, value=value))
        ticket = Ticket(source_key=f"test:{uuid.uuid4().hex}", customer_id=customer.id, channel="form",
                        told_id="#SB-00042", happyfox_id=happyfox_id, hubspot_ticket_id=hubspot_ticket_id,
                        status="Closed", is_closed=True, closed_at=CLOSED_AT)
        s.add(ticket)
        s.flush()
        return ticket.id


def ticket_row(ticket_id: int) -> Ticket:
    with store.session() as s:
        return s.get(Ticket, ticket_id)


def reopen_and_close(ticket_id: int, closed_at: datetime) -> None:
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        ticket.is_closed, ticket.status = False, "Reopened"
    with store.session() as s:
        ticket = s.get(Ticket, ticket_id)
        ticket.is_closed, ticket.status, ticket.closed_at = True, "Closed", closed_at


def token_in(mail: dict[str, Any]) -> str:
    match = LINK.search(mail["text"])
    assert match, mail["text"]
    assert match.group(0) in mail["html"]
    return match.group(1)


def past_token(loaded: Settings, ticket_id: int, days_ago: int) -> str:
    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - days_ago * 86400
    serializer = URLSafeTimedSerializer(loaded.env.secret("secret_key"), salt="survey", signer=Past)
    return serializer.dumps({"t": ticket_id, "l": "en", "k": f"survey:{ticket_id}"})


# ---------------------------------------------------------------- sending

@pytest.mark.parametrize("language, subject_word, greeting", [("hu", "elégedett", "Tisztelt Kovács Anna!"),
                                                              ("en", "satisfied", "Dear Anna,")])
def test_closing_sends_one_survey_mail_in_the_customers_language(settings, sandbox, language, subject_word,
                                                                 greeting):
    ticket_id = make_ticket(language)
    assert survey.on_ticket_closed(ticket_id) is True

    mails = sandbox.mail()
    assert len(mails) == 1
    mail = mails[0]
    assert mail["to"] == ["anna.kovacs@example.com"]
    assert subject_word in mail["subject"].lower() and "#SB-00042" in mail["subject"]
    assert mail["text"].startswith(greeting)
    assert mail["headers"]["Content-Language"] == language
    assert mail["message_id"].startswith(f"<survey-{ticket_id}-")
    assert mail["text"].count(settings.env.public_base_url + "/survey/") == 1
    token = token_in(mail)
    row = ticket_row(ticket_id)
    assert row.survey_token == token and row.survey_sent_at is not None

    page = create_app(settings).test_client().get(f"/survey/{token}")
    assert page.status_code == 200
    assert f'<html lang="{language}">' in page.text and "#SB-00042" in page.text


def test_closing_three_times_still_sends_one_mail(settings, sandbox):
    ticket_id = make_ticket()
    results = [survey.on_ticket_closed(ticket_id) for _ in range(3)]
    assert results == [True, False, False]
    assert len(sandbox.mail()) == 1
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Audit).where(Audit.action == "survey.sent")) == 1


def test_reopen_and_close_sends_no_second_survey_by_default(settings, sandbox):
    ticket_id = make_ticket()
    survey.on_ticket_closed(ticket_id)
    first = ticket_row(ticket_id)
    reopen_and_close(ticket_id, CLOSED_AT + timedelta(days=2))
    assert survey.on_ticket_closed(ticket_id) is False
    assert len(sandbox.mail()) == 1
    assert ticket_row(ticket_id).survey_token == first.survey_token


def test_reopen_and_close_sends_a_second_survey_when_configured(settings, sandbox):
    with_survey(settings, resend_on_reclose=True)
    ticket_id = make_ticket("en")
    assert survey.on_ticket_closed(ticket_id) is True
    assert survey.on_ticket_closed(ticket_id) is False  # the same closure again
    first_token = token_in(sandbox.mail()[0])

    reopen_and_close(ticket_id, CLOSED_AT + timedelta(days=2))
    assert survey.on_ticket_closed(ticket_id) is True
    assert survey.on_ticket_closed(ticket_id) is False
    mails = sandbox.mail()
    assert len(mails) == 2
    second_token = token_in(mails[1])
    assert second_token != first_token
    client = create_app(settings_module.get()).test_client()
    assert client.get(f"/survey/{first_token}").status_code == 410  # replaced by the newer survey
    assert client.get(f"/survey/{second_token}").status_code == 200


def test_no_mail_address_sends_nothing(settings, sandbox):
    ticket_id = make_ticket(email=None)
    assert survey.on_ticket_closed(ticket_id) is False
    assert sandbox.mail() == []
    assert ticket_row(ticket_id).survey_sent_at is None


def test_a_customer_whose_erasure_is_under_way_gets_no_survey(settings, sandbox):
    """Erasure requested, its steps not all done yet (erased_at is only set by the last one): the person asked to
    be forgotten, so a closure meanwhile mails them nothing."""
    ticket_id = make_ticket()
    erasure.request(customer_id=ticket_row(ticket_id).customer_id, reason="request", actor="test")
    assert survey.on_ticket_closed(ticket_id) is False
    assert sandbox.mail() == []
    assert ticket_row(ticket_id).survey_token is None


def dead_smtp(loaded: Settings) -> None:
    """Point the mailer at a port nothing listens on, with a short back-off."""
    from connectors.policy import Policy
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    settings_module.use(Settings(env=loaded.env.model_copy(update={"smtp_port": dead_port}),
                                 config=loaded.config))
    vendors.get().mail.policy = Policy(vendor="smtp", timeout=1, attempts=2, backoff=lambda _: 0.01)


def test_smtp_down_sends_later_and_once(settings, sandbox):
    """A refused connection: the send fails, its intent is withdrawn, and the job's retry sends exactly once."""
    from connectors.errors import Unavailable
    ticket_id = make_ticket()
    dead_smtp(settings)
    with pytest.raises(Unavailable):
        survey.on_ticket_closed(ticket_id)
    assert ticket_row(ticket_id).survey_sent_at is None
    assert sandbox.mail() == []

    settings_module.use(settings)
    assert survey.on_ticket_closed(ticket_id) is True
    assert survey.on_ticket_closed(ticket_id) is False
    assert len(sandbox.mail()) == 1


def test_smtp_down_on_a_reclose_still_sends_that_closures_survey(settings, sandbox):
    from connectors.errors import Unavailable
    resend = with_survey(settings, resend_on_reclose=True)
    ticket_id = make_ticket()
    assert survey.on_ticket_closed(ticket_id) is True
    reopen_and_close(ticket_id, CLOSED_AT + timedelta(days=1))
    dead_smtp(resend)
    with pytest.raises(Unavailable):
        survey.on_ticket_closed(ticket_id)
    settings_module.use(resend)
    assert survey.on_ticket_closed(ticket_id) is True
    assert survey.on_ticket_closed(ticket_id) is False
    assert len(sandbox.mail()) == 2


# ---------------------------------------------------------------- the page

def test_expired_link_gets_the_expired_page(settings, sandbox):
    ticket_id = make_ticket("en")
    token = past_token(settings, ticket_id, days_ago=settings.config.survey.link_ttl_days + 1)
    with store.session() as s:
        s.get(Ticket, ticket_id).survey_token = token
    client = create_app(settings).test_client()
    for response in (client.get(f"/survey/{token}"),
                     client.post(f"/survey/{token}", data={"score": "5", "comment": "late"})):
        assert response.status_code == 410
        assert "expired" in response.text and '<html lang="en">' in response.text
    assert ticket_row(ticket_id).survey_answered_at is None
    # Still within the TTL: the same kind of token is accepted.
    fresh = past_token(settings, ticket_id, days_ago=settings.config.survey.link_ttl_days - 1)
    with store.session() as s:
        s.get(Ticket, ticket_id).survey_token = fresh
    assert client.get(f"/survey/{fresh}").status_code == 200


def test_forged_and_tampered_links_get_the_invalid_page(settings, sandbox):
    ticket_id = make_ticket()
    survey.on_ticket_closed(ticket_id)
    token = ticket_row(ticket_id).survey_token
    other_secret = URLSafeTimedSerializer("not-our-secret", salt="survey").dumps(
        {"t": ticket_id, "l": "hu", "k": f"survey:{ticket_id}"})
    payload, _, signature = token.rpartition(".")
    tampered = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    client = create_app(settings).test_client()
    for bad in (other_secret, tampered, "nonsense", token[:-5]):
        for response in (client.get(f"/survey/{bad}"), client.post(f"/survey/{bad}", data={"score": "1"})):
            assert response.status_code == 404, bad
            assert "Érvénytelen link" in response.text
    assert ticket_row(ticket_id).survey_answered_at is None


def test_link_for_a_ticket_that_is_gone_is_invalid(settings, sandbox):
    token = survey.make_token(999_999, "en", "survey:999999")
    assert create_app(settings).test_client().get(f"/survey/{token}?lang=en").status_code == 404


@pytest.mark.parametrize("score", ["0", "6", "abc", "", None])
def test_score_outside_1_to_5_shows_the_form_again_with_an_error(settings, sandbox, score):
    ticket_id = make_ticket("en")
    survey.on_ticket_closed(ticket_id)
    token = ticket_row(ticket_id).survey_token
    data = {"comment": "kept text"} | ({"score": score} if score is not None else {})
    response = create_app(settings).test_client().post(f"/survey/{token}", data=data)
    assert response.status_code == 400
    assert 'role="alert"' in response.text and 'id="score-error"' in response.text
    assert 'aria-describedby="score-error"' in response.text
    assert "from 1 to 5" in response.text
    assert "kept text</textarea>" in response.text
    assert ticket_row(ticket_id).survey_answered_at is None


def test_too_long_comment_is_refused_with_an_error(settings, sandbox):
    ticket_id = make_ticket("hu")
    survey.on_ticket_closed(ticket_id)
    token = ticket_row(ticket_id).survey_token
    response = create_app(settings).test_client().post(
        f"/survey/{token}", data={"score": "4", "comment": "x" * (survey.COMMENT_MAX_CHARS + 1)})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text and "legfeljebb" in response.text
    assert ticket_row(ticket_id).survey_answered_at is None


def test_page_language_follows_the_token_and_the_query(settings, sandbox):
    ticket_id = make_ticket("hu")
    survey.on_ticket_closed(ticket_id)
    token = ticket_row(ticket_id).survey_token
    client = create_app(settings).test_client()
    hu = client.get(f"/survey/{token}")
    assert '<html lang="hu">' in hu.text and "Mennyire volt elégedett" in hu.text
    assert hu.headers["Cache-Control"] == "no-store" and hu.headers["Referrer-Policy"] == "no-referrer"
    en = client.get(f"/survey/{token}?lang=en")
    assert '<html lang="en">' in en.text and "How satisfied" in en.text
    assert f'action="/survey/{token}?lang=en"' in en.text
    # Semantic form: a fieldset with a legend, five labelled radios, a labelled textarea, a real button.
    assert "<fieldset" in en.text and "<legend>" in en.text and "<script" not in en.text
    for n in range(1, 6):
        assert f'id="score-{n}" name="score" value="{n}"' in en.text and f'<label for="score-{n}">' in en.text
    assert '<label for="comment">' in en.text and '<button type="submit">' in en.text


def test_submit_thanks_then_already_answered(settings, sandbox):
    ticket_id = make_ticket("en")
    survey.on_ticket_closed(ticket_id)
    token = ticket_row(ticket_id).survey_token
    client = create_app(settings).test_client()
    thanks = client.post(f"/survey/{token}", data={"score": "5", "comment": "  Great help  "})
    assert thanks.status_code == 200 and "Thank you for your answer" in thanks.text
    row = ticket_row(ticket_id)
    assert (row.survey_score, row.survey_comment) == (5, "Great help")
    answered_at = row.survey_answered_at
    again = client.post(f"/survey/{token}", data={"score": "1"})
    assert again.status_code == 409 and "already been answered" in again.text
    reopened = client.get(f"/survey/{token}")
    assert reopened.status_code == 200 and "already been answered" in reopened.text and "<form" not in reopened.text
    row = ticket_row(ticket_id)
    assert (row.survey_score, row.survey_answered_at) == (5, answered_at)


# ---------------------------------------------------------------- answering and writing to the vendors

@pytest.fixture
def vendor_ticket(settings, sandbox) -> dict[str, Any]:
    """A ticket as intake leaves it: a HappyFox ticket, a HubSpot contact and a HubSpot ticket."""
    from connectors.happyfox import HappyFoxClient
    from connectors.hubspot import HubSpotClient
    hubspot, happyfox = HubSpotClient.from_settings(settings), HappyFoxClient.from_settings(settings)
    contact_id = hubspot.upsert_contact({"email": "anna.kovacs@example.com", "firstname": "Anna",
                                         "lastname": "Kovács"})
    hs_ticket = hubspot.create_ticket({"subject": "Nem működik a belépés", "hs_pipeline": "0",
                                       "hs_pipeline_stage": "1"}, contact_id=contact_id)
    hf_ticket = happyfox.create_ticket("Nem működik a belépés", "Részletek", 3, "anna.kovacs@example.com",
                                       name="Kovács Anna")
    ticket_id = make_ticket("hu", happyfox_id=hf_ticket.id, hubspot_ticket_id=hs_ticket.id,
                            hubspot_contact_id=str(contact_id))
    return {"id": ticket_id, "contact": str(contact_id), "hubspot": hs_ticket.id, "happyfox": str(hf_ticket.id)}


def private_notes(sandbox, happyfox_id: str) -> list[dict[str, Any]]:
    ticket = sandbox.state("happyfox")["tickets"][happyfox_id]
    return [u["message"] for u in ticket["updates"] if u.get("message") and u["message"]["message_type"] == "p"]


def test_answer_is_stored_once_and_written_to_hubspot_and_happyfox(settings, sandbox, vendor_ticket,
                                                                   immediate_jobs):
    survey.on_ticket_closed(vendor_ticket["id"])
    token = token_in(sandbox.mail()[0])
    client = create_app(settings).test_client()

    response = client.post(f"/survey/{token}", data={"score": "4", "comment": "Gyors és udvarias <b>válasz</b>"})
    assert response.status_code == 200 and "Köszönjük a válaszát" in response.text
    row = ticket_row(vendor_ticket["id"])
    assert (row.survey_score, row.survey_comment) == (4, "Gyors és udvarias <b>válasz</b>")
    assert row.survey_answered_at is not None

    hubspot = sandbox.state("hubspot")
    props = hubspot["tickets"][vendor_ticket["hubspot"]]["properties"]
    assert props["switchboard_survey_score"] == "4"
    assert props["switchboard_survey_comment"] == "Gyors és udvarias <b>válasz</b>"
    assert hubspot["contacts"][vendor_ticket["contact"]]["properties"]["switchboard_last_survey_score"] == "4"
    notes = private_notes(sandbox, vendor_ticket["happyfox"])
    assert len(notes) == 1 and "4/5" in notes[0]["text"] and "Gyors és udvarias" in notes[0]["text"]

    # A second submit: the "already answered" page, nothing stored or written again.
    sandbox.clear_calls()
    again = client.post(f"/survey/{token}", data={"score": "1", "comment": "changed my mind"})
    assert again.status_code == 409 and "már kitöltötték" in again.text
    assert client.get(f"/survey/{token}").status_code == 200
    assert ticket_row(vendor_ticket["id"]).survey_score == 4
    assert sandbox.calls("hubspot") == [] and sandbox.calls("happyfox") == []
    assert len(private_notes(sandbox, vendor_ticket["happyfox"])) == 1
    # A retried write job (at-least-once delivery) writes nothing twice either.
    key = f"survey:{vendor_ticket['id']}"
    survey.write_survey_response.call_local(vendor_ticket["id"], key)
    assert sandbox.calls("hubspot") == [] and sandbox.calls("happyfox") == []
    # Nor does one that crashed after adding the note but before recording it: the note's marker is found.
    with store.session() as s:
        s.delete(s.get(Effect, f"{key}:happyfox-note"))
    survey.write_survey_response.call_local(vendor_ticket["id"], key)
    assert [c["method"] for c in sandbox.calls("happyfox")] == ["GET"]
    assert len(private_notes(sandbox, vendor_ticket["happyfox"])) == 1


def test_write_job_retries_through_a_vendor_fault(settings, sandbox, vendor_ticket, immediate_jobs):
    survey.on_ticket_closed(vendor_ticket["id"])
    token = ticket_row(vendor_ticket["id"]).survey_token
    happyfox = vendors.get().happyfox
    happyfox.policy = dataclasses.replace(happyfox.policy, backoff=lambda _: 0.01)  # tiny back-off in tests
    sandbox.fault(service="happyfox", method="POST", path="/api/1.1/json/ticket/*", status=503, times=20)
    assert survey.record_response(token, "2", "") is True
    assert private_notes(sandbox, vendor_ticket["happyfox"]) == []
    key = f"survey:{vendor_ticket['id']}"
    with store.session() as s:
        assert s.get(Effect, f"{key}:hubspot-ticket") is not None  # what succeeded is not repeated
        assert s.get(Effect, f"{key}:written") is None
    sandbox.http.delete("/_sandbox/faults").raise_for_status()
    assert survey.sweep_survey_writes.call_local() == 1  # the sweep re-queues the unfinished write
    assert len(private_notes(sandbox, vendor_ticket["happyfox"])) == 1
    assert survey.sweep_survey_writes.call_local() == 0
    props = sandbox.state("hubspot")["tickets"][vendor_ticket["hubspot"]]["properties"]
    assert props["switchboard_survey_score"] == "2" and props["switchboard_survey_comment"] == ""




def test_concurrent_submits_store_one_answer(any_database, sandbox):
    """The conditional UPDATE, on SQLite and PostgreSQL: of many simultaneous submits exactly one is stored."""
    from concurrent.futures import ThreadPoolExecutor
    ticket_id = make_ticket()
    survey.on_ticket_closed(ticket_id)
    token = ticket_row(ticket_id).survey_token
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda n: survey.record_response(token, str(n % 5 + 1), f"try {n}"), range(12)))
    assert results.count(True) == 1
    row = ticket_row(ticket_id)
    winner = results.index(True)
    assert (row.survey_score, row.survey_comment) == (winner % 5 + 1, f"try {winner}")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Audit).where(Audit.action == "survey.answered")) == 1
