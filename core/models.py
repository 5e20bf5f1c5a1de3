"""The tables of Switchboard's state. Times are UTC; personal data lives only where a flow needs it, so that
erasure knows every place to clear (customers' names, identities' values, inbox payloads)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, types
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(types.TypeDecorator[datetime]):
    """Stores naive UTC and hands back aware UTC, on SQLite (which keeps no zone) as on PostgreSQL."""
    impl = types.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


# SQLite only auto-increments INTEGER primary keys; PostgreSQL gets BIGINT.
Id = BigInteger().with_variant(types.Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5), default="hu")
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    contract_end: Mapped[date | None]
    consent_withdrawn_at: Mapped[datetime | None]
    legal_hold: Mapped[bool] = mapped_column(default=False)
    erased_at: Mapped[datetime | None]
    merged_into_id: Mapped[int | None] = mapped_column(Id, ForeignKey("customers.id"))
    # Restriction of processing (GDPR Art. 18) or an objection (Art. 21): kept, but no flow writes or mails until
    # lifted (flows/privacy/restriction.py).
    restricted_at: Mapped[datetime | None]
    restriction: Mapped[str | None] = mapped_column(String(20))  # restriction | objection

    identities: Mapped[list[Identity]] = relationship(back_populates="customer")


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("system", "value", name="uq_identity_system_value"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id"), index=True)
    system: Mapped[str] = mapped_column(String(20))  # email | phone | hubspot | happyfox | aircall
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(120), unique=True)  # what made it: "inbox:17", "happyfox:9"
    customer_id: Mapped[int | None] = mapped_column(Id, ForeignKey("customers.id"), index=True)
    happyfox_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    happyfox_display_id: Mapped[str | None] = mapped_column(String(40))
    hubspot_ticket_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    told_id: Mapped[str | None] = mapped_column(String(40))  # the identifier the customer was given
    channel: Mapped[str] = mapped_column(String(20))  # form | email | phone | post | fax | social | in_person
    category: Mapped[str | None] = mapped_column(String(60))
    service_area: Mapped[str | None] = mapped_column(String(120))
    subject: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(60))
    is_closed: Mapped[bool] = mapped_column(default=False)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirm_due_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    survey_sent_at: Mapped[datetime | None]
    survey_token: Mapped[str | None] = mapped_column(String(200))
    survey_score: Mapped[int | None]
    survey_comment: Mapped[str | None] = mapped_column(Text)
    survey_answered_at: Mapped[datetime | None]
    sla_alerted_at: Mapped[datetime | None]
    # The first response by staff (policy 001 step 3: a public HappyFox reply or an outbound call), its deadline
    # and the alerts sent for it (flows/intake/first_response.py).
    first_response_due_at: Mapped[datetime | None] = mapped_column(index=True)
    first_response_at: Mapped[datetime | None]
    response_due_alerted_at: Mapped[datetime | None]
    response_overdue_alerted_at: Mapped[datetime | None]


class InboxEvent(Base):
    """Every verified inbound event, stored before it is acknowledged."""
    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("source", "event_key", name="uq_inbox_source_key"),
                      Index("ix_inbox_status", "status"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # form | aircall | happyfox | hubspot | manual
    event_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | failed | dead | held
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]


class Effect(Base):
    """One row per outbound write, so that a retried job finds what it already did."""
    __tablename__ = "effects"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    remote_id: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Erasure(Base):
    __tablename__ = "erasures"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(Id, ForeignKey("customers.id"), index=True)
    subject_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(40))  # request | consent_withdrawn | retention
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | failed
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]

    steps: Mapped[list[ErasureStep]] = relationship(back_populates="erasure", order_by="ErasureStep.id")


class ErasureStep(Base):
    __tablename__ = "erasure_steps"
    __table_args__ = (UniqueConstraint("erasure_id", "processor", name="uq_erasure_step"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    erasure_id: Mapped[int] = mapped_column(Id, ForeignKey("erasures.id"))
    processor: Mapped[str] = mapped_column(String(20))  # hubspot | happyfox | aircall | gmail | switchboard
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    erasure: Mapped[Erasure] = relationship(back_populates="steps")


class PrivacyRequest(Base):
    """A data-subject request (GDPR Art. 12-21, flows/privacy/requests.py): who asked (a customer and a salted hash of
    the identifier they gave, never the identifier itself), how it arrived, the identity check that must precede any
    erasure or export, its deadline (one month from receipt, extendable once by two months with a reason) and state."""
    __tablename__ = "privacy_requests"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # access | erasure | rectification | restriction | objection | withdrawal | unspecified
    state: Mapped[str] = mapped_column(String(30), default="awaiting_verification", index=True)  # | verified | done | refused
    channel: Mapped[str] = mapped_column(String(20))  # cli | admin | mail | staff
    source_key: Mapped[str | None] = mapped_column(String(200), unique=True)  # "mail:<gmail id>": read twice, one request
    customer_id: Mapped[int | None] = mapped_column(Id, ForeignKey("customers.id"), index=True)
    subject_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5), default="hu")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(index=True)
    extended_at: Mapped[datetime | None]
    extension_reason: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[str | None] = mapped_column(String(200))      # the staff member or script, not the subject
    verification_method: Mapped[str | None] = mapped_column(String(40))
    erasure_id: Mapped[int | None] = mapped_column(Id, ForeignKey("erasures.id"))
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)      # what was done where: ids, counts, file names
    note: Mapped[str | None] = mapped_column(Text)                    # staff's words: why refused, what was changed
    completed_at: Mapped[datetime | None]
    # Where the outcome is mailed (Art. 12(1)): kept through the erasure it asked for, cleared once the mail is sent.
    reply_to: Mapped[str | None] = mapped_column(String(320))
    notified_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tasks: Mapped[list[RequestTask]] = relationship(back_populates="request", order_by="RequestTask.id")


class RequestTask(Base):
    """What staff do by hand at a processor without an API (`privacy.manual_processors`) for a verified request;
    the request completes only when each is confirmed."""
    __tablename__ = "request_tasks"
    __table_args__ = (UniqueConstraint("request_id", "processor", name="uq_request_task"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    request_id: Mapped[int] = mapped_column(Id, ForeignKey("privacy_requests.id"), index=True)
    processor: Mapped[str] = mapped_column(String(60))
    instructions: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    confirmed_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)

    request: Mapped[PrivacyRequest] = relationship(back_populates="tasks")


class Consent(Base):
    """A consent given on a form (flows/privacy/consent.py): when, on which form, to which version of its text; and
    when it was withdrawn."""
    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id"), index=True)
    inbox_id: Mapped[int] = mapped_column(Id, unique=True)     # the submission that gave it: once per submission
    form: Mapped[str] = mapped_column(String(60))
    version: Mapped[str] = mapped_column(String(60))
    given_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]


class Tombstone(Base):
    """Salted hashes of an erased person's identifiers: sync flows must not copy them back."""
    __tablename__ = "tombstones"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erasure_id: Mapped[int | None] = mapped_column(Id, ForeignKey("erasures.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Audit(Base):
    """Append-only. `detail` holds ids, counts and hashes, never raw personal data."""
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(60))
    customer_id: Mapped[int | None] = mapped_column(Id, index=True)
    ticket_id: Mapped[int | None] = mapped_column(Id, index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Complaint(Base):
    """The complaint register of policy 004, one row per complaint-category ticket (its twelve fields are numbered
    below). `customer_*` is identification data collected for the complaint only: cleared when it closes
    (`id_removed_at`); the rest is kept until `keep_until` (closure + 5 years)."""
    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(Id, ForeignKey("tickets.id"), unique=True)
    customer_id: Mapped[int | None] = mapped_column(Id, ForeignKey("customers.id"), index=True)
    customer_name: Mapped[str | None] = mapped_column(String(400))          # (1) customer data
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_phone: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(Text)                        # (2) the event or fact concerned
    description: Mapped[str | None] = mapped_column(Text)                    # (2) description
    received_at: Mapped[datetime] = mapped_column(index=True)                # (3)
    channel: Mapped[str] = mapped_column(String(20))                         # (4)
    event_type: Mapped[str | None] = mapped_column(String(40))               # (5) a code of config complaints
    person_concerned: Mapped[str | None] = mapped_column(String(200))        # (6)
    loss_amount_huf: Mapped[int | None] = mapped_column(BigInteger)          # (7)
    measure: Mapped[str | None] = mapped_column(Text)                        # (8)
    measure_due_at: Mapped[datetime | None]                                  # (9)
    measure_responsible: Mapped[str | None] = mapped_column(String(200))     # (9)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)  # (10) open | closed
    outcome: Mapped[str | None] = mapped_column(String(20))                  # (11) founded | unfounded
    closed_at: Mapped[datetime | None]                                       # (12)
    investigation_ended_at: Mapped[datetime | None]
    notice_due_at: Mapped[datetime | None]    # unfounded: the written answer with reasons is due
    notice_sent_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    due_alerted_at: Mapped[datetime | None]
    overdue_alerted_at: Mapped[datetime | None]
    id_removed_at: Mapped[datetime | None]
    keep_until: Mapped[date | None]
    # The complaint officer's workflow (policy 004 §11-§19, flows/complaints/complaint_officer.py).
    reasons: Mapped[str | None] = mapped_column(Text)                        # unfounded: the written reasons
    referral: Mapped[str | None] = mapped_column(String(20))     # policy 004 §19: damages | authority | labour | criminal
    measure_checked_at: Mapped[datetime | None]                              # policy 004 §18: the fulfilment checked
    proposal: Mapped[str | None] = mapped_column(Text)   # policy 004 §20: how to prevent this event type (quarterly report)
    answer_due_at: Mapped[datetime | None]                                   # the answer to the complainant
    answer_due_alerted_at: Mapped[datetime | None]
    answer_overdue_alerted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Cursor(Base):
    """Where a periodic job (reconciliation, sweeps) resumes after a crash."""
    __tablename__ = "cursors"
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Alert(Base):
    """A failure somebody must hear of (flows/alerts.py), once per `key`: raising it again only counts. `detail`
    holds ids, counts and kinds, never personal data; `command` and `url` say where to act."""
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)   # "inbox.dead:17"
    kind: Mapped[str] = mapped_column(String(60), index=True)     # inbox.dead | erasure.step_failed | ...
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    command: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(String(500))
    raised: Mapped[int] = mapped_column(default=1)                # how often the same failure was seen
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_raised_at: Mapped[datetime] = mapped_column(default=utcnow)

    deliveries: Mapped[list[AlertDelivery]] = relationship(back_populates="alert", order_by="AlertDelivery.id")


class AlertDelivery(Base):
    """One alert to one target; retried until sent."""
    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "target", name="uq_alert_delivery"),
                      Index("ix_alert_deliveries_status", "status"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    alert_id: Mapped[int] = mapped_column(Id, ForeignKey("alerts.id"))
    target: Mapped[str] = mapped_column(String(200))   # AlertTargetSpec.key: mail:addr | webhook:hash | env:NAME
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    alert: Mapped[Alert] = relationship(back_populates="deliveries")


class FormRate(Base):
    """One hosted-form submission (webhooks/forms.py) by a client address, kept for the per-address rate limit:
    the address only as a salted hash, and only for the day."""
    __tablename__ = "form_rate"
    __table_args__ = (Index("ix_form_rate_address_at", "address_hash", "at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
