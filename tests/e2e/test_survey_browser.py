"""The survey page in a real headless Chromium (Debian's, never a downloaded one), served for real over HTTP:
open the link from the mail, choose a score, type a comment, submit, see the thanks page; an expired link."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from core import store
from core.models import Ticket
from flows.closure import survey
from tests.integration.test_survey import make_ticket, ticket_row

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(java_script_enabled=False)  # the page must work without JavaScript
    yield context.new_page()
    context.close()


def test_open_the_link_choose_a_score_comment_submit_and_see_thanks(served, sandbox, page):
    ticket_id = make_ticket("hu")
    assert survey.on_ticket_closed(ticket_id)
    link = re.search(r"https?://\S+/survey/\S+", sandbox.mail()[0]["text"]).group(0)
    assert link.startswith(served)

    response = page.goto(link)
    assert response.status == 200
    assert page.get_attribute("html", "lang") == "hu"
    assert "#SB-00042" in page.inner_text("main")
    page.get_by_label("4 – Elégedett").check()  # found by its label: the radios are labelled
    page.get_by_label("Megjegyzés (nem kötelező)").fill("Gyors, udvarias ügyintézés. Köszönöm!")
    page.get_by_role("button", name="Értékelés elküldése").click()

    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Köszönjük a válaszát!"
    row = ticket_row(ticket_id)
    assert (row.survey_score, row.survey_comment) == (4, "Gyors, udvarias ügyintézés. Köszönöm!")

    # Back to the link: the survey cannot be answered twice.
    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Ezt a kérdőívet már kitöltötték"
    assert page.locator("form").count() == 0


def test_switch_to_english_and_submitting_without_a_score_shows_an_accessible_error(served, sandbox, page):
    ticket_id = make_ticket("hu")
    survey.on_ticket_closed(ticket_id)
    page.goto(f"{served}/survey/{ticket_row(ticket_id).survey_token}")
    page.get_by_role("link", name="English").click()
    assert page.get_attribute("html", "lang") == "en"
    # Chromium's own validation holds back a submit without a score (the radios are `required`)...
    page.get_by_label("Comment (optional)").fill("no score")
    page.get_by_role("button", name="Send my rating").click()
    assert page.get_by_role("alert").count() == 0  # no round trip: the server would have answered with one
    assert page.locator("input[name=score]:invalid").count() == 5
    # ...and a client without that validation gets the form again with an error it can read out.
    response = page.request.post(page.url, form={"comment": "no score"})
    assert response.status == 400
    page.set_content(response.text())
    assert page.get_by_role("alert").inner_text().startswith("Please correct the following")
    assert page.get_by_label("Comment (optional)").input_value() == "no score"
    assert ticket_row(ticket_id).survey_answered_at is None


def test_an_expired_link_shows_the_expired_page(served, settings, sandbox, page):
    ticket_id = make_ticket("en")

    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - (settings.config.survey.link_ttl_days + 1) * 86400
    token = URLSafeTimedSerializer(settings.env.secret("secret_key"), salt="survey", signer=Past).dumps(
        {"t": ticket_id, "l": "en", "k": f"survey:{ticket_id}"})
    with store.session() as s:
        s.get(Ticket, ticket_id).survey_token = token

    response = page.goto(f"{served}/survey/{token}")
    assert response.status == 410
    assert page.get_by_role("heading", level=1).inner_text() == "This survey link has expired"
    assert page.locator("form").count() == 0
