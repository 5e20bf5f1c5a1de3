"""The PaaS topology in real-vendor mode (docs/deploy.md): a standalone `switchboard sandbox --webhook-url ...
--google-key FILE` stands in for the four vendors and Google's token server, and the service runs as the Procfile
declares it, `release`, `web`, `worker` and `clock` as separate processes on PostgreSQL and Redis, with every
credential set (none of them the sandbox's defaults) and every `*_BASE_URL` at the sandbox. Nothing in the service
knows it talks to a sandbox: Gmail signs in with the service-account key through google-auth.

The README walkthrough then runs against it: form, confirmation mail, close, survey, call, export, erase, sync."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import SANDBOX_DEFAULTS
from tests.conftest import SWITCHBOARD, drop_postgres_database, postgres_database
from tests.e2e.conftest import poll
from tests.e2e.test_make_run import CLOSED_STAGE, SUBMISSION, confirmation_mails, survey_mails
from tests.integration.test_run import Process, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

EMAIL = SUBMISSION["fields"]["email"]
POLL_SECONDS = 60.0
# Every credential a deployment sets, each different from the sandbox's defaults: a wire that was not connected
# would show as a 401 or 403 in the sandbox's call log.
CREDENTIALS = {
    "HUBSPOT_ACCESS_TOKEN": "pat-eu1-topology-hubspot", "HUBSPOT_CLIENT_SECRET": "topology-hubspot-client-secret",
    "HAPPYFOX_API_KEY": "topology-happyfox-key", "HAPPYFOX_AUTH_CODE": "topology-happyfox-code",
    "HAPPYFOX_WEBHOOK_SECRET": "topology-happyfox-webhook", "AIRCALL_API_ID": "topology-aircall-id",
    "AIRCALL_API_TOKEN": "topology-aircall-token", "AIRCALL_WEBHOOK_TOKEN": "topology-aircall-webhook",
    "GMAIL_USER": "support@example.com",
    "FORM_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"topology-form-secret-0123456789").decode(),
    "ADMIN_TOKEN": "topology-admin-token", "SECRET_KEY": "topology-secret-key",
}
assert not set(CREDENTIALS.values()) & set(SANDBOX_DEFAULTS.values()) - {"support@example.com"}


class Topology:
    """The sandbox process and the service's processes, and what a test reads of them. `bases` are the web
    processes' addresses (`base` the first's, where the sandbox sends the vendors' webhooks)."""

    def __init__(self, tmp_path: Path, env: dict[str, str], sandbox: Process, sandbox_url: str,
                 bases: list[str]) -> None:
        self.tmp_path, self.env, self.sandbox_process, self.bases = tmp_path, env, sandbox, bases
        self.base = bases[0]
        self.sandbox = httpx.Client(base_url=sandbox_url, timeout=10)
        self.processes: dict[str, Process] = {"sandbox": sandbox}

    def state(self, service: str) -> dict[str, Any]:
        return self.sandbox.get("/_sandbox/state").raise_for_status().json()[service]

    def mail(self) -> list[dict[str, Any]]:
        return self.sandbox.get("/_sandbox/mail").raise_for_status().json()

    def output(self) -> str:
        return "\n".join(f"--- {name}\n{p.text[-3000:]}" for name, p in self.processes.items())

    def until(self, what: str, check: Callable[[], Any]) -> Any:
        return poll(what, check, lambda: f"state {self.sandbox.get('/_sandbox/state').text[:2000]}\n"
                                         f"calls {self.sandbox.get('/_sandbox/calls').text[-2000:]}\n{self.output()}",
                    POLL_SECONDS)

    def ops(self, *args: str) -> str:
        """An ops command as a one-off process of the deployment (`heroku run switchboard ...`)."""
        result = subprocess.run(SWITCHBOARD + list(args), capture_output=True, text=True, timeout=180,
                                cwd=self.tmp_path, env={**self.env, "COLUMNS": "200"})
        output = result.stdout + result.stderr
        assert result.returncode == 0 and "Traceback" not in output, f"{args}: {output}\n{self.output()}"
        return output

    def start(self, name: str, *args: str) -> Process:
        """Start (or start again) the service's process `name`: `web`, `worker2`, `clock`..."""
        self.processes[name] = Process(list(args), self.tmp_path, **self.env)
        return self.processes[name]


def environment(tmp_path: Path, database_url: str, redis_url: str, sandbox_url: str, smtp_port: int,
                key_file: Path, base: str) -> dict[str, str]:
    env = {**os.environ, **CREDENTIALS, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"), "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "PUBLIC_BASE_URL": base,
           "WEB_CONCURRENCY": "1", "PYTHONUNBUFFERED": "1"}
    env.update({f"{vendor}_BASE_URL": sandbox_url for vendor in ("HUBSPOT", "HAPPYFOX", "AIRCALL", "GMAIL")})
    return env


@contextlib.contextmanager
def deployed(tmp_path: Path, redis_url: str, webs: int = 1, workers: int = 1,
             **settings: str) -> Iterator[Topology]:
    """The standalone sandbox, `release`, then `webs` web processes (each on a port of its own, no proxy),
    `workers` workers and one clock, on a new PostgreSQL database and `redis_url`; `settings` override variables
    of the deployment's environment (WEB_CONCURRENCY, SWITCHBOARD_CONFIG...)."""
    database_url = postgres_database()
    sandbox_port, smtp_port = free_port(), free_port()
    ports = [free_port() for _ in range(webs)]
    sandbox_url, bases = f"http://127.0.0.1:{sandbox_port}", [f"http://127.0.0.1:{port}" for port in ports]
    key_file = tmp_path / "secrets" / "google-key.json"
    env = {**environment(tmp_path, database_url, redis_url, sandbox_url, smtp_port, key_file, bases[0]), **settings}
    # The sandbox gets the deployment's credentials too: they are what its fakes accept and sign webhooks with.
    sandbox = Process(["sandbox", "--port", str(sandbox_port), "--smtp-port", str(smtp_port), "--webhook-url",
                       bases[0], "--google-key", str(key_file)], tmp_path, **{k: v for k, v in env.items()
                                                                            if k in CREDENTIALS})
    topology = Topology(tmp_path, env, sandbox, sandbox_url, bases)
    try:
        sandbox.wait_for_line("credentials:")
        assert key_file.exists()
        topology.ops("db", "upgrade")  # release
        for n, port in enumerate(ports):
            topology.start(f"web{n + 1 if n else ''}", "serve", "--host", "127.0.0.1", "--port", str(port))
        for n in range(workers):
            topology.start(f"worker{n + 1 if n else ''}", "worker")
        topology.start("clock", "clock")
        for n, base in enumerate(bases):
            topology.processes[f"web{n + 1 if n else ''}"].wait_until_answering(f"{base}/healthz")
        topology.processes["clock"].wait_for_line("clock started")
        for base in bases:
            topology.until("the web process ready", lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200)
        yield topology
    finally:
        for process in topology.processes.values():
            process.kill()
        drop_postgres_database(database_url)


@pytest.fixture
def topology(tmp_path: Path, redis_url: str) -> Iterator[Topology]:
    with deployed(tmp_path, redis_url) as running:
        yield running


def test_the_readme_walkthrough_in_real_vendor_mode(topology):
    t = topology
    assert "real vendors" in t.ops("config", "check")
    # The fakes take the deployment's credentials, not the sandbox's defaults: a mis-wired service could not pass.
    assert t.sandbox.get("/crm/v3/objects/contacts", headers={
        "Authorization": f"Bearer {SANDBOX_DEFAULTS['hubspot_access_token']}"}).status_code == 401
    assert t.sandbox.get("/gmail/v1/users/me/messages", headers={
        "Authorization": "Bearer sandbox-gmail-token"}).status_code == 401
    # A mail from the customer in the support mailbox, for the export and the erasure to find.
    t.sandbox.post("/_sandbox/gmail/messages", json={"from": f"Anna <{EMAIL}>", "to": CREDENTIALS["GMAIL_USER"],
                                                      "subject": "Belépés", "body": "Nem tudok belépni."})

    # Form -> HubSpot contact, HappyFox ticket, mirrored HubSpot ticket, confirmation mail.
    emitted = t.sandbox.post("/_sandbox/emit", json={"service": "form", "data": SUBMISSION}).json()
    assert emitted["status"] == 202, emitted
    ticket = t.until("the HappyFox ticket", lambda: next(iter(t.state("happyfox")["tickets"].values()), None))
    t.until("the HubSpot contact and ticket", lambda: t.state("hubspot")["contacts"] and t.state("hubspot")["tickets"])
    t.until("the confirmation mail", lambda: confirmation_mails(t.mail(), ticket["display_id"]))

    # Close as staff do in HappyFox (its smart rule tells the service) -> one survey mail, the survey answered.
    closed = next(s["id"] for s in t.state("happyfox")["statuses"] if s["name"] == "Closed")
    answer = t.sandbox.post(f"/api/1.1/json/ticket/{ticket['id']}/staff_update/", json={"staff": 1, "status": closed},
                            auth=(CREDENTIALS["HAPPYFOX_API_KEY"], CREDENTIALS["HAPPYFOX_AUTH_CODE"]))
    assert answer.status_code == 200, answer.text
    survey = t.until("the survey mail", lambda: survey_mails(t.mail()))
    link = re.search(rf"{re.escape(t.base)}/survey/\S+", survey[0]["text"]).group(0)
    assert httpx.get(link).status_code == 200
    thanks = httpx.post(link, data={"score": "5", "comment": "Gyors volt."})
    assert thanks.status_code == 200 and httpx.post(link, data={"score": "1"}).status_code == 409
    hubspot_ticket = next(iter(t.state("hubspot")["tickets"]))
    t.until("the HubSpot ticket closed", lambda: t.state("hubspot")["tickets"][hubspot_ticket]["properties"]
            .get("hs_pipeline_stage") == CLOSED_STAGE)

    # A call -> logged on HubSpot.
    t.sandbox.post("/_sandbox/aircall/calls", json={"direction": "inbound", "raw_digits": "+36 1 234 5678",
                                                    "duration": 42}).raise_for_status()
    t.until("the call logged in HubSpot", lambda: t.state("hubspot")["calls"])

    # Export: everything held about the customer, the support mailbox read through the service account.
    exported = t.ops("export", "--email", EMAIL, "--out", str(t.tmp_path / "export"))
    assert "incomplete" not in exported
    access = json.loads(next((t.tmp_path / "export").glob("*.json")).read_text())
    assert "Belépés" in json.dumps(access, ensure_ascii=False)  # the mail's subject, from Gmail
    assert t.sandbox.get("/_sandbox/google").json()["grants"] >= 1

    # Erase: gone from every processor, the mailbox included.
    erased = t.ops("erase", "--email", EMAIL)
    assert "done" in erased and "failed" not in erased
    assert not [c for c in t.state("hubspot")["contacts"].values() if c["properties"].get("email") == EMAIL]
    assert ticket["id"] not in [x["id"] for x in t.state("happyfox")["tickets"].values()]
    assert t.state("gmail")["messages"] == {}

    # Sync: HappyFox, HubSpot and Switchboard agree.
    assert "nothing to fix" in t.ops("sync")

    # Late duplicates (a second webhook, a retried job) would show by the time no vendor call came for 2 s.
    assert t.sandbox.get("/_sandbox/idle", params={"quiet": 2, "timeout": 30}, timeout=40).status_code == 200
    assert len(survey_mails(t.mail())) == 1 and len(confirmation_mails(t.mail(), ticket["display_id"])) == 1
    calls = t.sandbox.get("/_sandbox/calls").json()
    refused = [c for c in calls if c["status"] in (401, 403)]
    assert len(refused) == 2, refused  # the two probes above; every credential reached the sandbox as set
    assert {c["service"] for c in calls} >= {"hubspot", "happyfox", "aircall", "gmail", "google"}
    for name, process in t.processes.items():
        assert process.proc.poll() is None, f"{name} exited:\n{process.text[-3000:]}"
        assert "Traceback" not in process.text, f"{name}:\n{process.text[-3000:]}"
    assert "clock tick failed" not in t.processes["clock"].text

