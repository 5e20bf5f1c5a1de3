"""What the privacy tests share: a customer present in every system (built through the real flows over the
sandbox), and an independent scan of every database table and every fake's state for their email and phone."""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import MetaData, Table, inspect, select
from tenacity import wait_fixed

from core import store
from flows import vendors
from sandbox.aircall import simulate_call
from sandbox.gmail import add_message

from .delivery import deliver
from .flowkit import fast_vendors, put_form, run

EMAIL = "erika.szabo@example.com"
PHONE = "+36301234567"
WRITTEN_PHONE = "+36 30 123 4567"     # as Aircall's raw_digits shows it
OTHER_EMAIL = "bela.toth@example.com"
# Every spelling of the number a system might keep; the digit scan below also catches other separators.
PHONE_SPELLINGS = ["+36301234567", "36301234567", "06301234567", "0036301234567", "+36 30 123 4567",
                   "06 30 123 4567", "06-30-123-4567", "30/123-4567"]
NATIONAL = "301234567"
# What Aircall keeps of a call after its recording is deleted and the call archived: the number in the archived
# call log (its API cannot delete a call). A deleted contact leaves its calls. Listed in the Aircall receipt.
VENDOR_RESIDUE = re.compile(r"^aircall\.calls\.(\d+)\.raw_digits$")


def quick(attempts: int = 2) -> vendors.Vendors:
    current = fast_vendors(attempts)
    policy = current.gmail.policy
    policy.backoff, policy.attempts, policy.max_inline_wait = wait_fixed(0.01), attempts, 0.5
    return current


def present_everywhere(sandbox: Any, email: str = EMAIL, phone: str = WRITTEN_PHONE) -> dict[str, Any]:
    """A form ticket, an email ticket made by HappyFox from the mailbox, two answered and recorded calls, and mail
    in the support mailbox, all through the flows."""
    running = sandbox.running.sandbox
    current = vendors.get()
    contact = current.aircall.create_contact("Erika", "Szabó", emails=[email], phones=[phone])
    assert run(put_form(email, phone=phone)) == "done"
    mailbox_ticket = current.happyfox.create_ticket(subject="Számla kérdés", text=f"Írjon: {email}", category=4,
                                                    email=email, name="Szabó Erika")
    assert deliver("happyfox", {"id": int(mailbox_ticket.id)}).outcome == "done"
    calls = [simulate_call(running, "inbound", phone, 60 + i, answered=True, recording=True) for i in range(2)]
    for call in calls:
        payload = {"resource": "call", "event": "call.ended", "timestamp": call["ended_at"], "data": call}
        assert deliver("aircall", payload).outcome == "done"
    messages = [add_message(running, email, "support@example.com", "Kérdés", "Kérem hívjon: " + phone),
                add_message(running, "support@example.com", email, "Re: Kérdés", "Visszahívjuk.")]
    return {"aircall_contact": int(contact.id), "calls": [c["id"] for c in calls], "messages": messages,
            "happyfox_ticket": mailbox_ticket.id}


def leaks_in(text: str, email: str = EMAIL) -> bool:
    lowered = text.lower()
    if email in lowered or email.replace("@", "%40") in lowered:
        return True
    if any(spelling in text for spelling in PHONE_SPELLINGS):
        return True
    return NATIONAL in re.sub(r"[\s\-./()]", "", text)


def _walk(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in _walk(item, f"{path}.{key}" if path else str(key))]
    if isinstance(value, list):
        return [hit for index, item in enumerate(value) for hit in _walk(item, f"{path}.{index}")]
    return [(path, str(value))] if value is not None else []


def sandbox_traces(sandbox: Any, email: str = EMAIL) -> list[str]:
    """Paths in every fake's state that hold the person's email or phone."""
    return [path for path, text in _walk(sandbox.state(), "") if leaks_in(text, email)]


def unexplained_traces(sandbox: Any, email: str = EMAIL) -> list[str]:
    """`sandbox_traces` less the one allowed exception: the `raw_digits` of a call that is archived."""
    calls = sandbox.state("aircall")["calls"]
    left = []
    for path in sandbox_traces(sandbox, email):
        allowed = VENDOR_RESIDUE.match(path)
        if not (allowed and calls[allowed.group(1)].get("archived") is True):
            left.append(path)
    return left


def database_traces(email: str = EMAIL) -> list[str]:
    """`table.column` of every value in every table (found by reflection) that holds the email or phone."""
    found = []
    engine = store.engine()
    metadata = MetaData()
    with engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            table = Table(name, metadata, autoload_with=conn)
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
                    if leaks_in(text, email):
                        found.append(f"{name}.{column}")
    return sorted(set(found))

