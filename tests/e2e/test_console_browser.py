"""The sandbox console in a real headless Chromium at 1366x768, against `switchboard run` as a real subprocess:
submit the demo form, see the HappyFox ticket and the confirmation mail in their tables on the first screen, see a
failed Close as a red error, Close for real, see the survey mail and follow its link to the survey page.
Screenshots of each step are kept in the test's tmp directory (`--basetemp` to choose where)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Running
from tests.e2e.test_make_run import confirmation_mails, survey_mails
from tests.integration.test_run import Process, free_port

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """`switchboard run` on free ports, its survey links pointing at itself so that the browser can follow them."""
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
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORT)  # the console needs no JavaScript
    yield context.new_page()
    context.close()


def on_first_screen(locator: Any) -> bool:
    """Wholly inside the 1366x768 viewport of a page scrolled to the top."""
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"] \
        and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"]


def rgb(locator: Any, prop: str) -> tuple[int, ...]:
    value = locator.evaluate(f"e => getComputedStyle(e).{prop}")
    return tuple(int(n) for n in re.findall(r"\d+", value)[:3])


def test_console_at_1366x768_form_ticket_mail_failed_close_close_and_survey_link(running, page, tmp_path):
    console, shots = str(running.sandbox.base_url), tmp_path / "screenshots"
    shots.mkdir()
    assert page.goto(console + "/").status == 200
    page.screenshot(path=shots / "1-empty.png")
    submit = page.get_by_role("button", name="Submit the website contact form")
    assert on_first_screen(submit) and on_first_screen(page.get_by_role("heading", name="HappyFox tickets (0)"))

    page.get_by_label("Last name").fill("Árvíztűrő")
    page.get_by_label("First name").fill("Tükörfúrógép")
    page.get_by_label("Email").fill("arvizturo@example.com")
    submit.click()
    page.wait_for_load_state()
    notice = page.get_by_role("status")
    assert "answered 202" in notice.inner_text()
    green = rgb(notice, "backgroundColor")
    assert green[1] > green[0] and green[1] > green[2]

    ticket = running.until("the ticket", lambda: next(iter(running.state("happyfox")["tickets"].values()), None))
    running.until("the confirmation", lambda: confirmation_mails(running.mail(), ticket["display_id"]))
    page.goto(console + "/")
    page.screenshot(path=shots / "2-ticket-and-confirmation.png")
    row = page.locator("#happyfox-tickets tr", has_text=ticket["display_id"])
    assert "Árvíztűrő Tükörfúrógép" in row.inner_text() and on_first_screen(row)
    mail = page.locator("#mail tr", has_text=f"Bejelentését rögzítettük ({ticket['display_id']})")
    assert "arvizturo@example.com" in mail.inner_text() and on_first_screen(mail)
    assert "\\u00" not in page.inner_text("body")

    # A Close that HappyFox answers with a 500 is shown as an error, in red, and the ticket stays open.
    running.sandbox.post("/_sandbox/faults", json={"service": "happyfox", "method": "POST", "status": 500,
                                                   "path": f"/api/1.1/json/ticket/{ticket['id']}/staff_update/"})
    close = page.get_by_role("button", name=f"Close ticket {ticket['display_id']}")
    close.click()
    page.wait_for_load_state()
    alert = page.get_by_role("alert")
    assert "500 Internal Server Error" in alert.inner_text() and page.get_by_role("status").count() == 0
    red = rgb(alert, "backgroundColor")
    assert red[0] > red[1] and red[0] > red[2]
    page.screenshot(path=shots / "3-close-failed.png")

    page.goto(console + "/")
    close.click()
    page.wait_for_load_state()
    assert f"Closed HappyFox ticket {ticket['display_id']}" in page.get_by_role("status").inner_text()
    [survey] = running.until("the survey mail", lambda: survey_mails(running.mail()))
    link = re.search(r"https?://\S+/survey/\S+", survey["text"]).group(0)
    page.goto(console + "/")
    page.screenshot(path=shots / "4-survey-mail.png")
    anchor = page.locator("#mail").get_by_role("link", name=link)
    assert anchor.get_attribute("href") == link and on_first_screen(anchor)
    assert "Closed" in page.locator("#happyfox-tickets tr", has_text=ticket["display_id"]).inner_text()

    anchor.click()  # the link in the mail leads to the survey page the service serves
    page.wait_for_load_state()
    assert page.url == link and ticket["display_id"] in page.inner_text("body")
    page.screenshot(path=shots / "5-survey-page.png")
