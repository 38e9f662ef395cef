"""Hook configs: validation with readable reasons, round trips, and secrets never shown."""

from __future__ import annotations

from typing import Any

import pytest

from streams.hooks import (
    MASK,
    EmailConfig,
    WebhookConfig,
    decode_hook,
    encode_hook,
    hook_from_dict,
    public_url,
)

WEBHOOK = {"kind": "webhook", "name": "ops", "url": "https://ops.example/in",
           "secret": "whsec-0123456789abcdef",
           "headers": {"Authorization": "Bearer tok-abc", "X-Api-Key": "k-999", "X-Team": "line-3"},
           "timeout_s": 5}
EMAIL = {"kind": "email", "name": "oncall", "host": "smtp.example", "port": 2525, "tls": "none",
         "username": "aw", "password": "smtp-pass-42", "sender": "aw@example.com",
         "to": ["a@example.com", "b@example.com"]}
SECRETS = ("whsec-0123456789abcdef", "tok-abc", "k-999", "smtp-pass-42")


@pytest.mark.parametrize("data", [WEBHOOK, EMAIL], ids=["webhook", "email"])
def test_config_round_trips_through_the_topic_record(data: dict[str, Any]) -> None:
    hook = hook_from_dict(data)
    again = decode_hook(encode_hook(hook))
    assert again == hook
    assert again.to_stored_dict() == hook.to_stored_dict()


@pytest.mark.parametrize("data", [WEBHOOK, EMAIL], ids=["webhook", "email"])
def test_secrets_are_masked_in_public_forms(data: dict[str, Any]) -> None:
    hook = hook_from_dict(data)
    shown = [repr(hook), str(hook), str(hook.to_public_dict()), hook.describe()]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text, text
    assert MASK in repr(hook)


def test_webhook_public_dict_masks_secret_and_credential_headers_only() -> None:
    public = hook_from_dict(WEBHOOK).to_public_dict()
    assert public["secret"] == MASK
    assert public["headers"] == {"Authorization": MASK, "X-Api-Key": MASK, "X-Team": "line-3"}


def test_scrub_removes_every_secret_from_error_text() -> None:
    hook = hook_from_dict(WEBHOOK)
    text = "server said: Bearer tok-abc is not whsec-0123456789abcdef, k-999"
    assert hook.scrub(text) == f"server said: {MASK} is not {MASK}, {MASK}"
    assert hook.scrub("token tok-abc") == f"token {MASK}"
    assert hook_from_dict(EMAIL).scrub("535 auth failed for smtp-pass-42") == f"535 auth failed for {MASK}"


def test_credentials_in_the_url_are_masked() -> None:
    hook = WebhookConfig("w", "https://bot:pa55@x.example/in?api_key=zzz&x=1", "s" * 16)
    assert "pa55" not in repr(hook) and "zzz" not in repr(hook)
    assert hook.scrub("GET https://bot:pa55@x.example/in?api_key=zzz") == f"GET https://bot:{MASK}@x.example/in?api_key={MASK}"
    assert public_url("https://x.example/in?a=1") == "https://x.example/in?a=1"


def test_email_defaults_its_port_by_tls_mode() -> None:
    base = {"name": "m", "host": "h", "sender": "a@b.example", "to": ("c@d.example",)}
    assert [EmailConfig(**base, tls=t).port for t in ("none", "starttls", "ssl")] == [25, 587, 465]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"name": ""}, "name must be 1-64 letters"),
     ({"name": "a/b"}, "name must be 1-64 letters"),
     ({"url": "ftp://x.example"}, "url must be http:// or https://"),
     ({"url": "https://"}, "url must be http:// or https://"),
     ({"secret": ""}, "secret must be a string of at least 16 characters"),
     ({"secret": "short"}, "secret must be a string of at least 16 characters"),
     ({"headers": {"Idempotency-Key": "x"}}, "set by assetwatch and cannot be overridden"),
     ({"headers": {"X-Assetwatch-Signature": "x"}}, "set by assetwatch"),
     ({"headers": {"Bad Header": "x"}}, "not a valid HTTP header name"),
     ({"headers": {"X-A": "one\r\nX-B: two"}}, "one-line string value"),
     ({"timeout_s": 0}, "timeout must be a number of seconds"),
     ({"timeout_s": 301}, "timeout must be a number of seconds"),
     ({"colour": "red"}, "unknown field 'colour'"),
     ({"kind": "pager"}, "kind must be one of webhook, email")],
)
def test_invalid_webhooks_are_refused_with_a_reason(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match="invalid hook config: .*" + reason):
        hook_from_dict({**WEBHOOK, **change})


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"host": ""}, "host must be a host name"),
     ({"port": 0}, "port must be an integer from 1 to 65535"),
     ({"tls": "yes"}, "tls must be one of none, starttls, ssl"),
     ({"sender": "nobody"}, "sender must be one e-mail address"),
     ({"sender": "a@b.example\r\nBcc: x@y.example"}, "sender must be one e-mail address"),
     ({"to": []}, "to must list at least one recipient"),
     ({"to": "a@b.example"}, "to must list at least one recipient"),
     ({"to": ["ok@x.example", "bad"]}, "to has invalid addresses: 'bad'"),
     ({"password": None}, "username and password go together")],
)
def test_invalid_emails_are_refused_with_a_reason(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match="invalid hook config: .*" + reason):
        hook_from_dict({**EMAIL, **change})


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ValueError, match="invalid hook config") as err:
        hook_from_dict({**EMAIL, "port": -1, "tls": "x", "to": []})
    assert str(err.value).count(";") == 2


def test_a_foreign_record_on_the_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="not an assetwatch hook record"):
        decode_hook(b'{"kind": "webhook"}')
    with pytest.raises(ValueError, match="line 1 column 1"):
        decode_hook(b"not json")
