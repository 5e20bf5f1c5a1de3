"""Other contacts on the ticket (policy 001): a mail Switchboard sends about a ticket (the confirmation, the survey)
is recorded on HubSpot as an email associated to the ticket's mirror as well as the contact, once, even when
HubSpot fails or the job crashes after the mail went out (and the mail is never sent twice for it)."""
from __future__ import annotations

import pytest

from connectors.errors import Unavailable

from .flowkit import crash_once_recording, objects, put_form, row, run, writes
from .test_closure import deliver_ticket, form_ticket, set_status, surveys

EMAIL_TO_CONTACT, EMAIL_TO_TICKET = 198, 224
CREATE = ("hubspot", "POST", "/crm/v3/objects/emails")


def associated(flow, email_id: str, type_id: int) -> list[str]:
    return [a["to"][1] for a in flow.state("hubspot")["associations"]
            if a["typeId"] == type_id and a["from"] == ["emails", email_id]]


def test_the_confirmation_is_recorded_on_the_ticket_and_the_contact(flow):
    inbox_id = put_form()
    assert run(inbox_id) == "done"
    [email] = objects(flow, "hubspot", "emails")
    [contact] = objects(flow, "hubspot", "contacts")
    [mirror] = objects(flow, "hubspot", "tickets")
    assert associated(flow, email["id"], EMAIL_TO_CONTACT) == [contact["id"]]
    assert associated(flow, email["id"], EMAIL_TO_TICKET) == [mirror["id"]]
    props = email["properties"]
    assert props["hs_email_status"] == "SENT" and props["hs_email_direction"] == "EMAIL"
    assert props["hs_email_subject"].startswith("Visszaigazolás #")
    assert "kata" not in str(props).lower()  # the template and the ticket id, not the person
    flow.clear_calls()
    assert run(inbox_id) == "skipped" and writes(flow) == []


def test_hubspot_failing_after_the_mail_went_out_records_it_on_retry_without_resending(flow):
    flow.fault(service="hubspot", method="POST", path="/crm/v3/objects/emails", status=503, times=1)
    inbox_id = put_form()
    with pytest.raises(Unavailable):
        run(inbox_id)
    assert row(inbox_id).status == "failed" and len(flow.mail()) == 1
    assert objects(flow, "hubspot", "emails") == []
    assert run(inbox_id) == "done"
    assert len(objects(flow, "hubspot", "emails")) == 1 and len(flow.mail()) == 1


def test_a_crash_after_the_record_is_made_finds_it_instead_of_a_second(flow, monkeypatch):
    crash_once_recording(monkeypatch, "hubspot-email:")
    inbox_id = put_form()
    with pytest.raises(RuntimeError):
        run(inbox_id)
    assert len(objects(flow, "hubspot", "emails")) == 1
    assert run(inbox_id) == "done"
    assert len(objects(flow, "hubspot", "emails")) == 1 and len(flow.mail()) == 1


def test_the_survey_mail_is_recorded_on_the_ticket_once(flow):
    ticket = form_ticket()
    closed = set_status(ticket, "Closed")
    assert deliver_ticket(closed) == "done"
    assert deliver_ticket(closed, key="again") == "done"  # the same closure twice: one survey, one record
    assert len(surveys(flow)) == 1
    subjects = sorted(e["properties"]["hs_email_subject"].split(" #")[0] for e in objects(flow, "hubspot", "emails"))
    assert subjects == ["Elégedettségi kérdőív", "Visszaigazolás"]
    survey_email = next(e for e in objects(flow, "hubspot", "emails")
                        if e["properties"]["hs_email_subject"].startswith("Elégedettségi"))
    assert associated(flow, survey_email["id"], EMAIL_TO_TICKET) == [ticket.hubspot_ticket_id]
    assert writes(flow).count(CREATE) <= 2
