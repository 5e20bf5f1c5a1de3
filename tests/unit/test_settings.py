"""Settings: environment plus YAML, validated; every problem names where it is and what was expected."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core import settings
from core.settings import DEFAULT_CONFIG, ConfigError, Env, NoSandbox, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "switchboard.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def default_yaml() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def env(**values) -> Env:
    return Env(_env_file=None, **values)


def test_default_config_is_valid():
    config = load_config(DEFAULT_CONFIG)
    assert config.default_form in config.forms
    assert config.sla.confirm_within_working_days == 2
    assert config.statuses["closed"].closed


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "forms:\n  website: {fields: [\n  broken: yes\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "line " in message and "not valid YAML" in message
    assert "Traceback" not in message


def test_bad_value_names_key_path_and_expectation(tmp_path):
    data = default_yaml()
    data["sla"]["confirm_within_working_days"] = -1
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, yaml.safe_dump(data)))
    message = str(err.value)
    assert f"{tmp_path / 'switchboard.yaml'}: sla.confirm_within_working_days:" in message
    assert "greater than or equal to 1" in message


def test_missing_value_and_unknown_key_are_named(tmp_path):
    data = default_yaml()
    del data["categories"]["panasz"]["happyfox"]
    data["retention"]["yeers"] = 5
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, yaml.safe_dump(data)))
    message = str(err.value)
    assert "categories.panasz.happyfox: Field required" in message
    assert "retention.yeers: Extra inputs are not permitted" in message


def test_cross_field_rules(tmp_path):
    data = default_yaml()
    data["default_form"] = "nope"
    with pytest.raises(ConfigError, match="default_form 'nope' is not one of forms: "):
        load_config(write(tmp_path, yaml.safe_dump(data)))
    data = default_yaml()
    data["forms"]["product"]["required"].append("phone")
    with pytest.raises(ConfigError, match="forms.product: .*required names fields that are not mapped: phone"):
        load_config(write(tmp_path, yaml.safe_dump(data)))


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"\(top level\): expected a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))


def test_environment_is_read_and_postgres_urls_get_a_driver(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:5432/sb")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/1")
    loaded = settings.load_env()
    assert loaded.database_url == "postgresql+psycopg://u:p@db.example:5432/sb"
    assert loaded.redis_url == "redis://127.0.0.1:6379/1"


def test_bad_environment_value_is_named_without_echoing_it(monkeypatch):
    monkeypatch.setenv("FORM_WEBHOOK_SECRET", "hunter2-not-a-whsec")
    monkeypatch.setenv("SMTP_PORT", "seventy")
    with pytest.raises(ConfigError) as err:
        settings.load_env()
    message = str(err.value)
    assert "environment: FORM_WEBHOOK_SECRET:" in message and "whsec_" in message
    assert "environment: SMTP_PORT:" in message
    assert "hunter2" not in message


def test_no_credentials_means_sandbox():
    assert env().sandboxed
    env().check_complete()  # nothing required in sandbox mode


def test_half_set_vendor_credentials_name_what_is_missing_and_no_secret():
    half = env(hubspot_access_token="pat-na1-very-secret", aircall_api_id="aircall-id-secret")
    assert not half.sandboxed
    with pytest.raises(ConfigError) as err:
        half.check_complete()
    message = str(err.value)
    for name in ("AIRCALL_API_TOKEN", "HAPPYFOX_API_KEY", "HAPPYFOX_AUTH_CODE", "HAPPYFOX_BASE_URL",
                 "GOOGLE_APPLICATION_CREDENTIALS", "SECRET_KEY", "ADMIN_TOKEN", "FORM_WEBHOOK_SECRET", "GMAIL_USER"):
        assert name in message
    assert "HUBSPOT_ACCESS_TOKEN" not in message and "AIRCALL_API_ID," not in message
    assert "very-secret" not in message and "aircall-id-secret" not in message


def test_secrets_do_not_print():
    loaded = env(admin_token="top-secret-admin")
    assert "top-secret-admin" not in repr(loaded) and "top-secret-admin" not in str(loaded)
    assert loaded.secret("admin_token") == "top-secret-admin"
    assert loaded.secret("secret_key") == ""


def test_with_sandbox_points_every_vendor_at_it_and_keeps_set_credentials():
    wired = env(admin_token="mine").with_sandbox("http://127.0.0.1:8901/", smtp_port=2525)
    for vendor in ("hubspot", "happyfox", "aircall", "gmail"):
        assert wired.base_url(vendor) == "http://127.0.0.1:8901"
    assert (wired.smtp_host, wired.smtp_port) == ("127.0.0.1", 2525)
    assert wired.secret("admin_token") == "mine"
    assert wired.secret("hubspot_access_token") == settings.SANDBOX_DEFAULTS["hubspot_access_token"]


def test_happyfox_has_no_default_base_url():
    real = env(hubspot_access_token="pat-real")
    assert real.base_url("hubspot") == "https://api.hubapi.com"
    with pytest.raises(ConfigError, match="HAPPYFOX_BASE_URL"):
        real.base_url("happyfox")


def test_without_credentials_or_a_sandbox_no_real_vendor_host_is_used():
    # No credentials means the sandbox's fakes; with none running, say so instead of trying the real hosts.
    for vendor in ("hubspot", "happyfox", "aircall", "gmail"):
        with pytest.raises(NoSandbox, match="no sandbox is running: start `make run`"):
            env().base_url(vendor)
    with pytest.raises(NoSandbox):
        env().require_vendors()
    attached = env().with_sandbox("http://127.0.0.1:8900", smtp_port=8925)
    attached.require_vendors()
    assert attached.base_url("aircall") == "http://127.0.0.1:8900"


def test_base_urls_without_credentials_are_refused_naming_what_to_set(monkeypatch, tmp_path):
    """A process pointed at a sandbox by `*_BASE_URL` alone would call it with no credentials (every event dead on
    HappyFox's 401): it is refused at load, naming the variables; `switchboard run` (attach=False) is not."""
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))  # no `switchboard run` recorded there
    pointed = env(hubspot_base_url="http://127.0.0.1:8900", happyfox_base_url="http://127.0.0.1:8900")
    assert pointed.sandboxed
    with pytest.raises(ConfigError) as err:
        settings.load(pointed)
    message = str(err.value)
    assert message.startswith("environment: HUBSPOT_BASE_URL, HAPPYFOX_BASE_URL set but no vendor credential")
    for name in ("HUBSPOT_ACCESS_TOKEN", "HAPPYFOX_API_KEY", "HAPPYFOX_AUTH_CODE", "AIRCALL_API_ID",
                 "AIRCALL_API_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "SECRET_KEY", "ADMIN_TOKEN",
                 "FORM_WEBHOOK_SECRET", "GMAIL_USER"):
        assert name in message
    assert "HAPPYFOX_BASE_URL," not in message.split("required too:")[1]  # it is set
    assert "\n" not in message
    assert settings.load(pointed, attach=False).env.hubspot_base_url == "http://127.0.0.1:8900"
    assert settings.load(env()).env.sandboxed  # neither credentials nor base URLs: sandbox mode, as before


def test_links_follow_the_address_served_unless_public_base_url_is_set():
    assert env().serving_at("http://127.0.0.1:8101").public_base_url == "http://127.0.0.1:8101"
    chosen = env(public_base_url="https://support.example.com")
    assert chosen.serving_at("http://127.0.0.1:8101").public_base_url == "https://support.example.com"


def test_load_reads_switchboard_config_from_the_environment(monkeypatch, tmp_path):
    data = default_yaml()
    data["sla"]["confirm_within_working_days"] = 5
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(write(tmp_path, yaml.safe_dump(data))))
    assert settings.load().config.sla.confirm_within_working_days == 5
