"""Webhook signatures: HMAC-SHA256 of ``"<timestamp_ms>.<body>"`` with the hook's secret.

A webhook request carries ``X-Assetwatch-Timestamp: <epoch ms>`` and
``X-Assetwatch-Signature: v1=<hex>``. The receiver recomputes the HMAC over the exact body
bytes it received, compares in constant time, and refuses timestamps too far from its own
clock (replay protection). docs/hooks.md has a stand-alone receiver snippet.

>>> header = sign(b"s3cret", 1767225600000, b'{"a":1}')
>>> header
'v1=a1cdfb245eb507d607aef9c15a1814aee11b0a29121e8318da48563f9ea8e8d0'
>>> verify_signature(b"s3cret", "1767225600000", b'{"a":1}', header, now_ms=1767225601000)
True
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = [
    "DEFAULT_TOLERANCE_MS",
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "TIMESTAMP_HEADER",
    "sign",
    "signature_hex",
    "verify_signature",
]

TIMESTAMP_HEADER = "X-Assetwatch-Timestamp"
SIGNATURE_HEADER = "X-Assetwatch-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_VERSION = "v1"
#: how far a request's timestamp may be from the receiver's clock (either way)
DEFAULT_TOLERANCE_MS = 300_000


def signature_hex(secret: bytes, timestamp_ms: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp_ms>.<body>"`` keyed with ``secret``.

    >>> len(signature_hex(b"k", 0, b""))
    64
    """
    message = str(int(timestamp_ms)).encode("ascii") + b"." + bytes(body)
    return hmac.new(bytes(secret), message, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp_ms: int, body: bytes) -> str:
    """The ``X-Assetwatch-Signature`` header value: ``v1=<hex>``.

    >>> sign(b"k", 1, b"x").startswith("v1=")
    True
    """
    return f"{SIGNATURE_VERSION}={signature_hex(secret, timestamp_ms, body)}"


def verify_signature(
    secret: bytes,
    timestamp_header: str,
    body: bytes,
    signature_header: str,
    *,
    now_ms: int,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> bool:
    """Whether a request is authentic: a ``v1`` signature matches and the timestamp is recent.

    ``signature_header`` may list several comma-separated ``v1=`` entries (secret rotation);
    one match is enough. ``now_ms`` is the receiver's clock, passed in.

    >>> h = sign(b"k", 1_000_000, b"body")
    >>> verify_signature(b"k", "1000000", b"body", h, now_ms=1_000_000)
    True
    >>> verify_signature(b"k", "1000000", b"b0dy", h, now_ms=1_000_000)     # body changed
    False
    >>> verify_signature(b"k", "1000000", b"body", h, now_ms=1_000_000 + 301_000)  # too old
    False
    """
    try:
        ts_ms = int(timestamp_header.strip())
    except (AttributeError, ValueError):
        return False
    if abs(now_ms - ts_ms) > tolerance_ms:
        return False
    expected = signature_hex(secret, ts_ms, body)
    found = False
    for part in signature_header.split(","):
        version, _, value = part.strip().partition("=")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value.strip(), expected):
            found = True
    return found
