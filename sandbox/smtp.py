"""A real SMTP server (aiosmtpd) that keeps every message it receives, for `GET /_sandbox/mail`."""
from __future__ import annotations

import socket
from dataclasses import dataclass
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.controller import Controller

from .state import Sandbox


class SinkHandler:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        with self.sandbox.lock:
            self.sandbox.mail.append({
                "from": str(msg.get("From", envelope.mail_from)),
                "to": list(envelope.rcpt_tos),
                "subject": str(msg.get("Subject", "")),
                "text": text.get_content() if text else "",
                "html": html.get_content() if html else "",
                "message_id": str(msg.get("Message-ID", "")),
                "headers": {k: str(v) for k, v in msg.items()},
            })
        return "250 Message accepted for delivery"


@dataclass
class Sink:
    controller: Controller
    port: int

    def stop(self) -> None:
        self.controller.stop()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def start_sink(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8925) -> Sink:
    port = port or _free_port(host)
    controller = Controller(SinkHandler(sandbox), hostname=host, port=port)
    controller.start()
    return Sink(controller, port)
