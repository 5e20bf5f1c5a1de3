"""The quarterly complaint report (policy 004: "complaints received and still open, per event type";
docs/policy.md#complaint-register).

`numbers(quarter)` counts from the register; `write(quarter, out_dir)` writes `complaints-<quarter>.html` (Jinja2,
charts from matplotlib's Agg backend embedded as PNG), `.pdf` (WeasyPrint renders that same HTML) and `.csv`
(the same numbers, one per row). The clock runs `send_quarterly_report` on the first day of each quarter for the
quarter just ended and mails the files to `complaints.report_recipients`, once per quarter.

Quarters are Budapest calendar quarters; a complaint counts as received, closed or open by its own times.
"""
from __future__ import annotations

import base64
import csv
import io
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import jinja2
from sqlalchemy import select

from core import jobs, settings, store
from core.models import Complaint, Ticket
from core.progress import Step, quiet
from core.workdays import BUDAPEST
from flows import effects, vendors

TEMPLATES = Path(__file__).resolve().parent / "templates"
QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
TEXTS = {
    "hu": {"title": "Negyedéves panaszjelentés", "received": "Beérkezett", "closed": "Lezárt",
           "open": "Nyitott a negyedév végén", "event_type": "Eseménytípus", "channel": "Csatorna",
           "outcome": "Eredmény", "losses": "Lehetséges kár", "count": "Darab", "total": "Összesen",
           "largest": "Legnagyobb", "escalated": "Ügyvezetőnek jelezve", "deadlines": "Határidők",
           "ticket": "Jegy", "kind": "Teendő", "due": "Határidő", "done": "Teljesítve", "state": "Állapot",
           "per_month": "Beérkezett panaszok havonta", "per_type": "Beérkezett panaszok eseménytípusonként",
           "none": "nincs", "founded": "megalapozott", "unfounded": "megalapozatlan", "pending": "folyamatban",
           "notice": "írásbeli válasz", "measure": "intézkedés", "on_time": "határidőben", "late": "késve",
           "overdue": "lejárt", "unclassified": "besorolatlan", "proposals": "Javaslatok",
           "answer": "válasz a panaszosnak", "period": "Időszak"},
    "en": {"title": "Quarterly complaint report", "received": "Received", "closed": "Closed",
           "open": "Open at quarter end", "event_type": "Event type", "channel": "Channel", "outcome": "Outcome",
           "losses": "Potential loss", "count": "Count", "total": "Total", "largest": "Largest",
           "escalated": "Escalated to the managing director", "deadlines": "Deadlines", "ticket": "Ticket",
           "kind": "Action", "due": "Due", "done": "Done", "state": "State",
           "per_month": "Complaints received per month", "per_type": "Complaints received per event type",
           "none": "none", "founded": "founded", "unfounded": "unfounded", "pending": "pending",
           "notice": "written answer", "measure": "measure", "on_time": "on time", "late": "late",
           "overdue": "overdue", "unclassified": "unclassified", "proposals": "Proposals",
           "answer": "answer to the complainant", "period": "Period"},
}
# The register's channel codes as a reader says them (the report and the register CSV).
CHANNELS = {
    "hu": {"form": "Webes űrlap", "email": "E-mail", "phone": "Telefon", "post": "Posta", "fax": "Fax",
           "social": "Közösségi média", "in_person": "Személyesen"},
    "en": {"form": "Web form", "email": "Email", "phone": "Phone", "post": "Post", "fax": "Fax",
           "social": "Social media", "in_person": "In person"},
}


@dataclass
class QuarterFigures:
    quarter: str
    start: datetime
    end: datetime
    received: int = 0
    closed: int = 0
    open: int = 0
    by_event_type: dict[str, dict[str, int]] = field(default_factory=dict)  # code -> received/closed/open/loss
    by_channel: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)                # of those closed in the quarter
    per_month: dict[str, int] = field(default_factory=dict)                 # "2026-07" -> received
    loss_count: int = 0
    loss_total: int = 0
    loss_max: int = 0
    escalated: int = 0
    deadlines: list[dict[str, Any]] = field(default_factory=list)
    proposals: dict[str, list[str]] = field(default_factory=dict)           # code -> founded complaints' proposals

    @property
    def first_day(self) -> date:
        return self.start.astimezone(BUDAPEST).date()

    @property
    def last_day(self) -> date:
        return (self.end.astimezone(BUDAPEST) - timedelta(days=1)).date()


def bounds(quarter: str) -> tuple[datetime, datetime]:
    """[start, end) of a quarter like "2026Q3", in UTC, from Budapest midnights."""
    match = QUARTER.match(quarter)
    if not match:
        raise ValueError(f"quarter {quarter!r}: expected YYYYQn, e.g. 2026Q3")
    year, q = int(match[1]), int(match[2])
    start = date(year, 3 * q - 2, 1)
    end = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    return (datetime.combine(start, datetime.min.time(), BUDAPEST).astimezone(timezone.utc),
            datetime.combine(end, datetime.min.time(), BUDAPEST).astimezone(timezone.utc))


def previous_quarter(now: datetime) -> str:
    local = now.astimezone(BUDAPEST)
    q = (local.month - 1) // 3 + 1
    return f"{local.year - 1}Q4" if q == 1 else f"{local.year}Q{q - 1}"


def _month(moment: datetime) -> str:
    return moment.astimezone(BUDAPEST).strftime("%Y-%m")


def numbers(quarter: str) -> QuarterFigures:
    start, end = bounds(quarter)
    spec = settings.get().config.complaints
    report = QuarterFigures(quarter, start, end)
    month = start.astimezone(BUDAPEST).date()
    for i in range(3):
        report.per_month[f"{month.year}-{month.month + i:02d}"] = 0
    report.by_event_type = {e.code: {"received": 0, "closed": 0, "open": 0, "loss": 0} for e in spec.event_types}
    with store.session() as s:
        rows = s.execute(select(Complaint, Ticket.happyfox_display_id).join(Ticket, Ticket.id == Complaint.ticket_id)
                         .where(Complaint.received_at < end)).all()
    channels: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for c, display_id in rows:
        bucket = report.by_event_type.setdefault(c.event_type or "unclassified",
                                                 {"received": 0, "closed": 0, "open": 0, "loss": 0})
        if c.received_at >= start:
            report.received += 1
            bucket["received"] += 1
            channels[c.channel] += 1
            report.per_month[_month(c.received_at)] = report.per_month.get(_month(c.received_at), 0) + 1
            if c.loss_amount_huf is not None:
                report.loss_count += 1
                report.loss_total += c.loss_amount_huf
                report.loss_max = max(report.loss_max, c.loss_amount_huf)
                bucket["loss"] += c.loss_amount_huf
            report.escalated += c.escalated_at is not None
        if c.closed_at is not None and start <= c.closed_at < end:
            report.closed += 1
            bucket["closed"] += 1
            outcomes[c.outcome or "none"] += 1
        if c.closed_at is None or c.closed_at >= end:
            report.open += 1
            bucket["open"] += 1
        in_scope = c.received_at >= start or c.closed_at is None or c.closed_at >= start
        if c.outcome == "founded" and c.proposal and in_scope:  # policy 004 §20: a proposal per founded complaint's type
            report.proposals.setdefault(c.event_type or "unclassified", []).append(c.proposal)
        report.deadlines += _deadlines(c, display_id, start, end)
    report.by_channel = dict(sorted(channels.items()))
    report.by_outcome = dict(sorted(outcomes.items()))
    report.deadlines.sort(key=lambda d: d["due"])
    return report


def _deadlines(c: Complaint, display_id: str | None, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The deadlines falling in the quarter, each with when it was met (notice sent / complaint closed)."""
    found = []
    for kind, due, done in (("notice", c.notice_due_at, c.notice_sent_at), ("measure", c.measure_due_at, c.closed_at)):
        if due is None or not (start <= due < end) or (kind == "measure" and c.outcome != "founded"):
            continue
        state = ("on_time" if done <= due else "late") if done else ("overdue" if due < end else "pending")
        found.append({"ticket": display_id or f"#{c.ticket_id}", "kind": kind, "due": due, "done": done,
                      "state": state, "responsible": c.measure_responsible if kind == "measure" else None})
    return found


# ---------------------------------------------------------------- output

def charts(report: QuarterFigures, language: str) -> dict[str, bytes]:
    """Bar charts as PNG: received per event type and per month."""
    import matplotlib
    matplotlib.use("Agg")  # no display: a worker or a CI machine
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    spec = settings.get().config.complaints
    t = TEXTS[language]
    out = {}
    series = {
        "per_type": ([spec.label(code, language) if code != "unclassified" else t["unclassified"]
                      for code in report.by_event_type], [v["received"] for v in report.by_event_type.values()]),
        "per_month": (list(report.per_month), list(report.per_month.values())),
    }
    for name, (labels, values) in series.items():
        if name == "per_type":  # long Hungarian labels: wrapped, on a taller figure, at a readable size
            labels = [textwrap.fill(label, 34) for label in labels]
        fig, ax = plt.subplots(figsize=(8, 0.55 * len(labels) + 1.2 if name == "per_type" else 3), dpi=110)
        if name == "per_type":
            ax.barh(labels, values, color="#2b6cb0")
            ax.invert_yaxis()
            ax.tick_params(axis="y", labelsize=9)
            for y, value in enumerate(values):  # the count at each bar's end, so no gridline reading is needed
                ax.annotate(str(value), (value, y), xytext=(3, 0), textcoords="offset points", va="center",
                            fontsize=9)
        else:
            ax.bar(labels, values, color="#2b6cb0")
        ax.set_title(t[name], fontsize=10)
        # Counts: whole-number ticks on the value axis (the default locator is a MaxNLocator).
        axis = ax.xaxis if name == "per_type" else ax.yaxis
        cast(MaxNLocator, axis.get_major_locator()).set_params(integer=True)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        out[name] = buffer.getvalue()
    return out


def _huf(amount: int, language: str) -> str:
    from connectors.mail import huf
    return huf(amount, language)


def html(report: QuarterFigures, language: str | None = None) -> str:
    spec = settings.get().config.complaints
    language = language or spec.language
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=True)
    env.filters["huf"] = lambda amount: _huf(amount, language)
    env.filters["local"] = lambda moment: moment.astimezone(BUDAPEST).strftime("%Y-%m-%d %H:%M") if moment else ""
    images = {name: "data:image/png;base64," + base64.b64encode(png).decode()
              for name, png in charts(report, language).items()}
    labels = {code: spec.label(code, language) for code in report.by_event_type}
    labels["unclassified"] = TEXTS[language]["unclassified"]
    return env.get_template("report.html").render(r=report, t=TEXTS[language], lang=language, images=images,
                                                  labels=labels, generated=datetime.now(timezone.utc),
                                                  channels=CHANNELS[language])


def rows(report: QuarterFigures) -> list[list[Any]]:
    """The report's numbers as (section, key, value) rows: what the CSV holds."""
    out: list[list[Any]] = [["total", "received", report.received], ["total", "closed", report.closed],
                            ["total", "open_at_end", report.open]]
    for code, counts in report.by_event_type.items():
        out += [[f"event_type.{what}", code, counts[what]] for what in ("received", "closed", "open", "loss")]
    out += [["channel", k, v] for k, v in report.by_channel.items()]
    out += [["outcome", k, v] for k, v in report.by_outcome.items()]
    out += [["month", k, v] for k, v in report.per_month.items()]
    out += [["loss_huf", "count", report.loss_count], ["loss_huf", "total", report.loss_total],
            ["loss_huf", "max", report.loss_max], ["escalated", "count", report.escalated]]
    states = Counter(f"{d['kind']}.{d['state']}" for d in report.deadlines)
    out += [["deadline", k, v] for k, v in sorted(states.items())]
    out += [["proposal", code, text] for code, texts in report.proposals.items() for text in texts]
    return out


def write(quarter: str, out_dir: Path, language: str | None = None, on_step: Step = quiet) -> dict[str, Path]:
    """Write the HTML, PDF and CSV of `quarter` into `out_dir`; their paths by suffix. `on_step` hears of each
    file as it starts (0 of 1) and when it is written (1 of 1)."""
    from weasyprint import HTML  # heavy (pango): imported only when a report is made

    report = numbers(quarter)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {suffix: out_dir / f"complaints-{quarter}.{suffix}" for suffix in ("html", "pdf", "csv")}
    on_step(paths["html"].name, 0, 1)
    document = html(report, language)
    paths["html"].write_text(document, encoding="utf-8")
    on_step(paths["html"].name, 1, 1)
    on_step(paths["pdf"].name, 0, 1)
    HTML(string=document, base_url=str(out_dir)).write_pdf(str(paths["pdf"]))
    on_step(paths["pdf"].name, 1, 1)
    on_step(paths["csv"].name, 0, 1)
    with paths["csv"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["quarter", "section", "key", "value"])
        writer.writerows([quarter, *row] for row in rows(report))
    on_step(paths["csv"].name, 1, 1)
    return paths


# ---------------------------------------------------------------- the whole register, for an auditor

# policy 004 §12: the register's twelve fields, in its order, after our two ids.
REGISTER_COLUMNS = ["complaint", "ticket", "1_customer", "2_description", "3_received_at", "4_channel",
                    "5_event_type", "6_person_concerned", "7_loss_amount_huf", "8_measure",
                    "9_measure_deadline_responsible", "10_status", "11_outcome", "12_closed_at"]
STATUS = {"hu": {"open": "nyitott", "closed": "lezárt"}, "en": {"open": "open", "closed": "closed"}}
REMOVED = {"hu": "[a lezáráskor törölve]", "en": "[removed at closure]"}


def register_rows(language: str | None = None) -> list[list[Any]]:
    """Every complaint of the register, oldest first, one row of REGISTER_COLUMNS each (Budapest times)."""
    spec = settings.get().config.complaints
    language = language or spec.language
    t = TEXTS[language]

    def local(moment: datetime | None) -> str:
        return moment.astimezone(BUDAPEST).strftime("%Y-%m-%d %H:%M") if moment else ""

    with store.session() as s:
        found = s.execute(select(Complaint, Ticket.happyfox_display_id).join(Ticket, Ticket.id == Complaint.ticket_id)
                          .order_by(Complaint.received_at, Complaint.id)).all()
    out = []
    for c, display_id in found:
        customer = "; ".join(v for v in (c.customer_name, c.customer_email, c.customer_phone) if v)
        if not customer and c.id_removed_at:
            customer = REMOVED[language]
        description = " – ".join(dict.fromkeys(v for v in (c.subject, c.description) if v))  # each once
        nine = " ".join(v for v in (local(c.measure_due_at), f"({c.measure_responsible})" if c.measure_responsible
                                    else "") if v)
        out.append([c.id, display_id or f"#{c.ticket_id}", customer, description, local(c.received_at),
                    CHANNELS[language].get(c.channel, c.channel), spec.label(c.event_type, language),
                    c.person_concerned or "", c.loss_amount_huf if c.loss_amount_huf is not None else "",
                    c.measure or "", nine, STATUS[language].get(c.status, c.status),
                    t.get(c.outcome, c.outcome) if c.outcome else "", local(c.closed_at)])
    return out


def write_register(out_dir: Path, language: str | None = None) -> tuple[Path, int]:
    """`complaint-register-<date>.csv` in `out_dir`: the whole register; its path and row count. The export is
    audited (it holds the open complaints' identification data)."""
    from core import audit
    rows_out = register_rows(language)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"complaint-register-{datetime.now(timezone.utc).astimezone(BUDAPEST).date().isoformat()}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REGISTER_COLUMNS)
        writer.writerows(rows_out)
    with store.session() as s:
        audit.record(s, "cli", "complaints.register_exported", count=len(rows_out))
    return path, len(rows_out)


def send(quarter: str, out_dir: Path, on_step: Step = quiet) -> bool:
    """Write the report and mail it with the PDF and CSV attached to `complaints.report_recipients`, once per
    quarter; whether it was sent now. `on_step`: see `write`."""
    spec = settings.get().config.complaints
    paths = write(quarter, out_dir, on_step=on_step)
    if not spec.report_recipients:
        return False
    report = numbers(quarter)
    mailer = vendors.get().mail
    key = f"complaint-report:{quarter}"

    def deliver() -> str:
        msg = mailer.build(spec.report_recipients, spec.report_template, spec.language,
                           message_id=f"switchboard.complaint-report-{quarter}", quarter=quarter,
                           received=report.received, closed=report.closed, open=report.open)
        msg.add_attachment(paths["pdf"].read_bytes(), maintype="application", subtype="pdf",
                           filename=paths["pdf"].name)
        msg.add_attachment(paths["csv"].read_bytes(), maintype="text", subtype="csv", filename=paths["csv"].name)
        # Mailer.send has no attachments parameter; its own retry policy and delivery are used as they are.
        mailer.policy.call(lambda: mailer._deliver(msg))
        return str(msg["Message-ID"])

    return effects.send_once(key, deliver)


@jobs.periodic(jobs.crontab(minute="0", hour="5", day="1", month="1,4,7,10"))
def send_quarterly_report() -> bool:
    """At the start of each quarter (05:00 UTC, 06:00 or 07:00 in Budapest): the quarter just ended."""
    quarter = previous_quarter(datetime.now(timezone.utc))
    return send(quarter, settings.data_dir() / "reports")
