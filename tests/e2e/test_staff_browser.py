"""The staff console in a real headless Chromium at 1366x768, against `switchboard run` as a real subprocess and its
sandbox's fake Google: sign in on the pick-a-user page; an outsider is refused; a viewer sees no replay or erase and
is refused when they try anyway; ops replays a dead event, which then makes its ticket; privacy erases the customer
behind the confirmation page and sees the receipt complete; the audit page names each of them. Screenshots of each
step are kept in the test's tmp directory (`--basetemp` to choose where)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import SANDBOX_DEFAULTS
from tests.e2e.conftest import Running
from tests.e2e.test_make_run import SUBMISSION, confirmation_mails
from tests.integration.test_run import Process, free_port

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 1366, "height": 768}
OPS, PRIVACY, VIEWER, OUTSIDER = ("anna.ops@example.com", "peter.privacy@example.com", "viktor.viewer@example.com",
                                  "eve@example.org")
ADMIN = {"Authorization": f"Bearer {SANDBOX_DEFAULTS['admin_token']}"}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    port, sandbox_port, smtp_port = free_port(), free_port(), free_port()
    process = Process(["run", "--port", str(port), "--sandbox-port", str(sandbox_port), "--smtp-port",
                       str(smtp_port)], tmp_path, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    try:
        process.wait_for_line("sandbox:")
        process.wait_until_answering(f"http://127.0.0.1:{port}/healthz")
        yield Running(process, port, sandbox_port)
    finally:
        process.kill()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    path = tmp_path / "screenshots"
    path.mkdir()
    return path


@pytest.fixture
def contexts(browser: Any) -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for context in opened:
        context.close()


def signed_in(browser: Any, contexts: list[Any], running: Running, email: str, shots: Path | None = None,
              lang: str = "en") -> Any:
    """A fresh browser (no cookies) through the provider's pick-a-user page; the page where it lands."""
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORT)
    contexts.append(context)
    page = context.new_page()
    page.goto(f"{running.base}/staff/?lang={lang}")
    assert page.url.startswith(f"{running.sandbox.base_url}/o/oauth2/v2/auth?"), page.url
    assert "code_challenge_method=S256" in page.url and "nonce=" in page.url and "state=" in page.url
    if shots:
        page.screenshot(path=shots / "1-pick-a-user.png")
    page.locator(f'button[value="{email}"]').click()
    page.wait_for_load_state()
    return page


def dead_inbox_ids(running: Running) -> list[int]:
    rows = httpx.get(f"{running.base}/admin/inbox", params={"status": "dead"}, headers=ADMIN, timeout=10).json()
    return [row["id"] for row in rows]


def test_outsider_refused_viewer_limited_ops_replays_privacy_erases(running, browser, contexts, shots):
    # A form submission whose HappyFox ticket is refused goes dead at once (a 400 is no transient failure). Only
    # the ticket creation fails: a periodic job reading HappyFox meanwhile must not take the fault.
    running.sandbox.post("/_sandbox/faults", json={"service": "happyfox", "method": "POST", "status": 400,
                                                   "path": "/api/1.1/json/tickets/"})
    assert running.sandbox.post("/_sandbox/emit", json={"service": "form", "data": SUBMISSION}).status_code == 200
    [dead] = running.until("a dead inbox event", lambda: dead_inbox_ids(running))

    outsider = signed_in(browser, contexts, running, OUTSIDER, shots)
    assert outsider.locator("#refused").get_attribute("data-reason") == "domain"
    assert "Only addresses of the company's Google Workspace domain may sign in." in outsider.inner_text("main")
    outsider.screenshot(path=shots / "2-outsider-refused.png")
    outsider.goto(f"{running.base}/staff/")
    assert outsider.url.startswith(str(running.sandbox.base_url))  # still signed out

    viewer = signed_in(browser, contexts, running, VIEWER)
    assert viewer.url == f"{running.base}/staff/?lang=en"
    assert "viktor.viewer@example.com" in viewer.inner_text("header")
    assert viewer.locator("#dead-letters .big").inner_text() == "1"
    nav = viewer.locator("nav").inner_text()
    assert "Inbox" in nav and "Customers" not in nav and "Audit" not in nav
    viewer.screenshot(path=shots / "3-viewer-overview.png")
    viewer.goto(f"{running.base}/staff/inbox/{dead}")
    assert viewer.locator("#replay").count() == 0 and "Only the ops role may replay." in viewer.inner_text("main")
    token = viewer.locator('input[name="csrf"]').first.get_attribute("value")
    forced = viewer.context.request.post(f"{running.base}/staff/inbox/{dead}/replay", form={"csrf": token},
                                         max_redirects=0)
    assert forced.status == 403
    assert viewer.goto(f"{running.base}/staff/customers").status == 403
    assert "Your role does not allow this." in viewer.inner_text("main")
    viewer.screenshot(path=shots / "4-viewer-refused.png")
    assert dead_inbox_ids(running) == [dead]

    ops = signed_in(browser, contexts, running, OPS)
    ops.get_by_role("link", name="Show them").click()
    ops.get_by_role("link", name=str(dead), exact=True).click()
    assert "The payload is not shown" in ops.inner_text("main") and "proba.anna" not in ops.content()
    ops.screenshot(path=shots / "5-ops-dead-event.png")
    ops.locator("#replay").click()
    ops.wait_for_load_state()
    assert "Replay queued" in ops.get_by_role("status").inner_text()
    ops.screenshot(path=shots / "6-ops-replayed.png")
    ticket = running.until("the ticket made by the replay",
                           lambda: next(iter(running.state("happyfox")["tickets"].values()), None))
    running.until("the confirmation", lambda: confirmation_mails(running.mail(), ticket["display_id"]))
    def replayed_done() -> bool:  # the intake's last step (the mail's record on HubSpot) follows the mail
        ops.reload()
        return "done" in ops.locator("h1").inner_text()
    running.until("the replayed event done", replayed_done)
    ops.goto(f"{running.base}/staff/tickets")
    assert ticket["display_id"] in ops.locator("#ticket-rows").inner_text()
    ops.screenshot(path=shots / "7-ops-tickets.png")
    ops.goto(f"{running.base}/staff/inbox?lang=hu")
    assert "Beérkezett események" in ops.locator("h1").inner_text() and "done" in ops.locator("#inbox-rows").inner_text()
    ops.screenshot(path=shots / "7b-ops-inbox-hu.png")
    ops.goto(f"{running.base}/staff/config")
    assert "A YAML fájl érvényes." in ops.locator("#config-result").inner_text()
    ops.screenshot(path=shots / "7c-ops-config-hu.png")

    privacy = signed_in(browser, contexts, running, PRIVACY, lang="hu")
    privacy.get_by_role("link", name="Ügyfelek").click()
    privacy.locator('input[name="q"]').fill("proba.anna@example.com")
    privacy.get_by_role("button", name="Keresés").click()
    privacy.locator("#customer-rows a").first.click()
    assert "proba.anna@example.com" in privacy.locator("#identities").inner_text()
    privacy.screenshot(path=shots / "8-privacy-customer-hu.png")
    privacy.locator("#erase").click()
    assert "Nem vonható vissza" in privacy.inner_text("main")
    privacy.screenshot(path=shots / "9-erase-confirmation-hu.png")
    privacy.locator("#erase-now").click()  # not ticked: nothing happens but a reminder
    assert "A megerősítéshez jelölje be a négyzetet." in privacy.inner_text("main")
    privacy.locator("#confirm").check()
    privacy.locator("#erase-now").click()
    assert re.search(r"/staff/erasures/\d+$", privacy.url)
    receipt = privacy.url

    def erased() -> bool:
        privacy.goto(receipt)
        return privacy.locator("#erasure-status").inner_text() == "done"

    running.until("the erasure complete", erased)
    privacy.screenshot(path=shots / "10-erasure-receipt-hu.png")
    assert running.state("hubspot")["contacts"] == {}

    privacy.goto(f"{running.base}/staff/audit?lang=en")
    trail = privacy.locator(".audit-rows").inner_text()
    for actor, action in ((OPS, "inbox.replayed"), (PRIVACY, "erasure.requested"), (PRIVACY, "customer.viewed"),
                          (VIEWER, "staff.refused"), ("outsider", "staff.sign_in_refused")):
        assert re.search(rf"{re.escape(actor)}\s+{re.escape(action)}", trail), (actor, action)
    assert "proba.anna" not in trail
    privacy.screenshot(path=shots / "11-audit.png", full_page=True)

    privacy.get_by_role("button", name="Sign out").click()
    assert "You are signed out." in privacy.inner_text("main")
    assert "Traceback" not in running.process.text


COMPLAINTS, SCREENSHOTS = "kata.complaints@example.com", Path("/tmp")
COMPLAINT = {"form": "website", "fields": {
    "vezeteknev": "Panaszos", "keresztnev": "Péter", "email": "panaszos.peter@example.com", "cel": "panasz",
    "termek": "Crossec Norma", "rovid_leiras": "Kétszer terheltek", "reszletes_leiras": "A kártyámat kétszer."}}


def test_complaint_register_and_holds_by_role(running, browser, contexts):
    """Each role through the fake provider: `complaints` edits the register and the change is in the HappyFox and
    HubSpot fakes; the viewer sees the register without the form and is refused the edit and the holds; privacy
    and ops see the holds; the report downloads. Screenshots of each new page at 1366x768 go to /tmp/staff-*.png."""
    assert running.sandbox.post("/_sandbox/emit", json={"service": "form", "data": COMPLAINT}).status_code == 200

    def mirrored() -> Any:
        hubspot, happyfox = running.state("hubspot"), running.state("happyfox")
        if not hubspot["tickets"] or not happyfox["tickets"]:
            return None
        return next(iter(happyfox["tickets"].values()))
    hf_ticket = running.until("the complaint's tickets", mirrored)

    officer = signed_in(browser, contexts, running, COMPLAINTS, lang="hu")
    officer.get_by_role("link", name="Panaszok").click()
    assert "Panasznyilvántartás" in officer.locator("h1").inner_text()
    running.until("the complaint registered", lambda: officer.reload() and officer.locator(
        "#complaint-rows a").count() >= 2)
    officer.screenshot(path=SCREENSHOTS / "staff-complaints-hu.png")
    officer.locator("#complaint-rows td:first-child a").first.click()
    complaint_url = officer.url
    assert "Panaszos Péter" in officer.locator("#register-facts").inner_text()
    officer.locator("#f-loss_amount_huf").fill("sok pénz")  # not a number: refused, nothing saved
    officer.locator("#save").click()
    officer.wait_for_load_state()
    assert "(7) Lehetséges kár (Ft)" in officer.locator("#problems").inner_text()
    officer.screenshot(path=SCREENSHOTS / "staff-complaint-refused-hu.png")
    officer.goto(complaint_url)
    officer.locator("#f-event_type").select_option("external_fraud")
    officer.locator("#f-person_concerned").fill("Ügyfélszolgálat")
    officer.locator("#f-loss_amount_huf").fill("40 000")
    officer.locator("#f-measure").fill("A kétszeres terhelés visszatérítése.")
    officer.locator("#f-measure_due_at").fill("2026-12-18")
    officer.locator("#save").click()
    officer.wait_for_load_state()
    assert "Mentve a nyilvántartásba, a HappyFoxba és a HubSpotba." in officer.get_by_role("status").inner_text()
    assert officer.locator("#f-person_concerned").input_value() == "Ügyfélszolgálat"
    officer.screenshot(path=SCREENSHOTS / "staff-complaint-edited-hu.png", full_page=True)

    def in_both() -> bool:
        hf = running.state("happyfox")["tickets"][str(hf_ticket["id"])]
        [hs] = list(running.state("hubspot")["tickets"].values())
        return "Ügyfélszolgálat" in hf["custom_fields"].values() and \
            hs["properties"].get("complaint_person_concerned") == "Ügyfélszolgálat" and \
            hs["properties"].get("complaint_loss_amount_huf") == "40000" and \
            hs["properties"].get("complaint_event_type") == "external_fraud"
    running.until("the edit in HappyFox and HubSpot", in_both)

    officer.goto(f"{running.base}/staff/complaints?lang=en")
    officer.locator("#report-format").select_option("html")
    with officer.expect_download() as download:
        officer.locator("#report-download").click()
    report = Path(download.value.path()).read_text(encoding="utf-8")
    assert "Quarterly complaint report" in report and "External fraud" in report
    officer.screenshot(path=SCREENSHOTS / "staff-complaints-en.png")
    assert officer.goto(f"{running.base}/staff/holds").status == 403

    viewer = signed_in(browser, contexts, running, VIEWER)
    viewer.goto(complaint_url + "?lang=en")
    assert viewer.locator("#complaint-form").count() == 0
    assert "Only the complaints role may edit the register." in viewer.inner_text("main")
    assert "Ügyfélszolgálat" in viewer.locator("#fields-read-only").inner_text()
    assert "Panaszos" not in viewer.inner_text("main")  # identification data: not for the viewer
    viewer.screenshot(path=SCREENSHOTS / "staff-complaint-viewer.png", full_page=True)
    token = viewer.locator('input[name="csrf"]').first.get_attribute("value")
    forced = viewer.context.request.post(complaint_url, form={"csrf": token, "person_concerned": "Senki",
                                                              "was_person_concerned": ""}, max_redirects=0)
    assert forced.status == 403
    assert "Legal holds" not in viewer.locator("nav").inner_text()
    assert viewer.goto(f"{running.base}/staff/holds").status == 403
    assert viewer.goto(f"{running.base}/staff/").status == 200
    assert viewer.locator("#complaints-due .big").inner_text() == "0"
    viewer.screenshot(path=SCREENSHOTS / "staff-overview.png")

    privacy = signed_in(browser, contexts, running, PRIVACY)
    privacy.get_by_role("link", name="Legal holds").click()
    rows = privacy.locator("#hold-rows").inner_text()
    assert "while the complaint is open, then 5 years after it closes" in rows
    assert "Panaszos" not in rows and "panaszos.peter" not in privacy.content()
    privacy.screenshot(path=SCREENSHOTS / "staff-holds.png")
    privacy.goto(f"{running.base}/staff/holds?lang=hu")
    assert "Jogi visszatartások" in privacy.locator("h1").inner_text()
    privacy.screenshot(path=SCREENSHOTS / "staff-holds-hu.png")

    ops = signed_in(browser, contexts, running, OPS)
    assert ops.goto(f"{running.base}/staff/holds").status == 200
    ops.goto(f"{running.base}/staff/audit?lang=en")
    trail = ops.locator(".audit-rows").inner_text()
    for actor, action in ((COMPLAINTS, "complaint.updated"), (COMPLAINTS, "complaints.report_downloaded"),
                          (VIEWER, "staff.refused"), (PRIVACY, "holds.viewed")):
        assert re.search(rf"{re.escape(actor)}\s+{re.escape(action)}", trail), (actor, action)
    assert "Ügyfélszolgálat" not in trail and "Panaszos" not in trail
    # A complaint's intake and HappyFox's echo of its new ticket both route it to the officer; the one that finds
    # the other's claim (effects.InFlight) is retried in one line, not logged with a traceback.
    assert "Traceback" not in running.process.text


def test_privacy_works_a_data_subject_request(running, browser, contexts):
    """A data-subject erasure request from the admin API: the overview counts it as due, privacy verifies the
    identity in the console, the erasure runs on the embedded worker, the two manual tasks are confirmed, the
    request completes and the person is mailed the outcome; ops see it without the forms. Screenshots of each page at
    1366x768 go to /tmp/dsr-*.png."""
    email = SUBMISSION["fields"]["email"]
    assert running.sandbox.post("/_sandbox/emit", json={"service": "form", "data": SUBMISSION}).status_code == 200
    running.until("the form's ticket in HappyFox", lambda: running.state("happyfox")["tickets"])
    made = httpx.post(f"{running.base}/admin/requests", json={"type": "erasure", "email": email}, headers=ADMIN,
                      timeout=10)
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]

    privacy = signed_in(browser, contexts, running, PRIVACY, lang="hu")
    assert privacy.locator("#requests-due .big").inner_text() == "0"  # due in a month: not yet
    privacy.get_by_role("link", name="Kérelmek").click()
    assert "Érintetti kérelmek" in privacy.locator("h1").inner_text()
    assert "ellenőrzésre vár" in privacy.locator("#request-rows").inner_text()
    assert email not in privacy.content()
    privacy.screenshot(path=SCREENSHOTS / "dsr-requests-hu.png")
    privacy.locator(f'#request-rows a[href="/staff/requests/{request_id}"]').click()
    assert "még nem" in privacy.locator("#request-verified").inner_text()
    privacy.screenshot(path=SCREENSHOTS / "dsr-request-awaiting-hu.png", full_page=True)
    privacy.locator('select[name="method"]').select_option("id_document")
    privacy.locator("#verify-now").click()
    privacy.wait_for_load_state()
    assert "sorba állítva" in privacy.get_by_role("status").inner_text()
    assert PRIVACY in privacy.locator("#request-verified").inner_text()

    def erased() -> bool:
        privacy.goto(f"{running.base}/staff/requests/{request_id}?lang=en")
        link = privacy.locator("main a[href^='/staff/erasures/']")
        if not link.count():
            return False
        privacy.goto(running.base + link.first.get_attribute("href"))
        return privacy.locator("#erasure-status").inner_text() == "done"
    running.until("the erasure done", erased)
    privacy.goto(f"{running.base}/staff/requests/{request_id}?lang=en")
    assert privacy.locator("#request-state").inner_text() == "verified"  # the manual tasks are open
    privacy.screenshot(path=SCREENSHOTS / "dsr-request-tasks-en.png", full_page=True)
    privacy.locator('#tasks input[name="note"]').first.fill("servicedesk ticket 4711")
    privacy.locator("#confirm-it_contractor").click()
    privacy.wait_for_load_state()
    privacy.locator("#confirm-mobile_carrier").click()
    privacy.wait_for_load_state()
    assert privacy.locator("#request-state").inner_text() == "done"
    assert "servicedesk ticket 4711" in privacy.locator("#tasks").inner_text()
    privacy.screenshot(path=SCREENSHOTS / "dsr-request-done-en.png", full_page=True)
    told = running.until("the completion mail", lambda: [m for m in running.mail()
                                                         if email in m["to"] and "teljesítettük" in m["subject"]])
    assert "informatikai üzemeltető" in told[0]["text"] and "90 napig" in told[0]["text"]

    ops = signed_in(browser, contexts, running, OPS)
    ops.goto(f"{running.base}/staff/requests/{request_id}?lang=en")
    assert ops.locator("#verify, #complete, #refuse, #extend").count() == 0
    ops.goto(f"{running.base}/staff/")
    ops.screenshot(path=SCREENSHOTS / "dsr-overview-ops.png")
    viewer = signed_in(browser, contexts, running, VIEWER)
    assert viewer.goto(f"{running.base}/staff/requests").status == 403
