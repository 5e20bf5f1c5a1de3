"""The console's two languages. Templates write English text through `t("...")`; Hungarian is looked up here, so
an untranslated phrase shows in English (tests/unit/test_staff_i18n.py lists every phrase the templates use and
fails on one missing here). Flash messages are keys of MESSAGES."""
from __future__ import annotations

from flask import request, session

LANGUAGES = ("hu", "en")

HU = {
    "Staff console": "Munkatársi felület",
    "Overview": "Áttekintés",
    "Inbox": "Beérkezett események",
    "Tickets": "Jegyek",
    "Customers": "Ügyfelek",
    "Erasures": "Törlések",
    "Audit": "Napló",
    "Configuration": "Beállítások",
    "Sign out": "Kijelentkezés",
    "Roles": "Szerepkörök",
    "Inbox by status": "Események állapot szerint",
    "Dead letters": "Elakadt események",
    "dead events wait for a replay": "elakadt esemény vár újrafuttatásra",
    "Show them": "Megnézem",
    "Open tickets past their confirmation deadline": "Nyitott jegyek lejárt visszaigazolási határidővel",
    "None": "Nincs",
    "Reconciliation": "Egyeztetés",
    "Last run": "Utolsó futás",
    "Phase": "Szakasz",
    "Last repair": "Utolsó javítás",
    "never": "még soha",
    "Open erasure requests": "Folyamatban lévő törlések",
    "Status": "Állapot",
    "Source": "Forrás",
    "Kind": "Típus",
    "Attempts": "Kísérletek",
    "Received": "Beérkezett",
    "Updated": "Frissítve",
    "Processed": "Feldolgozva",
    "Last error": "Utolsó hiba",
    "Event key": "Eseménykulcs",
    "any": "mind",
    "Filter": "Szűrés",
    "Clear": "Szűrés nélkül",
    "rows shown, at most": "sor látható, legfeljebb",
    "Inbox event": "Esemény",
    "The payload is not shown: it holds personal data.": "A tartalom nem látható: személyes adatot tartalmaz.",
    "Ticket made from it": "Belőle lett jegy",
    "Replay": "Újrafuttatás",
    "Replay this event": "Esemény újrafuttatása",
    "Only the ops role may replay.": "Újrafuttatni csak az üzemeltetési szerepkör tud.",
    "This event is not waiting for a replay.": "Ez az esemény nem vár újrafuttatásra.",
    "Ticket": "Jegy",
    "Channel": "Csatorna",
    "Category": "Kategória",
    "Opened": "Megnyitva",
    "Confirmation due": "Visszaigazolás határideje",
    "Confirmed": "Visszaigazolva",
    "Closed": "Lezárva",
    "open": "nyitott",
    "closed": "lezárt",
    "Any system's id": "Bármely rendszer azonosítója",
    "Ids in every system": "Azonosítók minden rendszerben",
    "Switchboard": "Switchboard",
    "HappyFox": "HappyFox",
    "HubSpot ticket": "HubSpot jegy",
    "Told the customer": "Az ügyfélnek megadott",
    "Made from": "Forrása",
    "Customer": "Ügyfél",
    "History": "Előzmények",
    "When": "Mikor",
    "Who": "Ki",
    "What": "Mi",
    "Details": "Részletek",
    "No entries.": "Nincs bejegyzés.",
    "Find by email, phone or vendor id": "Keresés e-mail, telefon vagy rendszerazonosító alapján",
    "Search": "Keresés",
    "Identities": "Azonosítók",
    "Created": "Létrehozva",
    "Last activity": "Utolsó aktivitás",
    "Erased": "Törölve",
    "Merged into": "Összevonva ide",
    "No customer found.": "Nincs ilyen ügyfél.",
    "Name": "Név",
    "Language": "Nyelv",
    "Legal hold": "Jogi visszatartás",
    "yes": "igen",
    "no": "nem",
    "System": "Rendszer",
    "Value": "Érték",
    "Merged here": "Ide összevonva",
    "Export everything held (JSON)": "Minden tárolt adat exportja (JSON)",
    "Erase this person…": "A személy adatainak törlése…",
    "Erase a customer": "Ügyfél törlése",
    "This erases everything every processor and Switchboard hold about this person. It cannot be undone.":
        "Ez minden adatfeldolgozónál és a Switchboardban is törli a személy összes adatát. Nem vonható vissza.",
    "What is known": "Ami ismert róla",
    "tickets": "jegy",
    "The steps, each with its receipt": "A lépések, mindegyik nyugtával",
    "I have checked the request and confirm the erasure.": "Ellenőriztem a kérelmet, és megerősítem a törlést.",
    "Tick the box to confirm.": "A megerősítéshez jelölje be a négyzetet.",
    "Erase now": "Törlés most",
    "Cancel": "Mégse",
    "Erasure": "Törlés",
    "Reason": "Indok",
    "Requested": "Kérve",
    "Completed": "Befejezve",
    "Steps": "Lépések",
    "Step": "Lépés",
    "Receipt": "Nyugta",
    "Subject hash": "Alany hash-e",
    "Actor": "Végző",
    "Action": "Művelet",
    "Configuration check": "Beállítások ellenőrzése",
    "The YAML file is valid.": "A YAML fájl érvényes.",
    "The YAML file has problems:": "A YAML fájlban hibák vannak:",
    "forms": "űrlap",
    "categories": "kategória",
    "statuses": "állapot",
    "Vendor endpoints": "Rendszerek címei",
    "Sign-in provider": "Bejelentkezési szolgáltató",
    "Staff domain": "Munkatársi domain",
    "Script tokens (names only)": "Szkript tokenek (csak nevek)",
    "not configured": "nincs beállítva",
    "Not allowed": "Nem engedélyezett",
    "Your role does not allow this.": "A szerepköre ezt nem engedi.",
    "Only addresses of the company's Google Workspace domain may sign in.":
        "Csak a cég Google Workspace domainjének címeivel lehet belépni.",
    "Your address has no role in the staff console. Ask an administrator.":
        "A címéhez nem tartozik szerepkör. Kérjen hozzáférést egy adminisztrátortól.",
    "Your address is too long for the audit trail (60 characters at most).":
        "A címe túl hosszú a naplóhoz (legfeljebb 60 karakter).",
    "The sign-in was cancelled at the provider.": "A bejelentkezést a szolgáltatónál megszakították.",
    "The sign-in failed:": "A bejelentkezés nem sikerült:",
    "Sign in again": "Újra bejelentkezés",
    "Back to the overview": "Vissza az áttekintéshez",
    "You are signed out.": "Kijelentkezett.",
    "Something went wrong": "Hiba történt",
    "Page": "Oldal",
}

MESSAGES = {
    "replay_queued": {"en": "Replay queued: a worker runs the event again.",
                      "hu": "Újrafuttatás sorba állítva: egy feldolgozó újra lefuttatja az eseményt."},
    "replay_refused": {"en": "Not replayable (unknown, running or done).",
                       "hu": "Nem futtatható újra (ismeretlen, fut vagy kész)."},
    "export_no_identifier": {"en": "No email or phone is known to export by.",
                             "hu": "Nincs ismert e-mail vagy telefonszám, amely alapján exportálni lehetne."},
    "erase_started": {"en": "Erasure requested; its steps run now. This page follows them.",
                      "hu": "Törlés elindítva; a lépések most futnak. Ez az oldal követi őket."},
    "erase_legal_hold": {"en": "Under legal hold: release the hold before erasing.",
                         "hu": "Jogi visszatartás alatt áll: törlés előtt fel kell oldani."},
}


def language() -> str:
    chosen = session.get("lang")
    if isinstance(chosen, str) and chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "hu"


def translate(text: str) -> str:
    return HU.get(text, text) if language() == "hu" else text


def message(key: str) -> str:
    texts = MESSAGES.get(key)
    return texts[language()] if texts else key
