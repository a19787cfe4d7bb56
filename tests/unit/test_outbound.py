"""The outbound URL policy: which destinations callers' URLs may name, in every spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import ConfigError, DestinationRefused, InvalidInput
from bridge.outbound import OutboundPolicy, parse_allow_entry
from bridge.resolver import VERDICT_SECONDS, GuardedResolver, OutboundGuard
from bridge.settings import OutboundSettings, load_settings
from tests.fake_dns import TableResolver

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = OutboundPolicy()


def refusal(url: str, policy: OutboundPolicy = DEFAULT) -> str | None:
    """Why the policy refuses the URL before any DNS, or None when it may go on."""
    try:
        policy.destination(url)
    except ValueError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        # Loopback in every spelling a socket accepts.
        ("http://127.0.0.1/", "is a loopback address"),
        ("http://127.8.9.10:5432/", "is a loopback address"),
        ("http://2130706433/", "is a loopback address"),
        ("http://0x7f.1/", "is a loopback address"),
        ("http://0x7f000001/", "is a loopback address"),
        ("http://017700000001/", "is a loopback address"),
        ("http://0177.0.0.1/", "is a loopback address"),
        ("http://127.1/", "is a loopback address"),
        ("http://127.0.1/", "is a loopback address"),
        ("http://127.0.0.1./", "is a loopback address"),
        ("http://[::1]/", "is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "is a loopback address"),
        ("http://[::ffff:7f00:1]/", "is a loopback address"),
        ("http://[0:0:0:0:0:ffff:127.0.0.1]/", "is a loopback address"),
        ("http://[64:ff9b::127.0.0.1]/", "is a loopback address"),
        ("https://user:pass@127.0.0.1:8443/x?y=1", "is a loopback address"),
        # Private: RFC 1918, carrier-grade NAT, unique local.
        ("http://10.0.0.1/", "is a private address"),
        ("http://172.16.5.4/", "is a private address"),
        ("http://172.31.255.255/", "is a private address"),
        ("http://192.168.1.1/", "is a private address"),
        ("http://100.64.0.1/", "is a private address"),
        ("http://100.127.255.254/", "is a private address"),
        ("http://[fc00::1]/", "is a private address"),
        ("http://[fd12:3456::1]/", "is a private address"),
        ("http://[::ffff:10.0.0.1]/", "is a private address"),
        ("http://167772161/", "is a private address"),
        # Link-local, the cloud metadata service among them.
        ("http://169.254.169.254/latest/meta-data/", "is a link-local address"),
        ("http://2852039166/", "is a link-local address"),
        ("http://[fe80::1]/", "is a link-local address"),
        ("http://[::ffff:169.254.169.254]/", "is a link-local address"),
        # Multicast, unspecified, reserved and broadcast.
        ("http://224.0.0.1/", "is a multicast address"),
        ("http://239.255.255.250:1900/", "is a multicast address"),
        ("http://[ff02::1]/", "is a multicast address"),
        ("http://0.0.0.0/", "is an unspecified address"),
        ("http://0/", "is an unspecified address"),
        ("http://[::]/", "is an unspecified address"),
        ("http://255.255.255.255/", "is a reserved address"),
        ("http://240.0.0.1/", "is a reserved address"),
        ("http://192.0.2.1/", "is a reserved address"),
        ("http://198.18.0.1/", "is a reserved address"),
        # Not an address at all, or not HTTP.
        ("http://1.2.3.4.5/", "is not a valid IPv4 address"),
        ("http://0x100000000/", "is not a valid IPv4 address"),
        ("http://256.1.1.1/", "is not a valid IPv4 address"),
        ("ftp://example.com/", "must use http or https"),
        ("file:///etc/passwd", "must use http or https"),
        ("gopher://127.0.0.1:6379/", "must use http or https"),
        ("http:///path", "has no host"),
        ("http://example.com:99999/", "is not a valid URL"),
    ],
)
def test_refused_destinations(url: str, problem: str) -> None:
    assert refusal(url) == problem


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/",
        "http://93.184.215.14:8080/hook",
        "https://[2606:4700:4700::1111]/",
        "https://bot.example.com/callback",  # a name: decided after DNS
        "http://1.1/",  # 1.0.0.1, public
    ],
)
def test_public_destinations_pass(url: str) -> None:
    assert refusal(url) is None


def test_a_name_is_left_to_dns_and_an_address_is_normalised() -> None:
    named = DEFAULT.destination("https://Bot.Example.com./cb")
    assert (named.host, named.port, named.address) == ("bot.example.com", 443, None)
    spelled = DEFAULT.destination("http://0x5d.0xb8.0xd7.0xe:81/")
    assert (str(spelled.address), spelled.port) == ("93.184.215.14", 81)


def test_allow_listed_networks_may_be_called() -> None:
    policy = OutboundPolicy.from_settings(
        OutboundSettings(allow=["10.0.0.0/8", "fd00::/8", "192.168.7.7"]),
        listens_on_loopback=False,
    )
    assert refusal("http://10.20.30.40/", policy) is None
    assert refusal("http://[::ffff:10.1.1.1]/", policy) is None
    assert refusal("http://[fd00::5]/", policy) is None
    assert refusal("http://192.168.7.7/", policy) is None
    assert refusal("http://192.168.7.8/", policy) == "is a private address"
    assert refusal("http://172.16.0.1/", policy) == "is a private address"
    assert refusal("http://127.0.0.1/", policy) == "is a loopback address"


def test_allow_listed_names_and_subdomains() -> None:
    policy = OutboundPolicy.from_settings(
        OutboundSettings(allow=["bot.internal", "*.corp.example"]), listens_on_loopback=False
    )
    assert policy.trusts_name("bot.internal")
    assert policy.trusts_name("BOT.internal.")
    assert policy.trusts_name("crm.corp.example")
    assert policy.trusts_name("a.b.corp.example")
    assert not policy.trusts_name("corp.example")
    assert not policy.trusts_name("evilbot.internal")
    assert not policy.trusts_name("bot.internal.evil.example")
    # A trusted name may resolve to anything; another name only to public addresses.
    assert policy.usable("bot.internal", ["10.0.0.7"]) == (["10.0.0.7"], None)
    assert policy.usable("other.example", ["10.0.0.7", "8.8.8.8"]) == (
        ["8.8.8.8"],
        "a private address",
    )


@pytest.mark.parametrize(
    ("allow_loopback", "listens_on_loopback", "allowed"),
    [
        ("auto", True, True),  # the quickstart: bridge and bot on one machine
        ("auto", False, False),  # --host 0.0.0.0, the Docker image
        (True, False, True),
        (False, True, False),
    ],
)
def test_loopback_follows_the_listener_unless_set(
    allow_loopback: bool | str, listens_on_loopback: bool, allowed: bool
) -> None:
    settings = OutboundSettings.model_validate({"allow_loopback": allow_loopback})
    policy = OutboundPolicy.from_settings(settings, listens_on_loopback=listens_on_loopback)
    for url in ("http://127.0.0.1:9000/", "http://2130706433/", "http://[::ffff:127.0.0.1]/"):
        assert (refusal(url, policy) is None) is allowed, url
    # Allowing loopback never opens the rest of the host's network.
    assert refusal("http://0.0.0.0:9000/", policy) == "is an unspecified address"
    assert refusal("http://169.254.169.254/", policy) == "is a link-local address"


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "bot internal", "-bad.example", "", "1.2.3"])
def test_a_bad_allow_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_allow_entry(entry)


def test_a_bad_allow_entry_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text("outbound:\n  allow: ['10.0.0.0/8', 'not a host']\nchannels:\n  a: {}\n")
    with pytest.raises(ConfigError, match=r"outbound\.allow: .*'not a host'"):
        load_settings(path)


def test_the_outbound_section_comes_from_yaml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text("outbound:\n  allow: [bot.internal]\nchannels:\n  a: {}\n")
    monkeypatch.setenv("BRIDGE_OUTBOUND__ALLOW_LOOPBACK", "false")
    settings = load_settings(path)
    assert settings.outbound.allow == ["bot.internal"]
    assert settings.outbound.allow_loopback is False
    assert load_settings(ROOT / "config" / "bridge.yaml").outbound.allow_loopback is False
    monkeypatch.delenv("BRIDGE_OUTBOUND__ALLOW_LOOPBACK")
    assert load_settings(ROOT / "config" / "bridge.yaml").outbound.allow_loopback == "auto"


# -- names: what they resolve to decides --------------------------------------------------

DNS = TableResolver(
    {
        "localhost": [["127.0.0.1", "::1"]],
        "metadata.example": [["169.254.169.254"]],
        "mixed.example": [["93.184.215.14", "10.0.0.9"]],
        "public.example": [["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]],
        "bot.internal": [["10.0.0.7"]],
    },
    hanging={"slow.example"},
)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://localhost:5432/", "resolves to a loopback address"),
        ("http://metadata.example/latest", "resolves to a link-local address"),
        ("http://mixed.example/", "resolves to a private address"),
        ("http://nowhere.example/", "host does not resolve"),
        ("http://slow.example/", "host did not resolve within 0.05 s"),
        ("http://public.example/", None),
        ("http://bot.internal/", None),
        ("http://127.0.0.1/", "is a loopback address"),
    ],
)
async def test_names_are_judged_by_their_addresses(url: str, problem: str | None) -> None:
    policy = OutboundPolicy.from_settings(
        OutboundSettings(allow=["bot.internal"]), listens_on_loopback=False
    )
    guard = OutboundGuard(policy, DNS, timeout=0.05)
    assert await guard.refusal(url) == problem


async def test_a_refusal_is_a_422_naming_the_field() -> None:
    guard = OutboundGuard(DEFAULT, DNS, timeout=1)
    with pytest.raises(InvalidInput) as caught:
        await guard.check("callback_url", "http://localhost/cb")
    assert [(f.field, f.problem) for f in caught.value.fields] == [
        ("callback_url", "resolves to a loopback address")
    ]


async def test_the_delivery_resolver_drops_refused_addresses() -> None:
    resolver = GuardedResolver(DEFAULT, DNS)
    kept = await resolver.resolve("mixed.example", 443)
    assert [r["host"] for r in kept] == ["93.184.215.14"]
    with pytest.raises(DestinationRefused):
        await resolver.resolve("metadata.example", 80)
    # Names on the allow-list keep every address.
    trusting = GuardedResolver(OutboundPolicy(names=frozenset({"bot.internal"})), DNS)
    assert [r["host"] for r in await trusting.resolve("bot.internal", 80)] == ["10.0.0.7"]


async def test_a_names_verdict_is_kept_for_a_while_and_a_failed_lookup_is_not() -> None:
    """A bot gives every handoff the same callback host: it is resolved once per interval."""
    dns = TableResolver({"public.example": [["93.184.215.14"]]})
    now = [1000.0]
    guard = OutboundGuard(DEFAULT, dns, timeout=1, clock=lambda: now[0])
    for path in ("a", "b", "c"):
        assert await guard.refusal(f"http://public.example/{path}") is None
    assert dns.lookups["public.example"] == 1
    now[0] += VERDICT_SECONDS + 1
    assert await guard.refusal("http://public.example/d") is None
    assert dns.lookups["public.example"] == 2
    # Another port is another destination.
    assert await guard.refusal("http://public.example:8080/") is None
    assert dns.lookups["public.example"] == 3
    for _ in range(2):
        assert await guard.refusal("http://nowhere.example/") == "host does not resolve"
    assert dns.lookups["nowhere.example"] == 2


async def test_a_url_judged_without_dns_keeps_its_verdict() -> None:
    guard = OutboundGuard(DEFAULT, DNS, timeout=1)
    for _ in range(2):
        assert await guard.refusal("http://127.0.0.1/cb") == "is a loopback address"
        assert await guard.refusal("http://93.184.215.14/cb") is None
        assert await guard.refusal("ftp://93.184.215.14/cb") is not None
    # Addresses are judged as written: nothing was looked up.
    assert "127.0.0.1" not in DNS.lookups and "93.184.215.14" not in DNS.lookups
