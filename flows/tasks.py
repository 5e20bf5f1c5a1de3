"""Every module that registers jobs is imported here, so that a worker and a clock know all of them."""
from flows import (
    alerts,  # noqa: F401  - alert delivery and its sweep
    contact_merge,  # noqa: F401  - HubSpot follows our customer merges, and its sweep
    dispatch,  # noqa: F401  - the inbox job and its sweep; through flows/routes.py, every handler
)
