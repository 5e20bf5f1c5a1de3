"""Consent as data over the sandbox: the form's consent checkbox (mapped in the YAML) is stored with its time and
text version; a withdrawal request marks it withdrawn and erases what rested on consent, keeping the complaint
register, and its receipt says what was kept and why."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core import settings as settings_module
from core import store
from core.models import Complaint, Consent, InboxEvent
from flows.privacy import access, consent, requests

from .flowkit import put_form, run, tickets
from .privacykit import EMAIL, OTHER_EMAIL, quick


@pytest.fixture
def flow(settings, sandbox):
    quick()
    return sandbox


def consents() -> list[Consent]:
    with store.session() as s:
        found = s.scalars(select(Consent).order_by(Consent.id)).all()
        s.expunge_all()
    return list(found)


def test_the_forms_consent_is_stored_with_its_time_and_text_version(flow, tmp_path):
    given = put_form(EMAIL, consent="yes")
    assert run(given) == "done"
    assert run(put_form(OTHER_EMAIL)) == "done"                 # no checkbox: no consent recorded
    assert run(put_form(OTHER_EMAIL, consent="no")) == "done"
    [stored] = consents()
    version = settings_module.get().config.forms["website"].consent_version
    with store.session() as s:
        received = s.get(InboxEvent, given).received_at
    assert (stored.form, stored.version, stored.given_at, stored.withdrawn_at) == ("website", version, received, None)
    assert version == "2026-01"
    # The same submission run again records nothing more.
    from .test_requests import _event
    assert consent.on_form(_event(given)) == stored.id and len(consents()) == 1
    exported = access.export(email=EMAIL, out_dir=tmp_path).data["switchboard"]["consents"]
    assert exported == [{"form": "website", "version": version, "given_at": received.isoformat(), "withdrawn_at": None}]


def test_a_consent_field_must_be_mapped_and_versioned():
    from pydantic import ValidationError

    from core.settings import FormSpec
    with pytest.raises(ValidationError, match="consent_field must be one of fields"):
        FormSpec(fields={"email": "email"}, consent_field="consent", consent_version="1")
    with pytest.raises(ValidationError, match="consent_version must be given"):
        FormSpec(fields={"email": "email", "consent": "ok"}, consent_field="consent")


def test_a_withdrawal_erases_what_rests_on_consent_and_the_receipt_says_what_the_law_keeps(flow):
    assert run(put_form(EMAIL, consent="yes")) == "done"
    assert run(put_form(EMAIL, purpose="panasz", summary="Hibás számla")) == "done"
    complaint_ticket = tickets()[-1]
    request_id = requests.add("withdrawal", email=EMAIL)
    requests.verify(request_id, "dpo@example.com", "known_address")
    assert requests.run(request_id) == "verified"
    from .test_requests import confirm_all
    assert confirm_all(request_id) == "done"

    assert [c.withdrawn_at is not None for c in consents()] == [True]
    assert list(flow.state("happyfox")["tickets"]) == [str(complaint_ticket.happyfox_id)]  # the rest is gone
    with store.session() as s:
        assert s.scalar(select(Complaint.ticket_id)) == complaint_ticket.id
    outcome = requests.detail(request_id)["outcome"]
    assert outcome["reason"] == "consent_withdrawn"
    why = settings_module.get().config.privacy.kept_by_law["complaint_register"]
    assert {k["processor"] for k in outcome["kept"]} >= {"happyfox", "hubspot", "switchboard"}
    assert all(k["why"] == why and k["what"] == "complaint_register" for k in outcome["kept"])
    happyfox_kept = next(k for k in outcome["kept"] if k["processor"] == "happyfox")
    assert happyfox_kept["ids"]["happyfox_ticket"] == [str(complaint_ticket.happyfox_id)]
