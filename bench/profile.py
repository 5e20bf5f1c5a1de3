"""Where an acknowledgement's time goes: cProfile over signed website-form deliveries posted one after another
through Flask's test client to the receiver on SQLite, the parts summed by where they run.

Serial on purpose: it shows each layer's own cost per request. Under load the group commit (core/ingest.py)
shares the commit among the requests in flight, which a serial run cannot show; bench/ingest.py measures that.
"""
from __future__ import annotations

import cProfile
import os
import pstats
import tempfile
import time
import uuid
from datetime import datetime, timezone
from typing import Any

DELIVERIES = 2000
# Where each part runs: (label, what it is, file and function names whose cumulative time counts for it).
PARTS = (
    ("the inbox commit", "core/ingest.py writing the row and its job, the commit (fsync) included",
     ("ingest.py", ("_write_sqlite", "_write_postgres"))),
    ("verifying the signature", "Standard Webhooks HMAC over the raw body",
     ("form/source.py", ("verify",))),
    ("reading the form", "the body parsed and validated against the YAML mapping",
     ("form/source.py", ("parse",))),
)


def _deliveries(secret: str) -> list[tuple[bytes, dict[str, str]]]:
    import json

    from standardwebhooks import Webhook
    body = json.dumps({"form": "website", "fields": {
        "vezeteknev": "Kovács", "keresztnev": "Éva", "email": "kovacs.eva@example.com", "cel": "hibabejelentes",
        "termek": "Crossec Norma", "rovid_leiras": "Nem tudok belépni"}}).encode()
    signer, found = Webhook(secret), []
    for _ in range(DELIVERIES):
        msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
        found.append((body, {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                             "webhook-signature": signer.sign(msg_id, now, body.decode()),
                             "Content-Type": "application/json"}))
    return found


def _cumulative(stats: pstats.Stats, path: str, names: tuple[str, ...]) -> float:
    """The cumulative seconds of the functions `names` defined in a file whose path ends in `path`."""
    # `Stats.stats`, the table pstats' own reports read ((file, line, function) -> (calls, primitive calls, own
    # time, cumulative time, callers)): `get_stats_profile()` keys by bare function name, so two `verify`s collide.
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    return sum(row[3] for (filename, _, function), row in table.items()
               if function in names and filename.endswith(path))


def run() -> str:
    from core import settings as settings_module
    from core import store
    from core.settings import SANDBOX_DEFAULTS, Env, Settings, load_config
    from webhooks.app import create_app

    scratch = tempfile.mkdtemp(prefix="switchboard-profile-")
    secret = SANDBOX_DEFAULTS["form_webhook_secret"]
    env = Env(_env_file=None, database_url=f"sqlite:///{os.path.join(scratch, 'profile.sqlite')}",
              form_webhook_secret=secret)
    loaded = settings_module.use(Settings(env=env, config=load_config(env.switchboard_config)))
    store.upgrade(env.database_url)
    client = create_app(loaded).test_client()
    deliveries = _deliveries(secret)

    def post_all() -> None:
        for body, headers in deliveries:
            answer = client.post("/webhooks/form", data=body, headers=headers)
            assert answer.status_code == 202, answer.data

    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.runcall(post_all)
    elapsed = time.perf_counter() - started
    stats = pstats.Stats(profile)
    total = _cumulative(stats, "receiver.py", ("receive",)) or elapsed
    rows = []
    counted = 0.0
    for label, what, (path, names) in PARTS:
        seconds = _cumulative(stats, path, names)
        counted += seconds
        rows.append(f"| {label} | {seconds / total:.0%} | {what} |")
    rows.append(f"| everything else in the receiver | {max(total - counted, 0) / total:.0%} | routing, the "
                "event's key, the answer |")
    return "\n".join([
        "## Where an acknowledgement's time goes (`bench/profile.py`)",
        "",
        f"cProfile over {DELIVERIES:,} signed website-form deliveries posted one after another through Flask's "
        "test client to the receiver on SQLite (WAL, synchronous=FULL). Serial on purpose: each layer's own cost "
        "per request. Under load the group commit shares the commit among the requests in flight, which a serial "
        "run cannot show (see the ingest section).",
        "",
        f"{elapsed / DELIVERIES * 1000:.2f} ms a delivery end to end (profiled), {total / DELIVERIES * 1000:.2f} ms "
        "of it in the receiver's view function, of which:",
        "",
        "| part | share | what |",
        "| --- | ---: | --- |",
        *rows,
        "",
        "The rest of each delivery is Flask, werkzeug and the test client building the request.",
    ])
