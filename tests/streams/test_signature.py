"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", verified in constant time."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.signature import sign, signature_hex, verify_signature

NOW = 1_767_225_600_000


def test_signature_is_the_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"key", b"1767225600000.{\"a\":1}", hashlib.sha256).hexdigest()
    assert signature_hex(b"key", NOW, b'{"a":1}') == expected
    assert sign(b"key", NOW, b'{"a":1}') == f"v1={expected}"


@pytest.mark.parametrize(
    ("secret", "ts", "body", "now", "ok"),
    [(b"key", str(NOW), b"body", NOW, True),
     (b"other", str(NOW), b"body", NOW, False),               # wrong secret
     (b"key", str(NOW + 1), b"body", NOW, False),             # timestamp changed
     (b"key", str(NOW), b"body ", NOW, False),                # body changed
     (b"key", str(NOW), b"body", NOW + 300_000, True),        # at the tolerance
     (b"key", str(NOW), b"body", NOW + 300_001, False),       # replayed too late
     (b"key", str(NOW), b"body", NOW - 300_001, False),       # from the future
     (b"key", "not-a-number", b"body", NOW, False)],
)
def test_verify_accepts_only_an_authentic_recent_request(
    secret: bytes, ts: str, body: bytes, now: int, ok: bool
) -> None:
    header = sign(b"key", NOW, b"body")
    assert verify_signature(secret, ts, body, header, now_ms=now) is ok


def test_any_of_several_signatures_may_match_for_secret_rotation() -> None:
    header = f"{sign(b'old', NOW, b'x')}, {sign(b'new', NOW, b'x')}"
    assert verify_signature(b"new", str(NOW), b"x", header, now_ms=NOW)
    assert verify_signature(b"old", str(NOW), b"x", header, now_ms=NOW)
    assert not verify_signature(b"third", str(NOW), b"x", header, now_ms=NOW)


def test_unknown_versions_are_ignored() -> None:
    v0 = "v0=" + signature_hex(b"k", NOW, b"x")
    assert not verify_signature(b"k", str(NOW), b"x", v0, now_ms=NOW)


@given(st.binary(min_size=1, max_size=32), st.binary(max_size=256), st.integers(0, 2**45))
def test_what_is_signed_verifies(secret: bytes, body: bytes, ts: int) -> None:
    assert verify_signature(secret, str(ts), body, sign(secret, ts, body), now_ms=ts)
    assert not verify_signature(secret, str(ts), body + b"!", sign(secret, ts, body), now_ms=ts)
