"""The address a request comes from, for sign-in throttling and the audit log.

Only what the platform can trust: REMOTE_ADDR, the peer of the TCP connection. Behind reverse proxies,
list them in TRUSTED_PROXIES (addresses or networks, e.g. "10.0.0.0/8,127.0.0.1"): then X-Forwarded-For
is read from the right, each hop added by a trusted proxy is skipped, and the first address not in those
networks is the client (what nginx's real_ip_recursive does). A header sent by anyone else is ignored, so
nobody can pick the address their failures are counted against.
"""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def _address(text: str | None) -> IPAddress | None:
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_address(request) -> str | None:
    """The client's IP address as text, or None when the connection has none (a test client may not)."""
    remote = _address(request.META.get("REMOTE_ADDR"))
    if remote is None:
        return None
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not any(remote in network for network in networks):
        return str(remote)
    client = remote
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # a malformed hop: keep the last address a trusted proxy vouched for
        client = address
        if not any(address in network for network in networks):
            break
    return str(client)
