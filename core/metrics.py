"""Prometheus metrics of the service (connectors count their own calls in connectors/policy.py). Labels carry sources and outcomes, never personal data."""
from prometheus_client import Counter, Gauge

INBOX_RECEIVED = Counter("switchboard_inbox_received_total", "Inbound events by source and outcome",
                         ["source", "outcome"])  # stored | repeat | rejected
JOBS = Counter("switchboard_jobs_total", "Jobs run by name and outcome", ["job", "outcome"])
SLA_BREACHES = Counter("switchboard_sla_breaches_total", "Confirmation SLA breaches detected", ["kind"])
INBOX_BACKLOG = Gauge("switchboard_inbox_backlog", "Inbox rows by status", ["status"])
