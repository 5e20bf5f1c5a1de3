"""The staff console's configuration: named script tokens from the environment, roles from the YAML, and every
phrase of its pages translated to Hungarian."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.settings import DEFAULT_CONFIG, ConfigError, StaffSpec, load_config, load_env, parse_script_tokens
from webhooks.staff.i18n import HU

TEMPLATES = Path(__file__).resolve().parents[2] / "webhooks" / "staff" / "templates" / "staff"


def test_script_tokens_are_named_and_admin_token_is_admin() -> None:
    env = load_env(admin_tokens="backup:abc, nightly:def", admin_token="xyz", _env_file=None)
    assert env.script_tokens() == {"backup": "abc", "nightly": "def", "admin": "xyz"}
    assert load_env(_env_file=None).script_tokens() == {}


@pytest.mark.parametrize("text", ["backup", "backup:", ":abc", "Backup:abc", "a:b,a:c", "bad name:s3cr3t-token"])
def test_a_malformed_token_list_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_env(admin_tokens=text, _env_file=None)
    assert "ADMIN_TOKENS" in str(raised.value) and "item " in str(raised.value)
    secret_part = text.partition(":")[2]
    assert not secret_part or secret_part not in str(raised.value)


def test_parse_keeps_tokens_that_contain_colons() -> None:
    assert parse_script_tokens("ci:abc:def") == {"ci": "abc:def"}


def test_roles_by_address_or_group_case_insensitively() -> None:
    spec = StaffSpec(domain="example.com", roles={"ops": ["Support-Ops@example.com"],
                                                  "privacy": ["dpo@example.com"], "viewer": ["staff@example.com"]})
    assert spec.roles_of("dpo@example.com", []) == ["privacy"]
    assert spec.roles_of("x@example.com", ["support-ops@example.com", "staff@example.com"]) == ["ops", "viewer"]
    assert spec.roles_of("x@example.com", ["other@example.com"]) == []


def test_an_unknown_role_in_the_yaml_names_the_key(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace("    viewer: [staff@example.com]",
                                                              "    admin: [staff@example.com]")
    path = tmp_path / "switchboard.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"staff\.roles\.admin"):
        load_config(path)


def test_every_phrase_of_the_pages_has_its_hungarian() -> None:
    phrases = set()
    for template in TEMPLATES.glob("*.html"):
        phrases |= set(re.findall(r"""t\(\s*["']([^"']+)["']\s*\)""", template.read_text(encoding="utf-8")))
    assert len(phrases) > 50
    assert sorted(phrases - set(HU)) == []
