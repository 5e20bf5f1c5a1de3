"""Every module that registers jobs is imported here, so that a worker and a clock know all of them."""
from flows import dispatch  # noqa: F401  - the inbox job and its sweep; through flows/routes.py, every handler
from flows import survey  # noqa: F401  - write_survey_response and its sweep
from flows import closure, first_response, reconcile, sla  # noqa: F401  - status mirror handlers, reconciliation, SLA checks
from flows import complaint_deadlines, complaint_report, complaint_sync  # noqa: F401  - complaint register, alerts, report
from flows import erasure, hold_release, retention  # noqa: F401  - erasure steps and their sweep, the retention sweep, complaint holds released
from flows import contact_merge  # noqa: F401  - HubSpot follows our customer merges, and its sweep
from flows import alerts  # noqa: F401  - alert delivery and its sweep
