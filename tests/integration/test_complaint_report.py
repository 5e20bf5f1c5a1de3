"""The quarterly complaint report from a seeded register with known counts: the numbers, the CSV, the HTML, a PDF
rendered to an image that is not blank, the command, the quarterly mail, and the admin page over the register."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pypdfium2
import pytest
from click.testing import CliRunner
from PIL import ImageStat
from sqlalchemy import select, update

from core import jobs, store
from core import settings as settings_module
from core.models import Complaint, Ticket
from flows.complaints import complaint_report
from switchboard.cli import main
from webhooks.app import create_app

from .flowkit import fast_vendors


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# (received, channel, event type, loss, outcome, closed, notice due, notice sent, measure due)
SEED = [
    (utc(2026, 7, 2, 8), "form", "external_fraud", 50_000, "unfounded", utc(2026, 7, 20, 9),
     utc(2026, 7, 15, 14, 30), utc(2026, 7, 14, 10), None),                                     # notice on time
    (utc(2026, 7, 9, 8), "phone", "external_fraud", 150_000, "unfounded", utc(2026, 8, 20, 9),
     utc(2026, 8, 12, 14, 30), utc(2026, 8, 14, 10), None),                                     # notice late
    (utc(2026, 8, 3, 8), "form", "execution", None, "founded", utc(2026, 8, 31, 9),
     None, None, utc(2026, 8, 31, 21, 59)),                                                     # measure on time
    (utc(2026, 8, 20, 8), "form", "execution", 20_000, None, None, None, None, None),
    (utc(2026, 8, 28, 8), "email", "external_fraud", None, None, None, None, None, None),
    (utc(2026, 9, 10, 8), "form", None, None, None, None, None, None, None),
    (utc(2026, 6, 10, 8), "form", "disruption", 300_000, "founded", utc(2026, 7, 3, 9), None, None, None),  # Q2
    (utc(2026, 5, 10, 8), "phone", "disruption", None, None, None, None, None, None),           # Q2, still open
    (utc(2026, 10, 2, 8), "form", "external_fraud", 900_000, None, None, None, None, None),     # Q4: left out
]


@pytest.fixture
def seeded(settings, sandbox):
    fast_vendors()
    with store.session() as s:
        for n, (received, channel, kind, loss, outcome, closed, notice_due, notice_sent, measure_due) \
                in enumerate(SEED, 1):
            ticket = Ticket(source_key=f"seed:{n}", channel=channel, category="panasz", subject=f"Panasz {n}",
                            happyfox_display_id=f"#CO{n:08d}", opened_at=received,
                            status="Closed" if closed else "New", is_closed=bool(closed), closed_at=closed)
            s.add(ticket)
            s.flush()
            s.add(Complaint(ticket_id=ticket.id, customer_name=None if closed else f"Ügyfél {n}",
                            subject=ticket.subject, description="leírás", received_at=received, channel=channel,
                            event_type=kind, loss_amount_huf=loss, outcome=outcome,
                            status="closed" if closed else "open", closed_at=closed, notice_due_at=notice_due,
                            notice_sent_at=notice_sent, measure_due_at=measure_due,
                            measure_responsible="Pénzügy" if measure_due else None,
                            escalated_at=received if loss and loss >= 100_000 else None))
    return settings


def test_the_numbers_of_a_seeded_quarter(seeded):
    r = complaint_report.numbers("2026Q3")
    assert (r.received, r.closed, r.open) == (6, 4, 4)  # closed: three of Q3 and one of Q2; open: 3 + the Q2 one
    assert r.by_event_type["external_fraud"] == {"received": 3, "closed": 2, "open": 1, "loss": 200_000}
    assert r.by_event_type["execution"] == {"received": 2, "closed": 1, "open": 1, "loss": 20_000}
    assert r.by_event_type["disruption"] == {"received": 0, "closed": 1, "open": 1, "loss": 0}
    assert r.by_event_type["unclassified"]["received"] == 1
    assert r.by_channel == {"email": 1, "form": 4, "phone": 1}
    assert r.by_outcome == {"founded": 2, "unfounded": 2}
    assert r.per_month == {"2026-07": 2, "2026-08": 3, "2026-09": 1}
    assert (r.loss_count, r.loss_total, r.loss_max, r.escalated) == (3, 220_000, 150_000, 1)
    assert [(d["kind"], d["state"]) for d in r.deadlines] == [("notice", "on_time"), ("notice", "late"),
                                                              ("measure", "on_time")]


def test_the_report_files_html_csv_and_a_pdf_that_is_not_blank(seeded, tmp_path):
    out = tmp_path / "reports"
    result = CliRunner().invoke(main, ["report", "complaints", "--quarter", "2026Q3", "--out", str(out)],
                                env={"DATABASE_URL": seeded.env.database_url})
    settings_module.use(seeded)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["complaints-2026Q3.csv", "complaints-2026Q3.html", "complaints-2026Q3.pdf"]

    with (out / "complaints-2026Q3.csv").open(encoding="utf-8") as handle:
        values = {(row["section"], row["key"]): int(row["value"]) for row in csv.DictReader(handle)}
    assert values[("total", "received")] == 6 and values[("total", "open_at_end")] == 4
    assert values[("event_type.received", "external_fraud")] == 3 and values[("loss_huf", "total")] == 220_000
    assert values[("deadline", "notice.late")] == 1

    page = (out / "complaints-2026Q3.html").read_text(encoding="utf-8")
    assert 'id="received">6<' in page and 'id="closed">4<' in page and "Külső csalás" in page
    assert page.count("data:image/png;base64,") == 2 and "220 000 Ft" in page

    pdf = pypdfium2.PdfDocument(str(out / "complaints-2026Q3.pdf"))
    assert len(pdf) >= 1
    text = pdf[0].get_textpage().get_text_range()
    assert "Negyedéves panaszjelentés" in text and "2026Q3" in text
    image = pdf[0].render(scale=1).to_pil().convert("L")
    stats = ImageStat.Stat(image)
    assert stats.stddev[0] > 10  # text, tables and charts: far from a blank page
    dark = sum(image.histogram()[:128]) / (image.width * image.height)
    assert 0.005 < dark < 0.5


def test_a_bad_quarter_is_refused(seeded, tmp_path):
    out = tmp_path / "reports"
    result = CliRunner().invoke(main, ["report", "complaints", "--quarter", "2026-3", "--out", str(out)],
                                env={"DATABASE_URL": seeded.env.database_url})
    settings_module.use(seeded)
    assert result.exit_code == 2 and "YYYYQn" in result.output and not out.exists()


def test_the_clock_mails_the_quarter_just_ended_once(seeded, sandbox, tmp_path):
    def fires(at: datetime) -> bool:
        return "flows.complaints.complaint_report.send_quarterly_report" in {jobs.job_name(t) for t in jobs.huey.read_periodic(at)}
    assert fires(datetime(2026, 10, 1, 5, 0)) and not fires(datetime(2026, 11, 1, 5, 0))
    assert complaint_report.previous_quarter(utc(2026, 10, 1, 5)) == "2026Q3"
    assert complaint_report.previous_quarter(utc(2027, 1, 1, 5)) == "2026Q4"
    assert complaint_report.send("2026Q3", tmp_path) is True
    assert complaint_report.send("2026Q3", tmp_path) is False
    [mail] = sandbox.mail()
    assert sorted(mail["to"]) == ["panaszkezeles@example.com", "ugyvezeto@example.com"]
    assert "2026Q3" in mail["subject"] and "Beérkezett: 6" in mail["text"]


def test_the_admin_page_lists_and_filters_the_register(seeded):
    client = create_app(seeded).test_client()
    assert client.get("/admin/complaints").status_code == 401
    assert client.get("/admin/complaints", headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {seeded.env.secret('admin_token')}"}
    page = client.get("/admin/complaints", headers=auth)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-store"
    body = page.get_data(as_text=True)
    assert body.count("<tr class=") == len(SEED) and "#CO00000001" in body and "törölve" not in body
    q3_fraud = client.get("/admin/complaints?event_type=external_fraud&quarter=2026Q3",
                          headers=auth).get_data(as_text=True)
    assert q3_fraud.count("<tr class=") == 3 and "#CO00000009" not in q3_fraud
    open_only = client.get("/admin/complaints?status=open", headers=auth).get_data(as_text=True)
    assert open_only.count("<tr class=") == 5 and "Ügyfél 4" in open_only


def test_proposals_period_channels_chart_and_width(seeded):
    with store.session() as s:  # a founded Q3 complaint (seed 3) and the founded Q2 one closed in Q3 (seed 7)
        for key, text in (("seed:3", "Kétlépcsős jóváhagyás a teljesítésnél"), ("seed:7", "Tartalék szerver")):
            ticket_id = s.scalar(select(Ticket.id).where(Ticket.source_key == key))
            s.execute(update(Complaint).where(Complaint.ticket_id == ticket_id).values(proposal=text))
    r = complaint_report.numbers("2026Q3")
    assert r.proposals == {"execution": ["Kétlépcsős jóváhagyás a teljesítésnél"], "disruption": ["Tartalék szerver"]}
    assert (r.first_day.isoformat(), r.last_day.isoformat()) == ("2026-07-01", "2026-09-30")
    page = complaint_report.html(r, "hu")
    assert '<span id="period">2026-07-01 – 2026-09-30</span>' in page
    assert "<li>Kétlépcsős jóváhagyás a teljesítésnél</li>" in page
    assert "<td>Webes űrlap</td>" in page and "<td>Telefon</td>" in page and "<td>form</td>" not in page
    assert "<td>Web form</td>" in complaint_report.html(r, "en")
    assert "max-width: 60em" in page
    assert ["proposal", "execution", "Kétlépcsős jóváhagyás a teljesítésnél"] in complaint_report.rows(r)
    from PIL import Image
    chart = Image.open(io.BytesIO(complaint_report.charts(r, "hu")["per_type"]))
    assert chart.height >= 450  # one bar per event type, with room for wrapped labels


def test_the_whole_register_as_csv(seeded, tmp_path):
    out = tmp_path / "register"
    result = CliRunner().invoke(main, ["report", "complaints", "--register", "--out", str(out)],
                                env={"DATABASE_URL": seeded.env.database_url})
    settings_module.use(seeded)
    assert result.exit_code == 0, result.output
    [path] = list(out.iterdir())
    assert path.name.startswith("complaint-register-") and path.suffix == ".csv"
    with path.open(encoding="utf-8") as handle:
        found = list(csv.reader(handle))
    header, body = found[0], found[1:]
    assert len(header) == 14 and header[2] == "1_customer" and header[-1] == "12_closed_at"
    assert len(body) == len(SEED) and all(len(row) == 14 for row in body)
    first = dict(zip(header, body[0]))   # oldest first: the Q2 complaint of May, still open
    assert first["1_customer"] == "Ügyfél 8" and first["4_channel"] == "Telefon" and first["10_status"] == "nyitott"
    fraud = next(dict(zip(header, row)) for row in body if row[1] == "#CO00000002")
    assert fraud["5_event_type"] == "Külső csalás" and fraud["7_loss_amount_huf"] == "150000"
    assert fraud["11_outcome"] == "megalapozatlan" and fraud["12_closed_at"] == "2026-08-20 11:00"
    measure = next(dict(zip(header, row)) for row in body if row[1] == "#CO00000003")
    assert measure["9_measure_deadline_responsible"] == "2026-08-31 23:59 (Pénzügy)"
    assert "complaints.register_exported" in [a for a in _actions()]
    missing = CliRunner().invoke(main, ["report", "complaints", "--out", str(tmp_path)],
                                 env={"DATABASE_URL": seeded.env.database_url})
    settings_module.use(seeded)
    assert missing.exit_code == 2 and "--register" in missing.output


def _actions() -> list[str]:
    from core.models import Audit
    with store.session() as s:
        return list(s.scalars(select(Audit.action)))
