"""The website's contact form, delivered as a Standard Webhook (`webhook-id`, `webhook-timestamp`,
`webhook-signature`, secret `FORM_WEBHOOK_SECRET`, ±5 minutes), as JSON `{"form": name, "fields": {...}}` or as
multipart with the same fields plus files. Field names come from the YAML form mapping; the stored payload uses
our names (`email`, `last_name`, ...) so that flows never see a form's own names."""
from __future__ import annotations

import base64
import functools
from typing import Any

from werkzeug.wrappers import Request
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.exceptions import RequestEntityTooLarge

from core.addresses import InvalidAddress, mailbox
from core.settings import Config, Env, FormSpec

from ..events import Event, Invalid, Rejected, json_body, require_object

# (header, its WSGI environ key): read straight from the environ, the cheapest way in.
SIGNATURE_HEADERS = tuple((name, "HTTP_" + name.upper().replace("-", "_"))
                          for name in ("webhook-id", "webhook-timestamp", "webhook-signature"))


@functools.lru_cache(maxsize=4)
def _webhook(secret: str) -> Webhook:
    """The verifier for a secret, built once (it base64-decodes the secret); a rotated secret gets its own."""
    return Webhook(secret)


def verify(request: Request, env: Env) -> None:
    secret = env.secret("form_webhook_secret")
    if not secret:
        raise Rejected("FORM_WEBHOOK_SECRET is not set")
    try:
        body = request.get_data(cache=True)
    except RequestEntityTooLarge:  # the app's MAX_CONTENT_LENGTH: attachments plus a margin
        limit = request.max_content_length
        raise Invalid("request too large", 413,
                      {"attachments": f"the request is larger than the {limit} bytes allowed"}) from None
    try:
        # The raw bytes, as the spec signs them (a multipart body with a binary file is not UTF-8), not parsed
        # here (multipart is not JSON). Only the three headers the check reads: copying all cost more than the HMAC.
        headers = {name: request.environ.get(key, "") for name, key in SIGNATURE_HEADERS}
        _webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError as exc:  # missing headers, bad signature, too old or too new
        raise Rejected(str(exc)) from None


def _posted(request: Request) -> tuple[str | None, dict[str, Any], list[Any]]:
    if request.mimetype == "application/json":
        body = require_object(json_body(request), "the body")
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise Invalid("'fields' must be a JSON object", fields={"fields": "required object"})
        return body.get("form"), fields, []
    if request.mimetype == "multipart/form-data":
        fields = {k: v for k, v in request.form.items() if k != "form"}
        # items(multi=True): an <input type="file" multiple> sends several files under one field name.
        files = [f for _, f in request.files.items(multi=True) if f.filename]
        return request.form.get("form"), fields, files
    raise Invalid("expected application/json or multipart/form-data", status=415)


def read_attachments(files: list[Any], config: Config, field_name: str) -> list[dict[str, Any]]:
    stored = []
    if len(files) > config.input.attachments_max_count:
        raise Invalid("too many attachments", 413,
                      {field_name: f"at most {config.input.attachments_max_count} files"})
    for upload in files:
        data = upload.read()
        if len(data) > config.attachments_max_bytes:
            raise Invalid("attachment too large", 413,
                          {field_name: f"{upload.filename}: more than {config.attachments_max_bytes} bytes"})
        if upload.mimetype not in config.attachments_allowed_types:
            raise Invalid("attachment type not allowed", 415,
                          {field_name: f"{upload.filename}: {upload.mimetype} is not one of "
                                       f"{', '.join(config.attachments_allowed_types)}"})
        stored.append({"filename": upload.filename, "content_type": upload.mimetype, "size": len(data),
                       "data_b64": base64.b64encode(data).decode()})
    return stored


def validate_fields(spec: FormSpec, fields: dict[str, Any], config: Config) -> dict[str, str]:
    ours: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, posted_name in spec.fields.items():
        if name == "attachment":  # files, not text: see read_attachments
            continue
        value = fields.get(posted_name)
        if value is not None and not isinstance(value, str):
            errors[posted_name] = "must be text"
            continue
        value = (value or "").strip()
        if value:
            ours[name] = value
        elif name in spec.required:
            errors[posted_name] = "required"
    for name, problem in config.input.too_long(ours).items():
        errors[spec.fields[name]] = problem
    if "email" in ours and spec.fields["email"] not in errors:
        try:
            ours["email"] = mailbox(ours["email"])  # stored as it will be mailed
        except InvalidAddress as exc:
            errors[spec.fields["email"]] = str(exc)
    category_field = spec.fields.get(spec.category_field)
    if category_field and ours.get(spec.category_field) and ours[spec.category_field] not in config.categories:
        errors[category_field] = f"must be one of {', '.join(config.categories)}"
    area_name, language_name = spec.service_area_field, spec.language_field
    area_field = spec.fields.get(area_name) if area_name else None
    if area_field and area_name and spec.service_areas and ours.get(area_name) \
            and ours[area_name] not in spec.service_areas:  # policy 000/001: a fixed list
        errors[area_field] = f"must be one of {', '.join(spec.service_areas)}"
    language_field = spec.fields.get(language_name) if language_name else None
    if language_field and language_name and ours.get(language_name) and ours[language_name] not in ("hu", "en"):
        errors[language_field] = "must be one of hu, en"
    if errors:
        raise Invalid("invalid form fields", fields=errors)
    return ours


def parse(request: Request, config: Config) -> list[Event]:
    form_name, fields, files = _posted(request)
    form_name = form_name or config.default_form
    spec = config.forms.get(form_name) if isinstance(form_name, str) else None
    if spec is None:
        raise Invalid("unknown form", fields={"form": f"must be one of {', '.join(config.forms)}"})
    ours = validate_fields(spec, fields, config)
    attachments = read_attachments(files, config, spec.fields.get("attachment", "attachment"))
    payload = {"form": form_name, "fields": ours, "attachments": attachments}
    return [Event(key=request.headers["webhook-id"], kind="form", payload=payload)]
