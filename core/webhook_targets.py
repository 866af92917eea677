"""Where a webhook may be sent: http(s) URLs whose host resolves to public addresses only. Torch-free.

A target is checked when a job is submitted and again at every delivery, and the delivery connects
to the very address that was checked, so a name that re-resolves to an internal address later
(DNS rebinding) cannot turn filterviz into a proxy into its own network.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import ForbiddenTarget

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    url: str
    host: str  # as written in the URL: the Host header and the TLS server name
    address: str  # the checked IP address to connect to


def resolve_target(url: str, allow_private: bool) -> Target:
    """Check ``url`` and pick the address to deliver to; ForbiddenTarget says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ForbiddenTarget("a webhook must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenTarget("a webhook URL may not carry credentials")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ForbiddenTarget("the webhook URL's port is not a number from 0 to 65535") from None
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ForbiddenTarget(f"the webhook host {parts.hostname!r} does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not allow_private:
        internal = [_described(address) for address in addresses if not _public(address)]
        if internal:
            raise ForbiddenTarget(
                f"the webhook host {parts.hostname!r} resolves to {', '.join(internal)}: "
                "loopback, private, link-local and other non-public addresses are not allowed"
            )
    return Target(url=url, host=parts.hostname, address=addresses[0])


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the last 32 bits are an IPv4 address
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a network's own translator
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765's SIIT form
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, but still routed inside some networks


def _public(address: str) -> bool:
    """Global unicast, judged by the IPv4 address inside an IPv6 form that carries one (NAT64, 6to4, mapped...)."""
    ip = ipaddress.ip_address(address.split("%")[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64 or ip in _SITE_LOCAL:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


def _described(address: str) -> str:
    """The address, with the IPv4 address it carries where it is an IPv6 form of one."""
    ip = ipaddress.ip_address(address.split("%")[0])
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return address if embedded is None else f"{address} (= {embedded})"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to ``ip`` would reach, for the forms that embed one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in (_NAT64, _IPV4_TRANSLATED, _IPV4_COMPATIBLE)):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
