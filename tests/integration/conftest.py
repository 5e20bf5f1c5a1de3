"""Fixtures the flow tests share (tests/conftest.py has the sandbox, databases and settings)."""
from __future__ import annotations

from typing import Any

import pytest

from .flowkit import fast_vendors


@pytest.fixture
def flow(settings: Any, sandbox: Any) -> Any:
    """The sandbox, with the process's connectors on a tiny back-off (`flowkit.fast_vendors`). A module whose flows
    need another set-up (privacykit's `quick`) defines its own."""
    fast_vendors()
    return sandbox
