"""Prometheus metrics of the service (connectors count their own calls in connectors/policy.py). Labels carry sources and outcomes, never personal data."""
from prometheus_client import REGISTRY, Counter, Gauge

INBOX_RECEIVED = Counter("switchboard_inbox_received_total", "Inbound events by source and outcome",
                         ["source", "outcome"])  # stored | repeat | ignored | rejected | invalid
JOBS = Counter("switchboard_jobs_total", "Jobs run by name and outcome", ["job", "outcome"])
SLA_BREACHES = Counter("switchboard_sla_breaches_total", "Confirmation SLA breaches detected", ["kind"])
INBOX_BACKLOG = Gauge("switchboard_inbox_backlog", "Inbox rows by status", ["status"])


class FirstResponseCollector:
    """`switchboard_first_response_tickets{state}`: tickets answered in time, answered late, and waiting past
    their deadline (policy 001 step 3). Read from the database at each scrape, so every process serves the same
    numbers (a counter in the worker would not reach the web process's /metrics) and a restart loses nothing."""

    def describe(self):  # type: ignore[no-untyped-def]
        """The family's name without a query (the registry asks at registration, before any database)."""
        from prometheus_client.core import GaugeMetricFamily
        yield GaugeMetricFamily("switchboard_first_response_tickets", "", labels=["state"])

    def collect(self):  # type: ignore[no-untyped-def]
        from datetime import datetime, timezone

        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import func, select

        from core import store
        from core.models import Ticket
        family = GaugeMetricFamily("switchboard_first_response_tickets",
                                   "Tickets by first-response state: in_time, late, overdue (still waiting)",
                                   labels=["state"])
        due, at = Ticket.first_response_due_at, Ticket.first_response_at
        queries = {"in_time": (due.is_not(None), at.is_not(None), at <= due),
                   "late": (due.is_not(None), at.is_not(None), at > due),
                   "overdue": (due.is_not(None), at.is_(None), Ticket.is_closed.is_(False),
                               due < datetime.now(timezone.utc))}
        try:
            with store.session() as s:
                counts = {state: s.scalar(select(func.count()).select_from(Ticket).where(*where))
                          for state, where in queries.items()}
        except Exception:  # no database here (or not reachable): the family is left out, the scrape still works
            return
        for state, count in counts.items():
            family.add_metric([state], count or 0)
        yield family


REGISTRY.register(FirstResponseCollector())
