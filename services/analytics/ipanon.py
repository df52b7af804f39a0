"""IP anonymisation (pure): what the service keeps of a client's address.

With ``ANALYTICS_IP_ANONYMIZATION`` on (the default), an IPv4 address keeps its first three
octets (``203.0.113.77`` -> ``203.0.113.0``) and an IPv6 address its first 48 bits
(``2001:db8:abcd:12::1`` -> ``2001:db8:abcd::``), as Google Analytics and Matomo do: enough
for a country or network, not for a household. An IPv4-mapped IPv6 address is treated as the
IPv4 address it carries. Anything that is not an IP address is dropped (``None``).
"""

from __future__ import annotations

import ipaddress

IPV4_KEEP_BITS = 24
IPV6_KEEP_BITS = 48


def parse_ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def anonymize_ip(value: object) -> str | None:
    """The address with its host part zeroed; ``None`` if ``value`` is not an address."""
    address = parse_ip(value)
    if address is None:
        return None
    keep = IPV4_KEEP_BITS if address.version == 4 else IPV6_KEEP_BITS
    network = ipaddress.ip_network(f"{address}/{keep}", strict=False)
    return str(network.network_address)


def client_ip(value: object, *, anonymize: bool) -> str | None:
    """What is stored for an address: anonymised or not, normalised, ``None`` if invalid."""
    if anonymize:
        return anonymize_ip(value)
    address = parse_ip(value)
    return None if address is None else str(address)
