"""Where webhooks may go: never into filterviz's own network unless a deployment allows it."""

import pytest

from core.webhook_targets import ForbiddenTarget, resolve_target


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
        ("http://[::ffff:127.0.0.1]/hook", "resolves to ::ffff:127.0.0.1"),
        ("http://224.0.0.1/hook", "resolves to 224.0.0.1"),
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


def test_a_deployment_may_allow_internal_targets() -> None:
    target = resolve_target("http://localhost:9000/hook", allow_private=True)
    assert target.host == "localhost" and target.address in ("127.0.0.1", "::1")
