"""The receiver in front of Flask (webhooks/receiver.py): what it answers itself (unknown source, wrong method,
a bug), and that every other path still reaches Flask."""
from __future__ import annotations

import logging

from webhooks import receiver


def test_an_unknown_source_is_404_and_a_get_is_405_both_json(client):
    unknown = client.post("/webhooks/nope", json={})
    assert unknown.status_code == 404 and unknown.json["error"] == "unknown source 'nope'"
    got = client.get("/webhooks/form")
    assert got.status_code == 405 and got.headers["Allow"] == "POST" and got.is_json


def test_other_paths_go_on_to_flask(client):
    assert client.get("/healthz").json == {"status": "ok"}
    deeper = client.post("/webhooks/form/extra", json={})  # not a source's path: Flask's own JSON 404
    assert deeper.status_code == 404 and deeper.json["error"] == "Not Found"


def test_a_bug_in_a_source_answers_500_json_and_logs_the_traceback(client, monkeypatch, caplog):
    def broken(request, env):
        raise RuntimeError("bug")
    monkeypatch.setattr(receiver.SOURCES["form"], "verify", broken)
    with caplog.at_level(logging.ERROR, logger="webhooks.receiver"):
        answer = client.post("/webhooks/form", json={})
    assert answer.status_code == 500 and answer.json["error"] == "Internal Server Error"
    # The traceback is logged (core/logs.py may already have masked it into exc_text, depending on the handlers).
    assert any((record.exc_info or record.exc_text) and record.getMessage() == "form webhook failed"
               for record in caplog.records)
