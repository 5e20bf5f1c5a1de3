"""Reading the complaint fields staff type into HappyFox and HubSpot: amounts, outcomes, event types, dates."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.settings import DEFAULT_CONFIG, load_config
from flows.complaints.complaint_fields import BadValue, parse, render

SPEC = load_config(DEFAULT_CONFIG).complaints


@pytest.mark.parametrize("raw, expected", [("100 000 Ft", 100000), ("HUF 150,000", 150000), ("150.000", 150000),
                                           ("99999", 99999), (250000, 250000), ("120000.0", 120000),
                                           ("1\u00a0000\u00a0000 Ft", 1000000), ("", None), (None, None)])
def test_amounts(raw, expected):
    assert parse("loss_amount_huf", raw, SPEC) == expected


@pytest.mark.parametrize("raw", ["sok pénz", "-5", "12 euro"])
def test_unreadable_amounts_name_the_field_not_the_value(raw):
    with pytest.raises(BadValue) as caught:
        parse("loss_amount_huf", raw, SPEC)
    assert str(caught.value).startswith("loss_amount_huf:") and raw not in str(caught.value)


def test_outcomes_and_event_types_in_either_language():
    assert parse("outcome", "Megalapozatlan", SPEC) == "unfounded"
    assert parse("outcome", "founded", SPEC) == "founded"
    assert parse("event_type", "Külső csalás", SPEC) == "external_fraud"
    assert parse("event_type", "business disruption or system failure", SPEC) == "disruption"
    assert parse("event_type", "execution", SPEC) == "execution"
    for name, raw in (("outcome", "maybe"), ("event_type", "weather")):
        with pytest.raises(BadValue):
            parse(name, raw, SPEC)


def test_dates_are_budapest_days():
    # A deadline runs to the end of its day; an investigation ends at the start of its day (CEST in July).
    assert parse("measure_due_at", "2026-07-31", SPEC) == datetime(2026, 7, 31, 21, 59, 59, tzinfo=timezone.utc)
    assert parse("investigation_ended_at", "2026/07/31", SPEC) == datetime(2026, 7, 30, 22, tzinfo=timezone.utc)
    assert parse("investigation_ended_at", "1785535200000", SPEC) == datetime(2026, 7, 31, 22, tzinfo=timezone.utc)
    assert render("measure_due_at", parse("measure_due_at", "2026-07-31", SPEC)) == "2026-07-31"
    with pytest.raises(BadValue):
        parse("measure_due_at", "next week", SPEC)


def test_the_seven_event_types_have_both_labels():
    assert len(SPEC.event_types) == 7
    assert all(set(e.label) == {"hu", "en"} for e in SPEC.event_types)
    assert SPEC.escalation_threshold_huf == 100000
