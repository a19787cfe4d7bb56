"""Settings: YAML, environment overrides, secrets from the environment only, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    return path


def test_default_config_ships_the_vivochat_example() -> None:
    settings = load_settings(ROOT / "config" / "bridge.yaml")
    assert settings.default_channel == "mysite"
    assert settings.channels["mysite"].regions == {
        "en": "mysite-en",
        "es": "mysite-es",
        "de": "mysite-de",
    }
    assert settings.main_channels() == ["mysite"]
    assert settings.database.is_sqlite


def test_environment_overrides_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_SERVER__PORT", "9999")
    monkeypatch.setenv("BRIDGE_DATABASE__URL", "postgresql+asyncpg://u@db/bridge")
    monkeypatch.setenv("BRIDGE_SECURITY__API_TOKEN", "zq-secret-9")
    settings = load_settings(ROOT / "config" / "bridge.yaml")
    assert settings.server.port == 9999
    assert not settings.database.is_sqlite
    assert settings.security.api_token is not None
    assert settings.security.api_token.get_secret_value() == "zq-secret-9"
    assert "zq-secret-9" not in repr(settings)


def test_secrets_in_yaml_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "security:\n  api_token: leaked\nchannels:\n  a: {}\n")
    with pytest.raises(ConfigError, match="only be set from the environment"):
        load_settings(path)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("channels: {}\n", "at least one channel"),
        ("channels:\n  a:\n    regions: {en: missing}\n", r"channels\.a\.regions\.en"),
        (
            "channels:\n  a: {regions: {en: b}}\n  b: {regions: {x: c}}\n  c: {}\n",
            "cannot be a main channel",
        ),
        ("channels:\n  a: {}\n  b: {}\n", "default_channel: required"),
        ("default_channel: zz\nchannels:\n  a: {}\n", "'zz' is not defined"),
        ("channels:\n  a: {}\nserver: {port: -1}\n", r"server\.port"),
        ("channels:\n  a: {}\ndatabase: {url: 'mysql://x'}\n", r"database\.url"),
        ("channels:\n  a: {}\nsurprise: 1\n", "surprise"),
        ("- a\n- b\n", "mapping at the top level"),
        ("channels: [\n", "not valid YAML"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_write(tmp_path, yaml_text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_public_url_defaults_to_host_and_port(tmp_path: Path) -> None:
    path = _write(tmp_path, "channels:\n  a: {}\nserver: {host: 0.0.0.0, port: 8081}\n")
    assert load_settings(path).server.base_url() == "http://127.0.0.1:8081"
    settings = load_settings(path, server={"public_url": "https://bridge.example.com/"})
    assert settings.server.base_url() == "https://bridge.example.com"


def test_malformed_webhook_secret_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_SECURITY__WEBHOOK_SECRET", "whsec_not-base64!")
    with pytest.raises(ConfigError, match=r"security\.webhook_secret"):
        load_settings(ROOT / "config" / "bridge.yaml")


def test_command_line_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.__main__ import _settings as settings_from_args
    from bridge.__main__ import parser

    monkeypatch.setenv("BRIDGE_SERVER__HOST", "0.0.0.0")
    monkeypatch.setenv("BRIDGE_SERVER__PORT", "7000")
    args = parser().parse_args(
        ["serve", "--config", str(ROOT / "config" / "bridge.yaml"), "--host", "127.0.0.2"]
    )
    settings = settings_from_args(args)
    assert (settings.server.host, settings.server.port) == ("127.0.0.2", 7000)


def test_org_tokens_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "BRIDGE_SECURITY__ORG_TOKENS", '{"Tok-A1": {"organization_id": "acme", "user_id": "u"}}'
    )
    tokens = load_settings(ROOT / "config" / "bridge.yaml").security.org_tokens
    assert list(tokens) == ["Tok-A1"]
    assert (tokens["Tok-A1"].organization_id, tokens["Tok-A1"].permissions) == (
        "acme",
        ["settings"],
    )


def test_each_channel_has_an_owning_organization(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "organization_id: acme\n"
        "partner_organizations: {acme: [partner]}\n"
        "default_channel: shop\n"
        "channels:\n"
        "  shop: {regions: {en: shop-en, fi: shop-fi}}\n"
        "  shop-en: {}\n"
        "  shop-fi: {organization_id: suomi}\n"
        "  blog: {organization_id: globex, regions: {de: blog-de}}\n"
        "  blog-de: {}\n",
    )
    settings = load_settings(path)
    owners = {name: settings.channel_organization(name) for name in settings.channels}
    # None means the top-level organization; a region inherits its main channel's.
    assert owners == {
        "shop": "acme",
        "shop-en": "acme",
        "shop-fi": "suomi",
        "blog": "globex",
        "blog-de": "globex",
    }
    assert settings.reachable_organizations("acme") == {"acme", "partner"}
    assert settings.reachable_organizations("globex") == {"globex"}


def test_a_region_shared_by_two_organizations_must_name_its_own(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "default_channel: a\n"
        "channels:\n"
        "  a: {regions: {x: shared}}\n"
        "  b: {organization_id: globex, regions: {x: shared}}\n"
        "  shared: {}\n",
    )
    with pytest.raises(ConfigError, match=r"channels\.shared\.organization_id: required"):
        load_settings(path)
