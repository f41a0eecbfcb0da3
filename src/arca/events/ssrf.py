"""Where a webhook must not go: link-local, cloud metadata and unspecified addresses.

A webhook URL is an SSRF vector (Harbor GHSA-2phj-cp9f-qq6w): a registry inside a
cloud network could be made to POST to the instance metadata service. Loopback and
private networks stay allowed (receivers often live there); these never do, unless a
webhook sets `allow_link_local = true`.
"""

from __future__ import annotations

import ipaddress

_FORBIDDEN = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local, incl. 169.254.169.254
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS instance metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::/128"),
)


def forbidden_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip.is_multicast or any(ip in net for net in _FORBIDDEN)


def literal_address(host: str) -> str | None:
    """`host` as an IP address if it is one (`[::1]` too), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None
