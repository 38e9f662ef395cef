"""Hook configs: validation with readable reasons, round trips, and secrets never shown."""

from __future__ import annotations

from typing import Any

import pytest

from streams.codec import dumps
from streams.hooks import (
    LEGACY_FORMAT,
    MASK,
    EmailConfig,
    SecretRef,
    WebhookConfig,
    cleartext_fields,
    decode_hook,
    encode_hook,
    hook_from_dict,
    public_url,
    resolve_secrets,
)

WEBHOOK = {"kind": "webhook", "name": "ops", "url": "https://ops.example/in",
           "secret": "env:OPS_HOOK_SECRET",
           "headers": {"Authorization": "file:/run/secrets/ops-auth", "X-Api-Key": "env:OPS_KEY",
                       "X-Team": "line-3"},
           "timeout_s": 5}
EMAIL = {"kind": "email", "name": "oncall", "host": "smtp.example", "port": 2525, "tls": "none",
         "username": "aw", "password": "file:/run/secrets/smtp", "sender": "aw@example.com",
         "to": ["a@example.com", "b@example.com"]}
#: what the references point to on a worker
VALUES = {"env:OPS_HOOK_SECRET": "whsec-0123456789abcdef", "file:/run/secrets/ops-auth": "Bearer tok-abc",
          "env:OPS_KEY": "k-999", "file:/run/secrets/smtp": "smtp-pass-42"}
SECRETS = ("whsec-0123456789abcdef", "tok-abc", "k-999", "smtp-pass-42")


def lookup(ref: SecretRef) -> str:
    return VALUES[str(ref)]


def legacy_record(data: dict[str, Any]) -> bytes:
    """A record of the first format: secrets in clear."""
    return dumps({"format": LEGACY_FORMAT, **data})


LEGACY_WEBHOOK = {**WEBHOOK, "secret": "whsec-0123456789abcdef",
                  "headers": {"Authorization": "Bearer tok-abc", "X-Api-Key": "k-999", "X-Team": "line-3"}}
LEGACY_EMAIL = {**EMAIL, "password": "smtp-pass-42"}


@pytest.mark.parametrize("data", [WEBHOOK, EMAIL], ids=["webhook", "email"])
def test_config_round_trips_through_the_topic_record(data: dict[str, Any]) -> None:
    hook = hook_from_dict(data)
    again = decode_hook(encode_hook(hook))
    assert again == hook
    assert again.to_stored_dict() == hook.to_stored_dict()
    assert cleartext_fields(again) == []


@pytest.mark.parametrize("data", [WEBHOOK, EMAIL], ids=["webhook", "email"])
def test_the_topic_record_holds_references_and_no_secret(data: dict[str, Any]) -> None:
    record = encode_hook(hook_from_dict(data))
    assert all(secret.encode() not in record for secret in SECRETS)
    assert b"env:" in record or b"file:" in record


@pytest.mark.parametrize("data", [WEBHOOK, EMAIL], ids=["webhook", "email"])
def test_resolved_secrets_are_masked_in_public_forms_and_never_encoded(data: dict[str, Any]) -> None:
    hook = resolve_secrets(hook_from_dict(data), lookup)
    shown = [repr(hook), str(hook), str(hook.to_public_dict()), hook.describe()]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text, text
    assert MASK in repr(hook)
    with pytest.raises(ValueError, match="cannot be written to the hooks topic"):
        encode_hook(hook)


def test_resolution_fills_in_every_reference_and_keeps_the_rest() -> None:
    hook = resolve_secrets(hook_from_dict(WEBHOOK), lookup)
    assert isinstance(hook, WebhookConfig)
    assert hook.secret.reveal() == "whsec-0123456789abcdef"
    assert hook.header_values() == {"Authorization": "Bearer tok-abc", "X-Api-Key": "k-999",
                                    "X-Team": "line-3"}
    mail = resolve_secrets(hook_from_dict(EMAIL), lookup)
    assert isinstance(mail, EmailConfig) and mail.password is not None
    assert mail.password.reveal() == "smtp-pass-42"


def test_an_unresolved_reference_cannot_be_used() -> None:
    hook = hook_from_dict(WEBHOOK)
    assert isinstance(hook, WebhookConfig)
    with pytest.raises(ValueError, match="secret env:OPS_HOOK_SECRET is not resolved"):
        hook.secret.reveal()


def test_webhook_public_dict_shows_references_and_masks_values() -> None:
    public = hook_from_dict(WEBHOOK).to_public_dict()
    assert public["secret"] == "env:OPS_HOOK_SECRET"
    assert public["headers"] == {"Authorization": "file:/run/secrets/ops-auth",
                                 "X-Api-Key": "env:OPS_KEY", "X-Team": "line-3"}
    resolved = resolve_secrets(hook_from_dict(WEBHOOK), lookup).to_public_dict()
    assert resolved["secret"] == MASK
    assert resolved["headers"] == {"Authorization": MASK, "X-Api-Key": MASK, "X-Team": "line-3"}


def test_scrub_removes_every_resolved_secret_from_error_text() -> None:
    hook = resolve_secrets(hook_from_dict(WEBHOOK), lookup)
    text = "server said: Bearer tok-abc is not whsec-0123456789abcdef, k-999"
    assert hook.scrub(text) == f"server said: {MASK} is not {MASK}, {MASK}"
    assert hook.scrub("token tok-abc") == f"token {MASK}"
    mail = resolve_secrets(hook_from_dict(EMAIL), lookup)
    assert mail.scrub("535 auth failed for smtp-pass-42") == f"535 auth failed for {MASK}"


@pytest.mark.parametrize("value", ["whsec-0123456789abcdef", "", "env:", "env:BAD NAME",
                                   "file:relative/path", "ENV:X"])
def test_a_secret_given_as_a_value_is_refused_without_being_repeated(value: str) -> None:
    with pytest.raises(ValueError, match="secret must be a reference, env:NAME or file:/abs") as err:
        hook_from_dict({**WEBHOOK, "secret": value})
    assert len(value) < 6 or value not in str(err.value)
    with pytest.raises(ValueError, match="password must be a reference"):
        hook_from_dict({**EMAIL, "password": "smtp-pass-42"})


def test_a_credential_header_must_be_a_reference_other_headers_may_be_either() -> None:
    with pytest.raises(ValueError, match=r"header Authorization \(a credential\) must be a reference") as err:
        hook_from_dict({**WEBHOOK, "headers": {"Authorization": "Bearer tok-abc"}})
    assert "tok-abc" not in str(err.value)
    hook = hook_from_dict({**WEBHOOK, "headers": {"X-Team": "line-3", "X-Tenant": "env:TENANT"}})
    assert hook.to_public_dict()["headers"] == {"X-Team": "line-3", "X-Tenant": "env:TENANT"}


def test_credentials_in_the_url_are_masked_and_never_written() -> None:
    hook = WebhookConfig("w", "https://bot:pa55@x.example/in?api_key=zzz&x=1", SecretRef.parse("env:W"))
    assert "pa55" not in repr(hook) and "zzz" not in repr(hook)
    assert hook.scrub("GET https://bot:pa55@x.example/in?api_key=zzz") == f"GET https://bot:{MASK}@x.example/in?api_key={MASK}"
    assert public_url("https://x.example/in?a=1") == "https://x.example/in?a=1"
    with pytest.raises(ValueError, match="url carries a credential"):
        encode_hook(hook)


@pytest.mark.parametrize(("data", "fields"), [(LEGACY_WEBHOOK, ["secret", "headers.Authorization",
                                                                "headers.X-Api-Key"]),
                                              (LEGACY_EMAIL, ["password"])], ids=["webhook", "email"])
def test_a_legacy_record_with_secrets_in_clear_is_still_read_masked_and_flagged(
        data: dict[str, Any], fields: list[str]) -> None:
    hook = decode_hook(legacy_record(data))
    assert cleartext_fields(hook) == fields
    assert all(secret not in repr(hook) for secret in SECRETS)
    # used as it is (its values need no resolving), but never written back in clear
    assert resolve_secrets(hook, lookup) == hook
    with pytest.raises(ValueError, match="cannot be written to the hooks topic"):
        encode_hook(hook)


def test_email_defaults_its_port_by_tls_mode() -> None:
    base = {"name": "m", "host": "h", "sender": "a@b.example", "to": ("c@d.example",)}
    assert [EmailConfig(**base, tls=t).port for t in ("none", "starttls", "ssl")] == [25, 587, 465]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"name": ""}, "name must be 1-64 letters"),
     ({"name": "a/b"}, "name must be 1-64 letters"),
     ({"url": "ftp://x.example"}, "url must be http:// or https://"),
     ({"url": "https://"}, "url must be http:// or https://"),
     ({"secret": "short"}, "secret must be a reference"),
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
