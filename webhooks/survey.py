"""`GET/POST /survey/<token>`: the customer's survey page, in Hungarian or English, usable without JavaScript.

The signed, expiring token is the only authentication (no session, no CSRF token: a POST changes nothing unless
its URL carries a valid token). Answers: 200 form or thanks, 200 "already answered" on a GET and 409 on a second
POST, 400 form with the errors, 410 expired (or replaced by a newer survey), 404 not a link we signed.

The page is part of the survey flow, so this view calls `flows.closure.survey` directly: the answer must be stored
before the customer is thanked; the vendor writes run later in a job (see docs/decisions.md).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from werkzeug.datastructures import MultiDict

from flows.closure import survey

bp = Blueprint("survey", __name__)

TEXTS: dict[str, dict[str, Any]] = {
    "hu": {
        "title": "Elégedettségi kérdőív",
        "intro": "Köszönjük, hogy hozzánk fordult. Kérjük, értékelje a(z) {ticket} azonosítójú bejelentése "
                 "ügyintézését.",
        "legend": "Mennyire volt elégedett az ügyintézéssel?",
        "scores": {1: "1 – Egyáltalán nem elégedett", 2: "2 – Inkább elégedetlen", 3: "3 – Közepesen",
                   4: "4 – Elégedett", 5: "5 – Nagyon elégedett"},
        "comment": "Megjegyzés (nem kötelező)",
        "comment_hint": "Legfeljebb {max} karakter.",
        "submit": "Értékelés elküldése",
        "errors_heading": "Kérjük, javítsa a következőt:",
        "errors": {"score.missing": "Kérjük, válasszon egy értéket 1 és 5 között.",
                   "score.range": "Az értékelés 1 és 5 közötti egész szám lehet.",
                   "comment.too_long": "A megjegyzés legfeljebb {max} karakter lehet.",
                   "comment.invalid": "A megjegyzés nem olvasható."},
        "thanks_title": "Köszönjük a válaszát!",
        "thanks": "Értékelését rögzítettük. Visszajelzése segít, hogy jobban szolgálhassuk ki Önt.",
        "answered_title": "Ezt a kérdőívet már kitöltötték",
        "answered": "Ehhez a bejelentéshez már rögzítettünk értékelést, ezért újabb választ nem tudunk "
                    "elfogadni. Köszönjük!",
        "expired_title": "A kérdőív linkje lejárt",
        "expired": "Ez a link már nem érvényes. Ha szeretne visszajelzést adni, kérjük, válaszoljon a "
                   "kérdőívet tartalmazó levelünkre.",
        "invalid_title": "Érvénytelen link",
        "invalid": "Ezt a linket nem ismerjük fel. Kérjük, ellenőrizze, hogy a teljes címet nyitotta-e meg "
                   "a levelünkből.",
        "other_language": "English",
    },
    "en": {
        "title": "Customer satisfaction survey",
        "intro": "Thank you for contacting us. Please rate how we handled your request {ticket}.",
        "legend": "How satisfied were you with how we handled it?",
        "scores": {1: "1 – Very dissatisfied", 2: "2 – Dissatisfied", 3: "3 – Neutral", 4: "4 – Satisfied",
                   5: "5 – Very satisfied"},
        "comment": "Comment (optional)",
        "comment_hint": "At most {max} characters.",
        "submit": "Send my rating",
        "errors_heading": "Please correct the following:",
        "errors": {"score.missing": "Please choose a rating from 1 to 5.",
                   "score.range": "The rating must be a whole number from 1 to 5.",
                   "comment.too_long": "The comment can be at most {max} characters long.",
                   "comment.invalid": "The comment could not be read."},
        "thanks_title": "Thank you for your answer!",
        "thanks": "We have recorded your rating. Your feedback helps us serve you better.",
        "answered_title": "This survey has already been answered",
        "answered": "We have already recorded a rating for this request, so we cannot accept another one. "
                    "Thank you!",
        "expired_title": "This survey link has expired",
        "expired": "This link is no longer valid. If you would like to give feedback, please reply to the "
                   "e-mail that brought you the survey.",
        "invalid_title": "Invalid link",
        "invalid": "We do not recognise this link. Please check that you opened the full address from our "
                   "e-mail.",
        "other_language": "Magyar",
    },
}


def _language(default: str) -> str:
    asked = request.args.get("lang", "")
    return asked if asked in TEXTS else (default if default in TEXTS else "hu")


def _page(name: str, language: str, status: int, **context: Any) -> tuple[str, int, dict[str, str]]:
    other = "en" if language == "hu" else "hu"
    html = render_template(f"survey/{name}.html", lang=language, other_lang=other, t=TEXTS[language],
                           max_comment=survey.COMMENT_MAX_CHARS, **context)
    # The token is the credential: keep the page out of caches and the link out of Referer headers.
    return html, status, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                          "Content-Language": language, "X-Robots-Tag": "noindex"}


def _form(view: survey.SurveyView, language: str, status: int = 200, errors: dict[str, str] | None = None,
          values: MultiDict[str, str] | None = None) -> tuple[str, int, dict[str, str]]:
    messages = {field: TEXTS[language]["errors"][f"{field}.{code}"].format(max=survey.COMMENT_MAX_CHARS)
                for field, code in (errors or {}).items()}
    return _page("form", language, status, view=view, errors=messages, values=values or MultiDict(),
                 action=request.full_path.rstrip("?"))


@bp.route("/survey/<token>", methods=["GET", "POST"])
def survey_page(token: str) -> Any:
    try:
        view = survey.open_survey(token)
    except survey.ExpiredLink as exc:
        return _page("expired", _language(exc.language), 410)
    except survey.InvalidLink:
        return _page("invalid", _language("hu"), 404)
    language = _language(view.language)
    if view.answered:
        return _page("answered", language, 409 if request.method == "POST" else 200, view=view)
    if request.method == "GET":
        return _form(view, language)
    try:
        stored = survey.record_response(token, request.form.get("score"), request.form.get("comment"))
    except survey.InvalidAnswer as exc:
        return _form(view, language, 400, exc.errors, request.form)
    except survey.ExpiredLink:  # replaced between the GET and the POST
        return _page("expired", language, 410)
    if not stored:  # a concurrent submit won
        return _page("answered", language, 409, view=view)
    return _page("thanks", language, 200, view=view)
