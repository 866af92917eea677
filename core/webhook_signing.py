"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a receiver checks.

``webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">``, keyed
with the base64-decoded part of a ``whsec_<base64>`` secret. Torch-free, no I/O.
"""

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"
_MIN_KEY_BYTES = 24  # the spec asks for 24 to 64 random bytes


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError says what is expected."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        key = b""
    if not secret.startswith(SECRET_PREFIX) or len(key) < _MIN_KEY_BYTES:
        raise ValueError(
            f"a webhook secret is {SECRET_PREFIX} followed by base64 of {_MIN_KEY_BYTES} to 64 random bytes"
        )
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery attempt."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
        "content-type": "application/json",
    }
