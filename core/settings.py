"""Settings: secrets and endpoints from the environment, everything else from YAML, both validated.

`load()` returns one immutable `Settings`; a bad value raises `ConfigError` whose message names the file (or
"environment"), the key path and what was expected, and never a secret. `get()` caches it for the process.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import embedded

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "switchboard.yaml"

# The real vendors' base URLs; HappyFox has none since every account has its own host.
VENDOR_BASE_URLS = {
    "hubspot": "https://api.hubapi.com",
    "aircall": "https://api.aircall.io",
    "gmail": "https://gmail.googleapis.com",
}

# Credentials the sandbox accepts when the environment sets none; `switchboard run` wires them into the service.
SANDBOX_DEFAULTS = {
    "hubspot_access_token": "sandbox-hubspot-token",
    "hubspot_client_secret": "sandbox-hubspot-client-secret",
    "happyfox_api_key": "sandbox-happyfox-key",
    "happyfox_auth_code": "sandbox-happyfox-code",
    "happyfox_webhook_secret": "sandbox-happyfox-webhook-secret",
    "aircall_api_id": "sandbox-aircall-id",
    "aircall_api_token": "sandbox-aircall-token",
    "aircall_webhook_token": "sandbox-aircall-webhook-token",
    "gmail_user": "support@example.com",
    "form_webhook_secret": "whsec_c2FuZGJveC1mb3JtLXNlY3JldC0wMTIzNDU2Nzg5YWI=",
    "admin_token": "sandbox-admin-token",
    "secret_key": "sandbox-secret-key-not-for-production",
}
# The sandbox's fake OpenID Connect provider accepts this client (the staff console's sign-in, docs/staff.md).
SANDBOX_OIDC = {"client_id": "switchboard-staff-console", "client_secret": "sandbox-oidc-client-secret"}
# Gmail has no token variable (production signs in with a service account); against the sandbox this bearer is used.
SANDBOX_GMAIL_TOKEN = "sandbox-gmail-token"


class ConfigError(Exception):
    """A configuration problem a person can fix; the message is meant to be printed as it is."""


class NoSandbox(ConfigError):
    """No vendor credentials are set, so the vendors are the sandbox's fakes, and no `switchboard run` is up."""

    def __init__(self) -> None:
        super().__init__("no sandbox is running: start `make run` (or `switchboard run`) in another shell, "
                         "or set the vendor credentials (README: Pointing it at the real vendors)")


class Env(BaseSettings):
    """The environment variables (README.md#pointing-it-at-the-real-vendors). Secrets are SecretStr and are never
    printed."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    switchboard_config: Path = DEFAULT_CONFIG
    database_url: str = "sqlite:///var/switchboard.db"
    redis_url: str | None = None

    hubspot_base_url: str | None = None
    hubspot_access_token: SecretStr | None = None
    hubspot_client_secret: SecretStr | None = None
    happyfox_base_url: str | None = None
    happyfox_api_key: SecretStr | None = None
    happyfox_auth_code: SecretStr | None = None
    happyfox_webhook_secret: SecretStr | None = None
    aircall_base_url: str | None = None
    aircall_api_id: SecretStr | None = None
    aircall_api_token: SecretStr | None = None
    aircall_webhook_token: SecretStr | None = None
    gmail_base_url: str | None = None
    gmail_user: str | None = None
    google_application_credentials: Path | None = None
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "Support <support@example.com>"
    form_webhook_secret: SecretStr | None = None
    admin_token: SecretStr | None = None
    admin_tokens: SecretStr | None = None  # "name:token,name:token": one bearer token per script, named in the audit
    # The staff console's sign-in (docs/staff.md): Google is https://accounts.google.com.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    secret_key: SecretStr | None = None
    # Where customers reach this service (survey links in mails); an endpoint, so it comes from the environment.
    public_base_url: str = "http://127.0.0.1:8000"

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_url(cls, url: str) -> str:
        # PaaS add-ons hand out postgres:// URLs; SQLAlchemy wants an explicit dialect and driver.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    @field_validator("form_webhook_secret")
    @classmethod
    def _whsec(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and not secret.get_secret_value().startswith("whsec_"):
            raise ValueError("expected a Standard Webhooks secret starting with 'whsec_'")
        return secret

    @field_validator("admin_tokens")
    @classmethod
    def _named_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_script_tokens(value.get_secret_value())  # raises with the item's position, never its value
        return value

    def script_tokens(self) -> dict[str, str]:
        """Bearer tokens by script name: ADMIN_TOKENS, plus ADMIN_TOKEN under the name "admin"."""
        tokens = parse_script_tokens(self.secret("admin_tokens"))
        if self.admin_token is not None and "admin" not in tokens:
            tokens["admin"] = self.secret("admin_token")
        return tokens

    @property
    def vendor_credentials(self) -> dict[str, tuple[Any, ...]]:
        return {
            "hubspot": (self.hubspot_access_token,),
            "happyfox": (self.happyfox_api_key, self.happyfox_auth_code),
            "aircall": (self.aircall_api_id, self.aircall_api_token),
            "gmail": (self.google_application_credentials,),
        }

    @property
    def sandboxed(self) -> bool:
        """True when no vendor credential at all is set: the embedded default runs against the sandbox."""
        return not any(v for values in self.vendor_credentials.values() for v in values)

    def missing(self) -> list[str]:
        """The variables real-vendor mode requires that are not set: credentials, HappyFox's host, our secrets."""
        missing = []
        names = {"hubspot": ["HUBSPOT_ACCESS_TOKEN"], "happyfox": ["HAPPYFOX_API_KEY", "HAPPYFOX_AUTH_CODE"],
                 "aircall": ["AIRCALL_API_ID", "AIRCALL_API_TOKEN"], "gmail": ["GOOGLE_APPLICATION_CREDENTIALS"]}
        for vendor, values in self.vendor_credentials.items():
            missing += [name for name, value in zip(names[vendor], values) if not value]
        if not self.happyfox_base_url:
            missing.append("HAPPYFOX_BASE_URL")
        for name in ("SECRET_KEY", "ADMIN_TOKEN", "FORM_WEBHOOK_SECRET", "GMAIL_USER"):
            if not getattr(self, name.lower()) and not (name == "ADMIN_TOKEN" and self.admin_tokens):
                missing.append(name)
        return missing

    def check_complete(self) -> None:
        """With real vendors, every vendor needs its credentials and base URL, and the service its own secrets."""
        if self.sandboxed:
            return
        if missing := self.missing():
            raise ConfigError("environment: vendor credentials are set, so these are required too: "
                              + ", ".join(missing))

    def check_base_urls(self) -> None:
        """`*_BASE_URL` set without one vendor credential: a process that used them would call that host with no
        credentials, and every event would go dead on its first 401 (the sandbox's defaults are wired only by the
        `switchboard run` that started it). Refuse instead, naming what to set."""
        given = [f"{v.upper()}_BASE_URL" for v in ("hubspot", "happyfox", "aircall", "gmail")
                 if getattr(self, f"{v}_base_url")]
        if self.sandboxed and given:
            raise ConfigError(f"environment: {', '.join(given)} set but no vendor credential, so these are required "
                              f"too: {', '.join(self.missing())} (a standalone `switchboard sandbox` prints the ones "
                              "it accepts)")

    def base_url(self, vendor: str) -> str:
        url = getattr(self, f"{vendor}_base_url")
        if not url and self.sandboxed:  # never a real vendor host without real credentials
            raise NoSandbox()
        url = url or VENDOR_BASE_URLS.get(vendor)
        if not url:
            raise ConfigError(f"environment: {vendor.upper()}_BASE_URL: required")
        return url.rstrip("/")

    def require_vendors(self) -> None:
        """Raise NoSandbox when the vendors would be the sandbox's fakes and none is known to be running."""
        if self.sandboxed and not self.hubspot_base_url:
            raise NoSandbox()

    def serving_at(self, url: str) -> "Env":
        """This environment for a service reached at `url`: the links in mails point there, unless
        PUBLIC_BASE_URL says otherwise (behind a proxy, on a PaaS)."""
        return self if "public_base_url" in self.model_fields_set else self.model_copy(update={"public_base_url": url})

    def with_sandbox(self, base_url: str, smtp_port: int | None = None) -> "Env":
        """This environment pointed at a sandbox: its base URL for every vendor, its SMTP sink, and its default
        credentials wherever the environment sets none."""
        updates: dict[str, Any] = {f"{v}_base_url": base_url for v in ("hubspot", "happyfox", "aircall", "gmail")}
        if smtp_port is not None:
            updates.update(smtp_host="127.0.0.1", smtp_port=smtp_port)
        for name, value in SANDBOX_DEFAULTS.items():
            if getattr(self, name) is None:
                updates[name] = value if name == "gmail_user" else SecretStr(value)
        if self.oidc_issuer is None:  # staff sign in through the sandbox's fake Google, as it was started
            updates.update(oidc_issuer=base_url, oidc_client_id=self.oidc_client_id or SANDBOX_OIDC["client_id"],
                           oidc_client_secret=self.oidc_client_secret or SecretStr(SANDBOX_OIDC["client_secret"]))
        return self.model_copy(update=updates)

    def secret(self, name: str) -> str:
        """The plain value of a secret, or '' when unset (callers treat '' as "reject everything")."""
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else ""


SCRIPT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


def parse_script_tokens(text: str) -> dict[str, str]:
    """`name:token,name:token` -> {name: token}. An error names the item's position, never what it holds."""
    tokens: dict[str, str] = {}
    for position, item in enumerate((i.strip() for i in text.split(",") if i.strip()), start=1):
        name, _, token = item.partition(":")
        if not SCRIPT_NAME.match(name.strip()) or not token.strip():
            raise ValueError(f"item {position}: expected name:token (name: lowercase letters, digits, _ . -)")
        if name.strip() in tokens:
            raise ValueError(f"item {position}: the name is given twice")
        tokens[name.strip()] = token.strip()
    return tokens


# ---------------------------------------------------------------- YAML (config/switchboard.yaml)

class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormSpec(Strict):
    fields: dict[str, str]  # our field name -> the field name the form posts
    required: list[str] = []
    category_field: str = "purpose"
    service_area_field: str | None = "product"
    service_areas: list[str] = []          # the values the service-area field may take; empty: any
    language_field: str | None = None      # our field carrying the form's language (hu|en), when it has one
    language: Literal["hu", "en"] = "hu"   # the language when the form says none and the customer is new
    # The privacy-notice consent checkbox (flows/privacy/consent.py): our field name (mapped in `fields`) whose
    # value yes/true/on/1 records consent, and the version of the consent text the form shows.
    consent_field: str | None = None
    consent_version: str | None = None

    @model_validator(mode="after")
    def _required_are_mapped(self) -> "FormSpec":
        unknown = [name for name in self.required if name not in self.fields]
        if unknown:
            raise ValueError(f"required names fields that are not mapped: {', '.join(unknown)}")
        if self.consent_field is not None and (self.consent_field not in self.fields or not self.consent_version):
            raise ValueError("consent_field must be one of fields, and consent_version must be given with it")
        return self


class CategorySpec(Strict):
    happyfox: int
    hubspot: str
    complaint: bool = False
    label: dict[str, str] = {}


class StatusSpec(Strict):
    happyfox: list[str]
    hubspot_stage: str
    closed: bool = False


class RetentionSpec(Strict):
    years: int = Field(default=5, ge=1, le=10)
    from_: Literal["last_activity"] = Field(default="last_activity", alias="from")
    contract_years: int = Field(default=5, ge=1, le=10)
    contract_end_property: str = "contract_end_date"
    keep_anonymous_tickets: bool = True
    consent_withdrawn_property: str = "consent_withdrawn"  # a HubSpot contact property: set means withdrawn


class SlaSpec(Strict):
    confirm_within_working_days: int = Field(default=2, ge=1)
    unfounded_complaint_notice_working_days: int = Field(default=3, ge=1)
    first_response_within_working_days: int = Field(default=2, ge=1)  # policy 001 step 3
    alert_to: str | None = None


class SurveySpec(Strict):
    send_on: Literal["closed"] = "closed"
    template: str = "survey"
    link_ttl_days: int = Field(default=30, ge=1)
    resend_on_reclose: bool = False


class LimitSpec(Strict):
    """A vendor's documented rate: `requests` per `per_seconds`; pacing stays at or below it."""
    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)


class HubSpotSpec(Strict):
    pipeline: str = "0"
    default_stage: str = "1"
    source_id: str = "switchboard"
    # A stage change made on the HubSpot mirror: HappyFox owns status, so by default the mirror is put back
    # ("revert"); "push" carries the change to HappyFox instead (flows/closure/status_mirror.py).
    on_mirror_change: Literal["revert", "push"] = "revert"


class IntakeSpec(Strict):
    confirm_channels: list[str] = ["form", "email", "phone", "post", "fax", "social", "in_person"]
    ticket_on_missed_call: bool = True
    ticket_on_voicemail: bool = True
    # A hidden number's ticket has nobody to name, and HappyFox needs an email or a phone for the ticket's contact:
    # this address stands in (set one of your domain that nobody reads; no confirmation is mailed to it).
    hidden_number_email: str = "hidden-number@example.com"
    staff_id: int = 1  # the HappyFox staff member Switchboard writes notes and status changes as
    happyfox_priority: int | None = None  # priority id for new tickets; None: the account's default priority
    # HappyFox ticket custom fields, by id or by name (looked up once per process): the one holding our
    # idempotency key, and the report fields copied onto the ticket (service_area, channel, ...).
    happyfox_key_field: int | str = "switchboard_key"
    happyfox_fields: dict[str, int | str] = {"service_area": "Service area"}
    hubspot_key_property: str = "switchboard_key"  # a custom ticket/call property holding our idempotency key
    confirmation_template: str = "confirmation"


class EventTypeSpec(Strict):
    code: str
    label: dict[str, str]  # {"hu": ..., "en": ...}


# Policy 004's seven operational-risk event types; YAML may relabel them, the codes are what the register stores.
DEFAULT_EVENT_TYPES = [EventTypeSpec(code=c, label={"hu": hu, "en": en}) for c, hu, en in (
    ("internal_fraud", "Belső csalás", "Internal fraud"),
    ("external_fraud", "Külső csalás", "External fraud"),
    ("employment", "Munkáltatói gyakorlat és munkahelyi biztonság", "Employment practices and workplace safety"),
    ("clients_products", "Ügyfelek, üzleti gyakorlat, marketing és termékpolitika",
     "Clients, business practices, marketing and product policy"),
    ("physical_assets", "Tárgyi eszközökben bekövetkező károk", "Damage to physical assets"),
    ("disruption", "Üzletmenet megszakadása, rendszerhiba", "Business disruption or system failure"),
    ("execution", "Végrehajtás, teljesítés és folyamatkezelés", "Execution, delivery and process management"))]


class OfficerSpec(Strict):
    """The complaint officer (policy 004 §11): a new complaint is assigned to them in HappyFox (a staff id, and/or
    a group of staff ids subscribed to the ticket) and mailed to them."""
    email: str | None = None
    happyfox_assignee: int | None = None
    happyfox_subscribers: list[int] = []
    template: str = "complaint_routed"


class ComplaintsSpec(Strict):
    """The complaint register (policy 004): event types, the escalation threshold and who hears of what, and where
    staff fill the register's fields: HappyFox ticket custom fields (id or name) and HubSpot ticket properties,
    both keyed by the register's field names (event_type, person_concerned, loss_amount_huf, measure,
    measure_due_at, measure_responsible, outcome, investigation_ended_at)."""
    event_types: list[EventTypeSpec] = DEFAULT_EVENT_TYPES
    escalation_threshold_huf: int = Field(default=100_000, ge=0)
    managing_director: str | None = None  # the escalation mail's address
    escalation_template: str = "escalation"
    language: Literal["hu", "en"] = "hu"  # of staff mails and the quarterly report
    alert_to: list[str] = []              # deadline alerts; empty: sla.alert_to
    alert_template: str = "complaint_deadline"
    report_recipients: list[str] = []
    report_template: str = "complaint_report"
    happyfox_fields: dict[str, int | str] = {}
    hubspot_properties: dict[str, str] = {}
    keep_years: int = Field(default=5, ge=5, le=30)
    officer: OfficerSpec = OfficerSpec()
    answer_within_days: int = Field(default=30, ge=1)  # calendar days from receipt (consumer-protection limit)
    responsible: dict[str, str] = {}   # a measure's responsible person as staff type it -> their mail address
    answer_template: str = "complaint_unfounded_answer"

    def label(self, code: str | None, language: str = "hu") -> str:
        spec = next((e for e in self.event_types if e.code == code), None)
        if spec is None:
            return code or ""
        return spec.label.get(language) or spec.label.get("hu") or code or ""


class InputSpec(Strict):
    """What is refused at the door (400 naming the field), so that nothing accepted with a 202 is refused later by
    HappyFox (a ticket subject) or the mail server (a confirmation quoting the report): characters per text field,
    by our field name (`subject` is a manual ticket's, `summary` the form's that becomes the subject)."""
    max_chars: dict[str, int] = {"subject": 250, "summary": 250, "details": 20_000, "name": 200, "first_name": 100,
                                 "last_name": 100, "phone": 40, "purpose": 100, "product": 200, "category": 100}
    default_max_chars: int = Field(default=1000, gt=0)  # any other text field
    attachments_max_count: int = Field(default=5, ge=0)

    @field_validator("max_chars")
    @classmethod
    def _positive(cls, limits: dict[str, int]) -> dict[str, int]:
        bad = [name for name, limit in limits.items() if limit <= 0]
        if bad:
            raise ValueError(f"must be positive: {', '.join(bad)}")
        return limits

    def chars(self, field: str) -> int:
        return self.max_chars.get(field, self.default_max_chars)

    def too_long(self, values: Mapping[str, object]) -> dict[str, str]:
        """{field: error} for each text value longer than its limit."""
        return {name: f"longer than {self.chars(name)} characters" for name, value in values.items()
                if isinstance(value, str) and len(value) > self.chars(name)}


class AlertTargetSpec(Strict):
    """Where alerts go: a mail address, or a generic JSON webhook (Slack, Teams, a pager). A webhook URL that is a
    secret (Slack's and Teams' are) is named by an environment variable (`webhook_url_env`), never written here.
    `kinds`: only alerts whose kind starts with one of these (e.g. `inbox.`); empty: every alert."""
    email: str | None = None
    webhook_url: str | None = None
    webhook_url_env: str | None = None
    kinds: list[str] = []

    @model_validator(mode="after")
    def _one_destination(self) -> "AlertTargetSpec":
        given = [name for name in ("email", "webhook_url", "webhook_url_env") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of email, webhook_url, webhook_url_env")
        return self

    @property
    def key(self) -> str:
        """The target's name in `alert_deliveries`: the address, or the variable's name; a URL only by its hash
        (it may carry a token)."""
        if self.email:
            return f"mail:{self.email.strip().lower()}"
        if self.webhook_url_env:
            return f"env:{self.webhook_url_env}"
        import hashlib
        return "webhook:" + hashlib.sha256((self.webhook_url or "").encode()).hexdigest()[:16]

    def url(self) -> str | None:
        """The webhook's URL (read from the environment for `webhook_url_env`), or None for a mail target."""
        if self.webhook_url_env:
            return os.environ.get(self.webhook_url_env) or None
        return self.webhook_url

    def wants(self, kind: str) -> bool:
        return not self.kinds or any(kind.startswith(prefix) for prefix in self.kinds)


class AlertsSpec(Strict):
    """Failures somebody must hear of (flows/alerts.py): a dead inbox event, a failed erasure step, a reconcile
    that cannot mend something, SLA and complaint deadlines. Each is deduplicated and sent to every target once."""
    targets: list[AlertTargetSpec] = []
    language: Literal["hu", "en"] = "hu"
    template: str = "alert"


class HostedFormSpec(Strict):
    """A form Switchboard serves itself at `/forms/<name>` (webhooks/forms.py), for sites that cannot sign a
    webhook: which origins may embed it in an iframe, and how many submissions one client address may make."""
    frame_ancestors: list[str] = ["'self'"]       # Content-Security-Policy frame-ancestors sources
    rate_limit: int = Field(default=5, ge=1)      # submissions per client address ...
    rate_window_minutes: int = Field(default=10, ge=1)   # ... in this many minutes
    consent_required: bool = True                  # the privacy notice's checkbox must be ticked
    privacy_url: str | None = None                 # the privacy notice the consent checkbox links to


class ManualProcessorSpec(Strict):
    """A processor with no API (policy 002 names an IT contractor and a mobile carrier): each verified request of
    one of `kinds` gives staff a task with these instructions, due within `days` (and never after the request)."""
    name: str = Field(pattern=r"^[a-z0-9_]{1,60}$")
    label: dict[str, str] = {}                       # {"hu": ..., "en": ...}: how the person's mail names it
    instructions: str
    kinds: list[Literal["access", "erasure", "rectification", "restriction", "objection", "withdrawal"]] = [
        "access", "erasure", "rectification", "restriction", "withdrawal"]
    days: int = Field(default=14, ge=1, le=60)


class PrivacySpec(Strict):
    """Data-subject requests (flows/privacy/requests.py, docs/privacy.md#data-subject-requests). `mailbox`: the
    privacy address (policy 002 names `adatvedelem@`); its mail is read from GMAIL_USER's mailbox, which it must
    reach (an alias or a group delivering there). `warn_days`: a request due within this many days is alerted."""
    mailbox: str = "adatvedelem@example.com"
    warn_days: int = Field(default=7, ge=1, le=30)
    language: Literal["hu", "en"] = "hu"           # of a mail whose language cannot be told
    ack_template: str = "privacy_request_ack"
    done_template: str = "privacy_request_done"
    manual_processors: list[ManualProcessorSpec] = []
    # Why an erasure or a withdrawal of consent keeps something, in the receipt's words: a legal obligation's name
    # -> its reason. `complaint_register` is what a complaint hold keeps (flows/complaints/complaint_hold.py).
    kept_by_law: dict[str, str] = {
        "complaint_register": "legal obligation: the complaint register and its evidence are kept 5 years after the "
                              "complaint closes (Fgytv. 17/A. §, policy 004)"}


StaffRole = Literal["ops", "complaints", "privacy", "viewer"]
STAFF_ROLES: tuple[StaffRole, ...] = ("ops", "complaints", "privacy", "viewer")


class StaffSpec(Strict):
    """The staff console (docs/staff.md): who may sign in (an address of `domain`, verified by the provider) and
    which roles each has; `roles` lists, per role, people's addresses or groups' addresses."""
    domain: str = "example.com"
    roles: dict[StaffRole, list[str]] = {}
    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)   # a session unused this long has ended
    max_hours: int = Field(default=10, ge=1, le=24)            # and any session after this long

    def roles_of(self, email: str, groups: list[str]) -> list[str]:
        names = {email.strip().lower(), *(g.strip().lower() for g in groups)}
        return [role for role in STAFF_ROLES
                if names & {m.strip().lower() for m in self.roles.get(role) or []}]


class Config(Strict):
    forms: dict[str, FormSpec]
    default_form: str = "website"
    categories: dict[str, CategorySpec] = {}
    statuses: dict[str, StatusSpec] = {}
    retention: RetentionSpec = RetentionSpec()
    sla: SlaSpec = SlaSpec()
    survey: SurveySpec = SurveySpec()
    hubspot: HubSpotSpec = HubSpotSpec()
    intake: IntakeSpec = IntakeSpec()
    complaints: ComplaintsSpec = ComplaintsSpec()
    input: InputSpec = InputSpec()
    staff: StaffSpec = StaffSpec()
    alerts: AlertsSpec = AlertsSpec()
    hosted_forms: HostedFormSpec = HostedFormSpec()
    privacy: PrivacySpec = PrivacySpec()
    limits: dict[str, LimitSpec] = {
        "hubspot": LimitSpec(requests=100, per_seconds=10),
        "hubspot_search": LimitSpec(requests=4, per_seconds=1),
        "happyfox": LimitSpec(requests=300, per_seconds=60),
        "aircall": LimitSpec(requests=60, per_seconds=60),
        "gmail": LimitSpec(requests=100, per_seconds=1),
    }
    timeouts_seconds: float = Field(default=10, gt=0)
    attachments_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    attachments_allowed_types: list[str] = ["application/pdf", "image/png", "image/jpeg", "text/plain"]

    @model_validator(mode="after")
    def _default_form_exists(self) -> "Config":
        if self.default_form not in self.forms:
            raise ValueError(f"default_form {self.default_form!r} is not one of forms: {', '.join(self.forms)}")
        return self


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    env: Env
    config: Config
    sandbox_url: str | None = None  # the sandbox the vendors are faked by (embedded default), for people to open


def _describe(error: Mapping[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"{path}: {error['msg']}"


def load_config(path: Path) -> Config:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (set SWITCHBOARD_CONFIG to the YAML file)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of sections")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(f"{path}: {_describe(e)}" for e in exc.errors())) from None


def load_env(**overrides: Any) -> Env:
    try:
        return Env(**overrides)
    except ValidationError as exc:
        # Never echo the input: it may be a secret.
        lines = [f"environment: {'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def load(env: Env | None = None, *, attach: bool = True) -> Settings:
    """Settings from the environment and the YAML file. With no vendor credentials, and `attach`, a command run
    beside `switchboard run` uses that run's sandbox, SMTP sink and service address (core/embedded.py); without
    such a run, `*_BASE_URL` set with no credential is a ConfigError (`Env.check_base_urls`)."""
    env = env or load_env()
    env.check_complete()
    if attach and env.sandboxed and (run := embedded.running(data_dir())) is not None:
        env = env.with_sandbox(run.sandbox_url, smtp_port=run.smtp_port).serving_at(run.service_url)
        return Settings(env=env, config=load_config(env.switchboard_config), sandbox_url=run.sandbox_url)
    if attach:  # not for `switchboard run` (attach=False): it starts a sandbox of its own, which replaces them
        env.check_base_urls()
    return Settings(env=env, config=load_config(env.switchboard_config))


_current: Settings | None = None


def get() -> Settings:
    """The process's settings, loaded on first use."""
    global _current
    if _current is None:
        _current = load()
    return _current


def use(settings: Settings | None) -> Settings | None:
    """Make `settings` what `get()` returns (the embedded runner and tests); None forgets it."""
    global _current
    _current = settings
    return settings


def data_dir() -> Path:
    """Where the embedded default keeps its SQLite files."""
    path = Path(os.environ.get("SWITCHBOARD_DATA_DIR", "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path
