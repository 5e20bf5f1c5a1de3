"""Gmail API v1 client (REST over httpx) for the support mailbox (docs/connectors.md; the API's facts in
docs/vendors/gmail.md).

Production signs in as a service account with domain-wide delegation, impersonating GMAIL_USER with the scope
`https://mail.google.com/` (the only one that permits permanent delete: docs/vendors/gmail.md#deleting-messages,
docs/vendors/gmail.md#service-account-auth); google-auth refreshes the token.
Against the sandbox (no GOOGLE_APPLICATION_CREDENTIALS) the sandbox's bearer token is used.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from core.settings import SANDBOX_GMAIL_TOKEN, ConfigError, Settings

from . import pacing, policy
from .errors import NotFound, RateLimited, Unauthorized, Unavailable
from .policy import Policy
from .records import GmailMail, GmailMessage, parse

VENDOR = "gmail"
SCOPES = ["https://mail.google.com/"]
MAX_BATCH = 1000       # docs/vendors/gmail.md#deleting-messages
MAX_PAGE = 500         # docs/vendors/gmail.md#listing-messages
# Google answers some rate limits with 403 (docs/vendors/gmail.md#errors); these reasons are transient, the other
# 403s are not.
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded"}


class ServiceAccountToken:
    """Bearer tokens for `subject` from a service-account key file, refreshed by google-auth when expired."""

    def __init__(self, key_file: Path | str, subject: str) -> None:
        from google.oauth2 import service_account
        path = Path(key_file)
        if not path.is_file():
            raise ConfigError(f"environment: GOOGLE_APPLICATION_CREDENTIALS: no key file at {path}")
        if not subject:
            raise ConfigError("environment: GMAIL_USER: required to impersonate the mailbox")
        self.credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            str(path), scopes=SCOPES, subject=subject)  # google-auth leaves this constructor unannotated
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if not self.credentials.valid:
                from google.auth.exceptions import RefreshError, TransportError
                from google.auth.transport.requests import Request
                try:
                    self.credentials.refresh(Request())
                except RefreshError as exc:  # delegation not granted for the scope, bad subject, revoked key
                    raise Unauthorized(VENDOR, f"service account token refused: {exc.args[0] if exc.args else ''}")
                except TransportError:
                    raise Unavailable(VENDOR, "token server not reachable") from None
            return str(self.credentials.token)


class GmailClient:
    def __init__(self, base_url: str, user: str, token: Callable[[], str], policy: Policy,
                 http: httpx.Client | None = None, page_size: int = MAX_PAGE) -> None:
        self.prefix = f"/gmail/v1/users/{user}"
        self.token = token
        self.policy = policy
        self.page_size = page_size
        self.http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=policy.timeout)

    @classmethod
    def from_settings(cls, settings: Settings, pacer: pacing.Pacer | None = None) -> GmailClient:
        env = settings.env
        user = env.gmail_user or "me"
        token: Callable[[], str]
        if env.google_application_credentials:
            token = ServiceAccountToken(env.google_application_credentials, env.gmail_user or "")
        else:
            token = lambda: SANDBOX_GMAIL_TOKEN  # noqa: E731 - the sandbox's fixed bearer
        return cls(env.base_url(VENDOR), user, token, policy.for_vendor(VENDOR, settings, pacer=pacer))

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        def send() -> httpx.Response:
            headers = {"Authorization": f"Bearer {self.token()}"}
            try:
                response = self.http.request(method, f"{self.prefix}{path}", headers=headers,
                                             timeout=self.policy.timeout, **kwargs)
            except httpx.TimeoutException:
                raise Unavailable(VENDOR, f"no answer within {self.policy.timeout}s") from None
            except httpx.TransportError as exc:
                raise Unavailable(VENDOR, f"connection failed ({type(exc).__name__})") from None
            if response.status_code == 403 and _reasons(response) & RATE_LIMIT_REASONS:
                raise RateLimited(VENDOR, "rate limit (403)", 403, policy.retry_after(response.headers))
            policy.raise_for_status(VENDOR, response.status_code, response.headers, response.content)
            return response

        return self.policy.call(send)

    # ------------------------------------------------------------ messages

    def message_ids(self, query: str) -> list[str]:
        """users.messages.list over all pages (docs/vendors/gmail.md#listing-messages)."""
        ids: list[str] = []
        params: dict[str, Any] = {"q": query, "maxResults": self.page_size}
        while True:
            body = self._request("GET", "/messages", params=params).json()
            ids += [m["id"] for m in body.get("messages") or []]  # absent when nothing matched
            if not body.get("nextPageToken"):
                return ids
            params["pageToken"] = body["nextPageToken"]

    def messages_about(self, address: str) -> list[str]:
        return self.message_ids(f"from:{address} OR to:{address}")

    def get_message(self, message_id: str) -> GmailMessage:
        """Metadata (From, To, Cc, Subject, Date) and snippet, for an access export."""
        params = [("format", "metadata")] + [("metadataHeaders", h) for h in ("From", "To", "Cc", "Subject", "Date")]
        return parse(VENDOR, GmailMessage, self._request("GET", f"/messages/{message_id}", params=params).json())

    def read_message(self, message_id: str) -> GmailMail:
        """The whole message (`format=full`): headers and body, for mail Switchboard acts on."""
        return parse(VENDOR, GmailMail, self._request("GET", f"/messages/{message_id}",
                                                      params={"format": "full"}).json())

    def delete_messages(self, ids: list[str]) -> int:
        """Permanent delete in batches of 1000 (docs/vendors/gmail.md#deleting-messages); unknown ids are no error.
        How many were asked to go."""
        for start in range(0, len(ids), MAX_BATCH):
            self._request("POST", "/messages/batchDelete", json={"ids": ids[start:start + MAX_BATCH]})
        return len(ids)

    def delete_message(self, message_id: str) -> str:
        try:
            self._request("DELETE", f"/messages/{message_id}")
        except NotFound:
            return "gone"
        return "deleted"


def _reasons(response: httpx.Response) -> set[str]:
    try:
        errors = response.json().get("error", {}).get("errors") or []
        return {str(e.get("reason")) for e in errors if isinstance(e, dict)}
    except (ValueError, AttributeError):
        return set()
