"""The outbound URL policy: which destinations the bridge may call for its callers.

Callers give the bridge URLs to call (a handoff's `callback_url`, a subscription's `url`),
so without a policy anyone with API access could make the bridge call its own network:
a database port, a cloud metadata service at 169.254.169.254, an admin page on loopback.
By default only public addresses may be called; `outbound.allow` lists networks and host
names on premises that may be called anyway, and loopback is allowed while the bridge
itself listens on loopback only (the quickstart).

The decision is made on addresses, never on spellings: a host that is an address in any
form (`2130706433`, `0x7f.1`, `017700000001`, `127.1`, `[::ffff:127.0.0.1]`) is
normalised with `ipaddress` first, and a name is decided by what it resolves to (the
resolving is done by the caller: see `bridge.resolver`). Pure: no I/O here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = frozenset({"http", "https"})

# What the relay records for a delivery the policy stopped (the reason itself is not
# recorded: it would tell what a name resolves to inside the bridge's network).
REFUSED_AT_DELIVERY = "destination refused by outbound policy"

# Shared address space for carrier-grade NAT: reachable only inside a provider's network,
# and Python does not count it as private.
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# The well-known NAT64 prefix embeds an IPv4 address that a NAT64 gateway would call.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a URL points: its host (lower case, no brackets or trailing dot) and port."""

    host: str
    port: int
    # Set when the host is an address in any spelling; a name must be resolved first.
    address: Address | None


def parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in the forms inet_aton and URL parsers accept, or None for a name.

    `127.1`, `0x7f.0.0.1`, `017700000001` and `2130706433` all reach 127.0.0.1 when
    given to a socket, so they are addresses here too. A host whose last label is a
    number but that is no valid address raises ValueError.
    """
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    if not parts or _number(parts[-1]) is None:
        return None
    numbers = [_number(part) for part in parts]
    if len(numbers) > 4 or any(n is None for n in numbers):
        raise ValueError("is not a valid IPv4 address")
    values = [n for n in numbers if n is not None]
    *leading, last = values
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(values)):
        raise ValueError("is not a valid IPv4 address")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _number(part: str) -> int | None:
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            return int(lowered[2:] or "0", 16)
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(lowered[1:], 8)
        return int(lowered, 10) if lowered.isdigit() else None
    except ValueError:
        return None


def literal_address(host: str) -> Address | None:
    """The address a host spells, in any form, or None when it is a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if ":" in bare:
        raise ValueError("is not a valid IPv6 address")
    return parse_ipv4_number(bare)


def embedded_ipv4(address: Address) -> Address:
    """The IPv4 address an IPv6 form carries (mapped, compatible, NAT64, 6to4), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = int(address)
    # Deprecated IPv4-compatible form ::a.b.c.d (but not :: and ::1 themselves).
    if packed >> 32 == 0 and packed > 1:
        return ipaddress.IPv4Address(packed)
    return address


def default_refusal(address: Address) -> str | None:
    """What kind of non-public address this is ("a loopback address"), or None if public."""
    address = embedded_ipv4(address)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if _is_private_use(address):
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def _is_private_use(address: Address) -> bool:
    # RFC 1918, carrier-grade NAT and unique local addresses; other special ranges
    # (documentation, benchmarking, broadcast, ...) read as "reserved".
    if isinstance(address, ipaddress.IPv4Address):
        return any(address in network for network in _PRIVATE_V4)
    return address in _ULA


_PRIVATE_V4 = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
    _CGNAT,
)
_ULA = ipaddress.IPv6Network("fc00::/7")


def parse_allow_entry(entry: str) -> Network | str:
    """An allow-list entry: a network (`10.0.0.0/8`, an address) or a host name."""
    text = entry.strip().lower()
    try:
        return ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        pass
    name = text.rstrip(".")
    labels = name.removeprefix("*.").split(".")
    if not name or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"{entry!r} is neither a network (10.0.0.0/8) nor a host name")
    if labels[-1].isdigit():
        raise ValueError(f"{entry!r} looks like an address; write it as one (10.0.0.1)")
    return name


class PolicySettings(Protocol):
    """What the policy is made from: the `outbound` settings (settings.OutboundSettings)."""

    # Read-only: the settings module imports this one (for its validator), not the reverse.
    @property
    def allow(self) -> Sequence[str]: ...

    @property
    def allow_loopback(self) -> bool | Literal["auto"]: ...


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Decides whether a destination may be called."""

    networks: tuple[Network, ...] = ()
    # Exact names, and `*.example.internal` for every name under it.
    names: frozenset[str] = frozenset()
    allow_loopback: bool = False

    @classmethod
    def from_settings(
        cls, settings: PolicySettings, *, listens_on_loopback: bool
    ) -> OutboundPolicy:
        """The policy the settings describe, for a service that listens where it says."""
        networks: list[Network] = []
        names: set[str] = set()
        for entry in settings.allow:
            parsed = parse_allow_entry(entry)
            if isinstance(parsed, str):
                names.add(parsed)
            else:
                networks.append(parsed)
        loopback = settings.allow_loopback
        if loopback == "auto":
            loopback = listens_on_loopback
        return cls(tuple(networks), frozenset(names), bool(loopback))

    def refusal(self, address: Address) -> str | None:
        """Why this address may not be called ("a loopback address"), or None."""
        inner = embedded_ipv4(address)
        if any(candidate in network for candidate in {address, inner} for network in self.networks):
            return None
        if self.allow_loopback and inner.is_loopback:
            return None
        return default_refusal(address)

    def trusts_name(self, host: str) -> bool:
        """True for a host name on the allow-list: whatever it resolves to may be called."""
        name = host.lower().rstrip(".")
        if name in self.names:
            return True
        return any(entry.startswith("*.") and name.endswith(entry[1:]) for entry in self.names)

    def destination(self, url: str) -> Destination:
        """Where the URL points; ValueError saying why for a scheme or address it may not use."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError("is not a valid URL") from exc
        if parts.scheme.lower() not in SCHEMES:
            raise ValueError("must use http or https")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise ValueError("has no host")
        address = literal_address(host)
        if address is not None:
            reason = self.refusal(address)
            if reason is not None:
                raise ValueError(f"is {reason}")
        default_port = 443 if parts.scheme.lower() == "https" else 80
        return Destination(host, port or default_port, address)

    def usable(self, host: str, addresses: Iterable[str]) -> tuple[list[str], str | None]:
        """The resolved addresses that may be called, and why the first refused one is not."""
        if self.trusts_name(host):
            return list(addresses), None
        allowed: list[str] = []
        refused: str | None = None
        for text in addresses:
            try:
                reason = self.refusal(ipaddress.ip_address(text))
            except ValueError:
                reason = "not an address"
            if reason is None:
                allowed.append(text)
            elif refused is None:
                refused = reason
        return allowed, refused
