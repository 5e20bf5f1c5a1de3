"""The hosted forms in a real headless Chromium (Debian's), served for real over HTTP at 1366x768: fill the website
form, see each error named, send it with a double click and once more after Back, and see the thank-you page show
the ticket id once intake made it; the product form embedded in an iframe of an allowed site, and refused in one of
another site. Screenshots go to /tmp/forms-*.png."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core import settings as settings_module
from core import store
from core.models import InboxEvent
from tests.integration.flowkit import run, tickets

pytestmark = pytest.mark.browser
FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "form" / "fixtures"
VIEWPORT = {"width": 1366, "height": 768}



class Site:
    """An embedding website on loopback (a real server: Chrome refuses a public page's iframe of a loopback address,
    Private Network Access, so the browser's request routing cannot stand in for it)."""

    def __init__(self, html: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_port}"  # another origin than the service's 127.0.0.1
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()



@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale="hu-HU")
    yield context.new_page()
    context.close()


def inbox_ids() -> list[int]:
    with store.session() as s:
        return list(s.scalars(select(InboxEvent.id).order_by(InboxEvent.id)))


def test_fill_send_twice_and_see_the_ticket_id(served, sandbox, page):
    page.goto(f"{served}/forms/website")
    assert page.get_attribute("html", "lang") == "hu"
    page.screenshot(path="/tmp/forms-website.png", full_page=True)

    page.get_by_role("button", name="Bejelentés elküldése").click()
    page.wait_for_load_state()
    assert page.locator(".errors").is_visible()
    assert page.evaluate("document.activeElement.id") == "errors"  # the summary takes the focus
    assert page.locator("#e-vezeteknev").inner_text() == "kötelező mező"
    assert page.locator("#e-consent").inner_text() == "a hozzájárulás kötelező"
    page.screenshot(path="/tmp/forms-errors.png", full_page=True)

    page.get_by_label("Vezetéknév").fill("Kovács")
    page.get_by_label("Keresztnév").fill("Kata")
    page.get_by_label("E-mail-cím").fill("kata.kovacs@example.com")
    page.get_by_label("A megkeresés célja").select_option("hibabejelentes")
    page.get_by_label("Termék vagy szolgáltatás").select_option("Crossec Norma")
    page.get_by_label("Rövid leírás").fill("A belépés hibát ad")
    page.get_by_label("Részletes leírás").fill("Bejelentkezéskor 500-as hiba.")
    page.get_by_label("Csatolmány").set_input_files(str(FIXTURES / "attachment.png"))
    page.locator("#f-consent").check()
    sent = page.evaluate("""() => {
        const form = document.getElementById('form');
        const fields = {};
        for (const [name, value] of new FormData(form)) { if (typeof value === 'string') fields[name] = value; }
        return {action: form.action, fields};
    }""")
    page.get_by_role("button", name="Bejelentés elküldése").dblclick()  # the double click
    page.wait_for_url("**/forms/website/thanks/**")
    assert "Köszönjük, megkaptuk a bejelentését!" in page.inner_text("h1")
    assert "folyamatban" in page.inner_text("main")  # no ticket yet: the page says it will show it
    page.screenshot(path="/tmp/forms-thanks-pending.png", full_page=True)

    [inbox_id] = inbox_ids()
    assert run(inbox_id) == "done"
    page.wait_for_selector("#ticket-id", timeout=15_000)  # the page refreshed itself
    [ticket] = tickets()
    assert page.inner_text("#ticket-id") == ticket.told_id
    page.screenshot(path="/tmp/forms-thanks.png", full_page=True)

    # The same form sent once more, as a browser resends it (Back and "send again"): the same page, no new event.
    again = page.request.post(sent["action"], multipart=sent["fields"], headers={"Origin": served})
    assert again.ok and "/forms/website/thanks/" in again.url and ticket.told_id in again.text()
    assert inbox_ids() == [inbox_id] and len(tickets()) == 1


def test_without_javascript_a_double_click_still_makes_one_event(served, sandbox, browser):
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{served}/forms/product?lang=en")
    page.get_by_label("Name").fill("Kata Kovács")
    page.get_by_label("Email address").fill("kata.kovacs@example.com")
    page.get_by_label("Short summary").fill("Invoice question")
    page.get_by_label("Details").fill("Which address is on the invoice?")
    page.get_by_label("I have read and accept the privacy notice", exact=False).check()
    page.get_by_role("button", name="Send my request").dblclick()  # both clicks reach the server
    page.wait_for_url("**/forms/product/thanks/**")
    page.get_by_role("heading", name="Thank you, we have received your request!").wait_for()
    assert len(inbox_ids()) == 1
    context.close()


def test_the_product_form_in_english_inside_an_allowed_iframe_and_not_in_another(served, settings, sandbox,
                                                                                   browser):
    embed = (f'<!doctype html><html lang="en"><title>Example</title><body style="margin:0;font-family:sans-serif">'
             f'<h1 style="padding:0 1rem">Our shop</h1><iframe title="Contact form" '
             f'src="{served}/forms/product?lang=en" style="width:100%;height:640px;border:0"></iframe></body></html>')
    shop, other = Site(embed), Site(embed)
    current = settings_module.get()
    allowed = current.config.hosted_forms.model_copy(update={"frame_ancestors": ["'self'", shop.origin]})
    settings_module.use(current.model_copy(update={"config": current.config.model_copy(
        update={"hosted_forms": allowed})}))
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(f"{shop.origin}/contact")
    frame = page.frame_locator("iframe")
    frame.get_by_role("heading", name="Product enquiry").wait_for()
    frame.get_by_label("Name").fill("Kata Kovács")
    frame.get_by_label("Email address").fill("kata.kovacs@example.com")
    frame.get_by_label("Short summary").fill("Invoice question")
    frame.get_by_label("Details").fill("Which address is on the invoice?")
    frame.locator("#f-consent").check()
    page.screenshot(path="/tmp/forms-iframe.png")
    frame.get_by_role("button", name="Send my request").click()
    frame.get_by_role("heading", name="Thank you, we have received your request!").wait_for()
    assert len(inbox_ids()) == 1

    page.goto(f"{other.origin}/contact")
    page.wait_for_timeout(1500)
    child = page.frames[1] if len(page.frames) > 1 else None
    shown = child.evaluate("document.body ? document.body.innerText : ''") if child else ""
    assert "Product enquiry" not in shown  # frame-ancestors refused it
    page.screenshot(path="/tmp/forms-iframe-refused.png")
    context.close()
    shop.close()
    other.close()
