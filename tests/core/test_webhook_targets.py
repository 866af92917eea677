"""Where webhooks may go: never into filterviz's own network unless a deployment allows it."""

import pytest

from core.errors import ForbiddenTarget
from core.webhook_targets import resolve_target


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "resolves to 127.0.0.1: loopback, private"),
        ("http://localhost/hook", "'localhost' resolves to "),
        ("http://[::1]/hook", "resolves to ::1"),
        ("http://10.1.2.3/hook", "resolves to 10.1.2.3"),
        ("http://192.168.0.10/hook", "resolves to 192.168.0.10"),
        ("http://172.16.5.5/hook", "resolves to 172.16.5.5"),
        ("http://169.254.169.254/latest/meta-data", "resolves to 169.254.169.254"),  # cloud metadata
        ("http://100.64.0.1/hook", "resolves to 100.64.0.1"),  # carrier-grade NAT
        ("http://0.0.0.0/hook", "resolves to 0.0.0.0"),
        ("http://0x7f000001/hook", "resolves to 127.0.0.1"),  # 127.0.0.1, spelled in hex
        ("http://2130706433/hook", "resolves to 127.0.0.1"),  # ... and as one number
        ("http://[::ffff:127.0.0.1]/hook", "resolves to ::ffff:127.0.0.1 (= 127.0.0.1)"),
        ("http://224.0.0.1/hook", "resolves to 224.0.0.1"),
        (
            "http://[64:ff9b::a9fe:a9fe]/hook",
            "resolves to 64:ff9b::a9fe:a9fe (= 169.254.169.254)",
        ),  # NAT64 of 169.254.169.254
        ("http://[64:ff9b::7f00:1]/hook", "resolves to 64:ff9b::7f00:1 (= 127.0.0.1)"),  # ... of 127.0.0.1
        ("http://[64:ff9b:1::808:808]/hook", "resolves to 64:ff9b:1::808:808"),  # a local-use NAT64 prefix
        (
            "http://[2002:a9fe:a9fe::]/hook",
            "resolves to 2002:a9fe:a9fe:: (= 169.254.169.254)",
        ),  # 6to4 of 169.254.169.254
        ("http://[2002:c0a8:1::1]/hook", "resolves to 2002:c0a8:1::1 (= 192.168.0.1)"),  # ... of 192.168.0.1
        ("http://[::7f00:1]/hook", "resolves to ::127.0.0.1 (= 127.0.0.1)"),  # IPv4-compatible 127.0.0.1
        ("http://[::a00:1]/hook", "resolves to ::10.0.0.1 (= 10.0.0.1)"),  # ... 10.0.0.1
        (
            "http://[::ffff:0:a9fe:a9fe]/hook",
            "resolves to ::ffff:0:a9fe:a9fe (= 169.254.169.254)",
        ),  # IPv4-translated (SIIT)
        (
            "http://[::ffff:a9fe:a9fe]/hook",
            "resolves to ::ffff:169.254.169.254 (= 169.254.169.254)",
        ),  # IPv4-mapped, in hex
        ("http://[fec0::1]/hook", "resolves to fec0::1"),  # site-local
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "resolves to 2001:0:4136"),  # Teredo
        ("ftp://example.com/hook", "a webhook must be an absolute http:// or https:// URL"),
        ("file:///etc/passwd", "a webhook must be an absolute http:// or https:// URL"),
        ("/relative/hook", "a webhook must be an absolute http:// or https:// URL"),
        ("http://user:pw@example.com/hook", "a webhook URL may not carry credentials"),
        ("http://example.com:99999/hook", "port is not a number from 0 to 65535"),
        ("http://no-such-host.invalid/hook", "the webhook host 'no-such-host.invalid' does not resolve"),
    ],
)
def test_internal_and_malformed_targets_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ForbiddenTarget) as refused:
        resolve_target(url, allow_private=False)
    assert reason in str(refused.value)


def test_a_public_address_is_accepted_and_pinned() -> None:
    target = resolve_target("https://93.184.215.14:8443/hooks?x=1", allow_private=False)
    assert (target.host, target.address) == ("93.184.215.14", "93.184.215.14")


@pytest.mark.parametrize(
    "url",
    ["http://[64:ff9b::808:808]/hook", "http://[2002:808:808::1]/hook", "http://[2606:4700:4700::1111]/hook"],
)
def test_ipv6_forms_of_public_addresses_are_accepted(url: str) -> None:
    assert resolve_target(url, allow_private=False).url == url  # NAT64 and 6to4 of 8.8.8.8, a native address


def test_a_deployment_may_allow_internal_targets() -> None:
    target = resolve_target("http://localhost:9000/hook", allow_private=True)
    assert target.host == "localhost" and target.address in ("127.0.0.1", "::1")
