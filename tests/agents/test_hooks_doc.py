"""docs/hooks.md: the receiver's verification snippet runs and agrees with what assetwatch sends."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.hooks.webhook import request_headers
from streams.alerts import Alert
from streams.hooks import SecretRef, WebhookConfig
from streams.notification import decode_notification, encode_notification, webhook_body

DOC = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


def snippet() -> Callable[..., bool]:
    text = DOC.read_text()
    match = re.search(r"<!-- hooks-verify-snippet -->\n```python\n(.*?)```", text, re.S)
    assert match, "the verification snippet is missing from docs/hooks.md"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), str(DOC), "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify_assetwatch"]
    return verify


def test_the_documented_receiver_check_accepts_a_real_request_and_refuses_tampering() -> None:
    verify = snippet()
    secret = "doc-secret-0123456789"
    n = decode_notification(encode_notification(
        Alert("a1", "high-vib", "line-3", ("pump-1",), 0, 0, 1, 0.9, ("vib",), "open", True), ["ops"]))
    body = webhook_body(n)
    headers = request_headers(WebhookConfig("ops", "https://x.example", SecretRef.of_value(secret)), n, body,
                              time.time_ns() // 1_000_000)
    assert verify(secret.encode(), headers, body)
    assert not verify(b"another-secret", headers, body)
    assert not verify(secret.encode(), headers, body.replace(b"pump-1", b"pump-2"))
    stale = {**headers, "X-Assetwatch-Timestamp": str(int(headers["X-Assetwatch-Timestamp"]) - 600_000)}
    assert not verify(secret.encode(), stale, body)
