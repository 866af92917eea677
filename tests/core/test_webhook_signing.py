"""Standard Webhooks signatures: the spec's own test vector, and a reference verifier's verdict."""

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from core.settings import Settings
from core.webhook_signing import sign, signed_headers, signing_key

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # from the Standard Webhooks reference libraries' tests


def test_the_signature_matches_the_specs_test_vector() -> None:
    signature = sign(signing_key(SECRET), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_reference_library_accepts_our_headers_and_rejects_a_changed_body() -> None:
    body = b'{"type":"job.succeeded","data":{"id":"x"}}'
    headers = signed_headers(signing_key(SECRET), "msg_1", int(time.time()), body)

    assert Webhook(SECRET).verify(body, headers) == {"type": "job.succeeded", "data": {"id": "x"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"x", b"y"), headers)


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_short", "whsec_not base64!", "whsec_"])
def test_a_secret_that_is_not_whsec_base64_is_refused_at_start(secret: str) -> None:
    message = "a webhook secret is whsec_ followed by base64 of 24 to 64 random bytes"
    with pytest.raises(ValueError, match=message):
        signing_key(secret)
    with pytest.raises(ValueError, match=message):
        Settings(webhook_secret=secret)
