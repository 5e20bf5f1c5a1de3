"""The complaint officer's workflow over the sandbox (policy 004 §11-§19): a new complaint is assigned and mailed to
the officer at once; an unfounded one gets its written answer with reasons from the HU/EN template; a founded one's
measure goes to its responsible person, whose deadline alerts (over Christmas) reach them and then ask for the
fulfilment check; policy 004 §19 matters reach the managing director; the answer deadline (30 days, configurable) is alerted."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from core import settings as settings_module
from core import store
from core.models import Complaint, Customer
from core.settings import Settings
from core.workdays import BUDAPEST
from flows.complaints import complaint_deadlines

from .flowkit import audit_actions, put_form, run, tickets
from .test_complaints import MD, Staff, complaint, escalations

OFFICER = "panaszkezeles@example.com"
FINANCE = "penzugy@example.com"   # config/switchboard.yaml complaints.responsible["Pénzügy"]


def with_complaints(loaded: Settings, **values) -> Settings:
    spec = loaded.config.complaints.model_copy(update=values)
    return settings_module.use(Settings(env=loaded.env, config=loaded.config.model_copy(update={"complaints": spec})))


def mails_to(sandbox, address: str, word: str) -> list[dict]:
    return [m for m in sandbox.mail() if address in m["to"] and word in m["subject"]]


def replies(sandbox, happyfox_id: int) -> list[str]:
    ticket = sandbox.state("happyfox")["tickets"][str(happyfox_id)]
    return [u["message"]["text"] for u in ticket["updates"]
            if u["message"] and u["message"]["message_type"] != "p" and u["by"]["type"] == "staff"]


def test_a_new_complaint_is_assigned_and_mailed_to_the_officer_once(flow, settings):
    officer = settings.config.complaints.officer.model_copy(update={"happyfox_subscribers": [1]})
    with_complaints(settings, officer=officer)
    assert run(put_form(purpose="panasz", summary="Hibás számla")) == "done"
    ticket = tickets()[0]
    hf = flow.state("happyfox")["tickets"][str(ticket.happyfox_id)]
    assert hf["assigned_to"] == 2 and hf["subscribers"] == [1]      # the officer; the group subscribed
    [mail] = mails_to(flow, OFFICER, "Új panasz")
    assert ticket.happyfox_display_id in mail["subject"] and "Hibás számla" in mail["text"]
    c = complaint()
    received_day = c.received_at.astimezone(BUDAPEST).date()
    assert c.answer_due_at.astimezone(BUDAPEST).date() == received_day + timedelta(days=30)

    staff = Staff(settings, flow)
    staff.deliver(staff.write(ticket.happyfox_id))   # later events of the ticket: no second routing
    assert len(mails_to(flow, OFFICER, "Új panasz")) == 1 and audit_actions().count("complaint.routed") == 1
    assert len([u for u in flow.state("happyfox")["tickets"][str(ticket.happyfox_id)]["updates"]
                if u.get("assignee_change")]) == 1


def test_an_unfounded_complaint_gets_its_written_answer_with_reasons_in_the_customers_language(flow, settings):
    assert run(put_form(purpose="panasz", summary="Hibás számla")) == "done"
    ticket = tickets()[0]
    with store.session() as s:
        s.execute(update(Customer).where(Customer.id == ticket.customer_id).values(language="en"))
    staff = Staff(settings, flow)
    staff.deliver(staff.write(ticket.happyfox_id, outcome="megalapozatlan", investigation_ended_at="2026-10-21"))
    c = complaint()   # Friday the 23rd is a holiday: the third working day is Tuesday the 27th
    assert c.notice_due_at == datetime(2026, 10, 27, 15, 30, tzinfo=timezone.utc) and c.notice_sent_at is None
    assert replies(flow, ticket.happyfox_id) == []   # no reasons yet: nothing is sent

    answered = staff.deliver(staff.write(ticket.happyfox_id, reasons="The invoice matched the contract."))
    [text] = replies(flow, ticket.happyfox_id)
    assert "found it unfounded" in text and "The invoice matched the contract." in text
    assert ticket.happyfox_display_id in text
    assert complaint().notice_sent_at is not None and complaint().reasons == "The invoice matched the contract."
    assert run(answered) == "skipped"
    staff.deliver(staff.write(ticket.happyfox_id))
    assert len(replies(flow, ticket.happyfox_id)) == 1   # once
    assert complaint_deadlines.items(datetime(2026, 10, 28, tzinfo=timezone.utc)) == []  # notice and answer done


def test_a_founded_complaints_measure_reaches_its_responsible_person_and_asks_for_the_check(flow, settings):
    assert run(put_form(purpose="panasz", summary="Késedelmes teljesítés")) == "done"
    ticket = tickets()[0]
    staff = Staff(settings, flow)
    staff.deliver(staff.write(ticket.happyfox_id, outcome="founded", measure="Jóváírás a következő számlán",
                              measure_due_at="2026-12-28", measure_responsible="Pénzügy"))
    [request] = mails_to(flow, FINANCE, "intézkedés szükséges")
    assert "Jóváírás a következő számlán" in request["text"] and "2026-12-28" in request["subject"]
    c = complaint()
    # Monday the 28th: the working day before is Wednesday the 23rd (24-27 December are holidays and a weekend).
    assert [i.kind for i in complaint_deadlines.items(datetime(2026, 12, 23, 6, tzinfo=timezone.utc))
            if i.kind == "measure"] == []
    assert (c.id, "due") in complaint_deadlines.alert(datetime(2026, 12, 23, 7, tzinfo=timezone.utc))
    assert (c.id, "overdue") in complaint_deadlines.alert(datetime(2026, 12, 29, 8, tzinfo=timezone.utc))
    alerts = [m for m in flow.mail() if m["subject"].startswith("Panasz határidő") and "intézkedés" in m["subject"]]
    assert [sorted(m["to"]) for m in alerts] == [sorted([OFFICER, FINANCE])] * 2
    assert "ellenőriznie" not in alerts[0]["text"] and "ellenőriznie" in alerts[1]["text"]  # policy 004 §18 check

    staff.deliver(staff.write(ticket.happyfox_id, measure_checked_at="2026-12-29"))
    assert complaint().measure_checked_at is not None
    assert [i for i in complaint_deadlines.items(datetime(2027, 1, 1, tzinfo=timezone.utc), include_later=True)
            if i.kind == "measure"] == []


def test_a_section_19_matter_goes_to_the_managing_director_without_a_loss_amount(flow, settings):
    assert run(put_form(purpose="panasz")) == "done"
    ticket = tickets()[0]
    staff = Staff(settings, flow)
    staff.deliver(staff.write(ticket.happyfox_id, referral="munkajogi"))
    [mail] = escalations(flow)
    assert "munkajogi felelősségre vonás" in mail["subject"] and ticket.happyfox_display_id in mail["subject"]
    assert "19. pont" in mail["text"] and "Lehetséges kár" not in mail["text"]
    staff.deliver(staff.write(ticket.happyfox_id, loss_amount_huf="500000"))
    assert len(escalations(flow)) == 1 and complaint().referral == "labour"
    assert escalations(flow)[0]["to"] == [MD]


def test_the_answer_deadline_is_configurable_and_alerted_until_the_answer(flow, settings):
    with_complaints(settings, answer_within_days=15)
    assert run(put_form(purpose="panasz")) == "done"
    c = complaint()
    assert c.answer_due_at.astimezone(BUDAPEST).date() == c.received_at.astimezone(BUDAPEST).date() + timedelta(15)
    late = c.answer_due_at + timedelta(days=1)
    assert complaint_deadlines.alert(late) == [(c.id, "overdue")]
    assert complaint_deadlines.alert(late) == []
    [alert] = [m for m in flow.mail() if "válasz a panaszosnak" in m["subject"]]
    assert alert["to"] == [OFFICER] and "lejárt" in alert["subject"]
    with store.session() as s:
        assert s.scalar(select(Complaint.answer_overdue_alerted_at)) is not None
