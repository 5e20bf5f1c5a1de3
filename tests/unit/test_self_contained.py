"""The repository explains itself: no tracked file cites a document a user who clones it does not have, and every
`docs/...md#anchor` citation (in code comments, docstrings, YAML, templates and docs) names a file that exists and
a heading in it, with GitHub's anchor slugs."""
from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ("tests/fixtures/",)  # captured vendor data, not prose
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Citations of documents outside the repository: the shared design, vendor-facts and policy-digest files. Each
# name is spelt with a one-letter class ("[s]hared") so that this file does not itself contain what it looks for.
OUTSIDE = [re.compile(p) for p in (
    r"(?i)api-fact[s]",
    r"\.\./share[d]",
    r"/work/share[d]",
    r"(?i)vendor-spec[s]/",
    r"(?i)\bdesig[n]\.md",
    r"\bDESIG[N]\b",          # the design document named in capitals, with a section or a verb after it
    r"(?i)diges[t]\.md",
    r"\bDIGES[T]\b",
    r"(?i)policy digest|\(digest:",
    r"(?i)\bthe brief\b",
    r"(?<![\w.])[ABC]\.[1-6](?![\w.])",  # the old section numbers of the outside facts files ("A.6", "B.2")
)]
# A bare "§2.3" was a section of an outside facts file; a policy or RFC section names its document on the line.
# The policy and vendor-facts pages themselves cite the originals' own sections.
BARE_SECTION = re.compile(r"^(?!.*(?:policy|RFC)).*§")
OWN_SECTIONS = ("docs/policy.md", "docs/vendors/")

# `docs/x.md`, `docs/x.md#anchor` or `README.md#anchor` anywhere (a path from the repository root), and Markdown
# link targets in .md files (relative to the file).
DOC_PATH = re.compile(r"(?<![\w./-])((?:docs/[\w./-]+?|README)\.md)(#[\w-]+)?")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def text_of(path: str) -> str | None:
    file = ROOT / path
    if not file.is_file() or file.stat().st_size > 2_000_000:
        return None
    data = file.read_bytes()
    if b"\0" in data[:4096]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(file: Path) -> frozenset[str]:
    """The anchors of a Markdown file's headings (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in file.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def broken(target: str, anchor: str | None) -> str | None:
    """Why the link `target#anchor` (a path from the repository root) does not resolve, or None."""
    if not (ROOT / target).is_file():
        return f"no file {target}"
    if anchor and target.endswith(".md") and anchor not in anchors(ROOT / target):
        return f"no heading for #{anchor} in {target}"
    return None


def prose_files() -> list[str]:
    return [p for p in tracked() if not p.startswith(DATA) and p != THIS]


def test_slug_follows_github() -> None:
    assert slug("Base URL, auth and formats") == "base-url-auth-and-formats"
    assert slug("HubSpot — `connectors/hubspot.py`, `HubSpotClient`") == "hubspot--connectorshubspotpy-hubspotclient"
    assert slug("Rights of the data subject") == "rights-of-the-data-subject"
    assert slug("[Errors](#errors) and *more*") == "errors-and-more"


def test_anchors_number_repeated_headings(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# Errors\n```\n# not a heading\n```\n## Errors\n### Rate limits ##\n", encoding="utf-8")
    assert anchors(doc) == {"errors", "errors-1", "rate-limits"}


def test_no_citation_points_outside_the_repository() -> None:
    found = []
    for path in prose_files():
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            own = path.startswith(OWN_SECTIONS)
            for pattern in OUTSIDE if own else [*OUTSIDE, BARE_SECTION]:
                if pattern.search(line):
                    found.append(f"{path}:{number}: {line.strip()[:120]}")
                    break
    assert not found, "citations of documents outside the repository:\n" + "\n".join(found)


def test_the_check_finds_an_outside_citation() -> None:
    """The patterns catch the phrasings that were once used (so the test above can fail)."""
    samples = ["(api" + "-facts hubspot §4)", "DESI" + 'GN "State"', "see ../" + "shared/policy",
               "policy/DIG" + "EST.md",
               "policy 002 (digest: \"Personal data\")", "# B.2: at most 1000 ids", "pagination (§2.3)"]
    assert all(any(p.search(s) for p in [*OUTSIDE, BARE_SECTION]) for s in samples)
    fine = ["hmac.compare_digest(a, b) and sha256().hexdigest()", "(policy 004 §13)", "(RFC 5322 §3.3)",
            "version 1.2.3", "docs/vendors/gmail.md#deleting-messages"]
    assert not any(p.search(s) for p in [*OUTSIDE, BARE_SECTION] for s in fine)


def test_every_docs_link_resolves() -> None:
    found = []
    for path in prose_files():
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for match in DOC_PATH.finditer(line):
                why = broken(match.group(1), (match.group(2) or "#")[1:] or None)
                if why:
                    found.append(f"{path}:{number}: {match.group(0)}: {why}")
            if not path.endswith(".md"):
                continue
            for match in MD_LINK.finditer(line):
                target = match.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    continue
                file, _, anchor = target.partition("#")
                resolved = (ROOT / path).parent / file if file else ROOT / path
                rel = resolved.resolve().relative_to(ROOT).as_posix() if resolved.resolve().is_relative_to(ROOT) \
                    else file
                why = broken(rel, anchor or None)
                if why:
                    found.append(f"{path}:{number}: ]({target}): {why}")
    assert not found, "links that do not resolve:\n" + "\n".join(found)


@pytest.mark.parametrize("name", ["hubspot", "happyfox", "aircall", "gmail", "standard-webhooks"])
def test_vendor_facts_cite_their_sources(name: str) -> None:
    """Each vendor's facts file exists, is linked from the index, and names the vendor documentation it rests on."""
    text = (ROOT / "docs" / "vendors" / f"{name}.md").read_text(encoding="utf-8")
    assert "https://" in text
    assert f"({name}.md)" in (ROOT / "docs" / "vendors" / "README.md").read_text(encoding="utf-8")
