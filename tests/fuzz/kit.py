"""What the fuzz suite shares: input strategies (bytes, header values, JSON shapes, fixtures with one part swapped
for garbage, nesting deep enough to exhaust a recursive parser), the three signers a sender with the real secret
would use, and `fuzz`, which runs a property a given number of times in-process (the Flask test client) and proves
that it did."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.hubspot.webhooks import signature_headers

ROOT = Path(__file__).resolve().parents[2]
# What any input may be answered with. 404 only where a path segment is itself the input (an unknown survey link).
ALLOWED = {200, 202, 400, 401, 413, 415}
HUBSPOT_URL = "http://localhost/webhooks/hubspot"  # the test client's request.url


def fuzz(strategy: st.SearchStrategy[Any], check: Callable[[Any], None], examples: int) -> int:
    """Run `check` on `examples` inputs drawn from `strategy`; how many it ran (asserted: hypothesis stops early
    on a small input space, which would make a count of cases a promise the suite does not keep)."""
    ran = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(value: Any) -> None:
        ran.append(1)
        check(value)

    prop()
    assert len(ran) >= examples, f"ran {len(ran)} of {examples} cases"
    return len(ran)


def answered(response: Any, allowed: set[int] = ALLOWED) -> None:
    """The property every request must hold: a 4xx we chose (never a 5xx), and JSON when the answer is JSON."""
    assert response.status_code < 500, (response.status_code, response.get_data()[:500])
    assert response.status_code in allowed, (response.status_code, response.get_data()[:500])
    if response.mimetype == "application/json":
        assert isinstance(response.get_json(), (dict, list))


# ---------------------------------------------------------------- strategies

# Text that fools a lax check: digits str.isdigit() accepts and int() refuses, numbers past 64 bits, address lists
# and groups, a display name, a header break.
tricky = st.sampled_from(["²", "١٢٣", "𝟙𝟚", "1" * 40, "-1", " 7", "0x1f", "1e400", "a,victim1@example.com",
                          "grp:victim2@example.com;", "Bob <bob@example.com>", "x@example.com\r\nBcc: y@example.com",
                          "\x00", "\u202e", "é"])
# Header values as a server hands them over: any character but CR, LF and NUL (which no server passes on).
header_values = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
                        max_size=80) | tricky.filter(lambda v: not any(c in v for c in "\r\n\x00"))
# Every JSON shape, with numbers beyond 64 bits and text in any script.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=10**31)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40) | tricky,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25)
json_bytes = json_values.map(lambda value: json.dumps(value).encode())
# Nesting that a recursive parser turns into a RecursionError, in the shapes the issue reported and more.
deep = st.builds(lambda n, opener: opener * n, st.integers(min_value=900, max_value=120_000),
                 st.sampled_from([b"[", b'{"a":', b'[{"a":']))
garbage = st.binary(max_size=600) | json_bytes | deep


def fixtures(folder: str) -> list[Any]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "webhooks" / folder / "fixtures")
                                                                           .glob("*.json"))]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, prefix + (index,))
    return found


@st.composite
def mutated(draw: st.DrawFn, docs: list[Any]) -> Any:
    """A real payload with one part replaced by any JSON value, or removed: the shape a receiver half expects."""
    doc = json.loads(json.dumps(draw(st.sampled_from(docs))))
    path = draw(st.sampled_from(_paths(doc)))
    if not path:
        return draw(json_values)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return doc


# ---------------------------------------------------------------- signers (a sender holding the real secret)

def form_headers(secret: str, body: bytes, msg_id: str = "msg_fuzz", stamp: int | None = None) -> dict[str, str]:
    """Standard Webhooks over the raw bytes, as the spec defines it (the package signs text only)."""
    stamp = stamp if stamp is not None else int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{stamp}.".encode() + body
    signature = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def hubspot_headers(secret: str, body: bytes) -> dict[str, str]:
    # HubSpot signs the body as text; the receiver reads undecodable bytes as U+FFFD, and so does this signer.
    return signature_headers(secret, "POST", HUBSPOT_URL, body.decode("utf-8", errors="replace"), None, ("v3",))
