"""Hook configurations (SPEC §7): named webhooks and e-mail recipients, validated and masked.

Hooks are kept on the compacted topic ``<prefix>.hooks`` (key = hook name, value =
:func:`encode_hook`, a tombstone deletes; ``agents/hook_store.py``). This module is the pure
part: the frozen configs, their validation with every reason, secret references and masking.

Secrets — a webhook's signing secret, an SMTP password, any extra header named like a
credential (``Authorization``, ``X-Api-Token``, …) — are **references**, never values, on the
topic: ``env:NAME`` (an environment variable of the worker) or ``file:/path`` (a file on the
worker), resolved by the worker at delivery time (:func:`resolve_secrets`, given a lookup by
``agents/hooks/secrets.py``). A URL carrying a password or a credential-like query parameter is
refused. A resolved config holds its values as :class:`SecretRef` of source ``value``, which
:func:`encode_hook` refuses to write, and which ``repr``, :meth:`~WebhookConfig.to_public_dict`
and :meth:`~WebhookConfig.scrub` show as ``***``. Records of the first format
(``assetwatch.hook/v1``) held values in clear: they are still read, their values kept as
``value`` secrets (see docs/hooks.md, "Migrating").

>>> h = WebhookConfig("ops", "https://ops.example/hook", secret=SecretRef.parse("env:OPS_SECRET"),
...                   headers={"Authorization": SecretRef.parse("file:/run/secrets/ops-auth"),
...                            "X-Team": "line-3"})
>>> h.to_public_dict()["secret"], h.to_public_dict()["headers"]
('env:OPS_SECRET', {'Authorization': 'file:/run/secrets/ops-auth', 'X-Team': 'line-3'})
>>> values = {"env:OPS_SECRET": "s3cret-value-0123", "file:/run/secrets/ops-auth": "Bearer abc"}
>>> r = resolve_secrets(h, lambda ref: values[str(ref)])
>>> r.to_public_dict()["secret"], r.secret.reveal(), "s3cret" in repr(r)
('***', 's3cret-value-0123', False)
>>> r.scrub("refused: s3cret-value-0123")
'refused: ***'
>>> decode_hook(encode_hook(h)) == h
True
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from streams.codec import dumps, loads

__all__ = [
    "MASK",
    "EmailConfig",
    "HookConfig",
    "SecretRef",
    "WebhookConfig",
    "cleartext_fields",
    "decode_hook",
    "encode_hook",
    "hook_from_dict",
    "is_secret_name",
    "public_url",
    "resolve_secrets",
]

MASK: Final = "***"
HOOK_KINDS: Final = ("webhook", "email")
TlsMode = Literal["none", "starttls", "ssl"]
TLS_MODES: Final[tuple[str, ...]] = get_args(TlsMode)
DEFAULT_SMTP_PORTS: Final = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_TIMEOUT_S: Final = 10.0
MAX_TIMEOUT_S: Final = 300.0
#: a webhook secret shorter than this is refused (an HMAC key should be random, e.g. 32 bytes hex)
MIN_SECRET_CHARS: Final = 16
RECORD_FORMAT: Final = "assetwatch.hook/v2"
#: the first format, whose records held secrets in clear: read, never written
LEGACY_FORMAT: Final = "assetwatch.hook/v1"
SecretSource = Literal["env", "file", "value"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SECRET_NAME = re.compile(r"auth|token|secret|passw|api[-_]?key|cookie|signature|credential", re.I)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")
#: headers assetwatch sets itself; a hook cannot override them
RESERVED_HEADERS: Final = frozenset({
    "x-assetwatch-timestamp", "x-assetwatch-signature", "idempotency-key", "content-type",
    "content-length", "host", "transfer-encoding",
})


def is_secret_name(name: str) -> bool:
    """Whether a header or parameter name looks like it carries a credential.

    >>> [is_secret_name(n) for n in ("Authorization", "X-Api-Key", "X-Auth-Token", "X-Team")]
    [True, True, True, False]
    """
    return bool(_SECRET_NAME.search(name))


def public_url(url: str) -> str:
    """``url`` with a userinfo password and secret-looking query values masked.

    >>> public_url("https://bot:pw@hooks.example/in?token=abc&team=ops")
    'https://bot:***@hooks.example/in?token=%2A%2A%2A&team=ops'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_values_of_url(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if is_secret_name(k) and v]
    return found


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


def _has_newline(v: str) -> bool:
    return "\r" in v or "\n" in v


def _check_name(name: object) -> list[str]:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return [f"name must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or "
                f"digit), got {name!r}"]
    return []


def _check_timeout(t: object) -> list[str]:
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= MAX_TIMEOUT_S:
        return [f"timeout must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], got {t!r}"]
    return []


# --------------------------------------------------------------------------- secret references


@dataclass(frozen=True, slots=True, repr=False)
class SecretRef:
    """Where a secret is: ``env:NAME``, ``file:/path`` — or, once resolved, the value itself.

    Only references are written to the hooks topic; a ``value`` shows as ``***``.

    >>> SecretRef.parse("env:OPS_SECRET"), SecretRef.parse("file:/run/secrets/ops")
    (SecretRef('env:OPS_SECRET'), SecretRef('file:/run/secrets/ops'))
    >>> SecretRef.parse("hunter2-hunter2-hunter2")
    Traceback (most recent call last):
    ...
    ValueError: must be a reference, env:NAME or file:/absolute/path, not the secret itself
    >>> SecretRef.of_value("hunter2"), str(SecretRef.of_value("hunter2"))
    (SecretRef('***'), '***')
    """

    source: SecretSource
    target: str  # the variable's name, the file's path, or the value

    @classmethod
    def parse(cls, text: object) -> SecretRef:
        """The reference written as ``env:NAME`` or ``file:/absolute/path``; ``ValueError`` else
        (the message never repeats ``text``: it may be a secret given by mistake)."""
        if isinstance(text, str):
            source, sep, target = text.partition(":")
            if sep and source == "env" and _ENV_NAME.fullmatch(target):
                return cls("env", target)
            if sep and source == "file" and target.startswith("/") and not _has_newline(target):
                return cls("file", target)
        raise ValueError("must be a reference, env:NAME or file:/absolute/path, not the secret itself")

    @classmethod
    def of_value(cls, value: str) -> SecretRef:
        """A resolved secret (or one read from a legacy record): held, never written or shown."""
        return cls("value", value)

    @property
    def is_value(self) -> bool:
        return self.source == "value"

    def reveal(self) -> str:
        """The value of a resolved secret; ``ValueError`` for a reference not yet resolved."""
        if not self.is_value:
            raise ValueError(f"secret {self} is not resolved")
        return self.target

    def stored(self) -> str:
        """The form written on the hooks topic; ``ValueError`` for a value (never written)."""
        if self.is_value:
            raise ValueError("a secret value cannot be written to the hooks topic: give it as "
                             "env:NAME or file:/path")
        return f"{self.source}:{self.target}"

    def __str__(self) -> str:
        return MASK if self.is_value else f"{self.source}:{self.target}"

    def __repr__(self) -> str:
        return f"SecretRef({str(self)!r})"


_REF_HINT = "must be a reference, env:NAME or file:/absolute/path, not the secret itself"


def _as_secret(value: object, legacy: bool) -> object:
    """A secret field of plain data as a reference — or, from a legacy record, as a held value.

    Anything else is returned as given, for the config's checks to refuse."""
    if isinstance(value, str):
        if legacy:
            return SecretRef.of_value(value)
        with contextlib.suppress(ValueError):
            return SecretRef.parse(value)
    return value


def _as_header_value(name: str, value: object, legacy: bool) -> object:
    """A header's value: a reference when written as one (a credential-like one must be)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return SecretRef.parse(value)
        if legacy and is_secret_name(name):
            return SecretRef.of_value(value)
    return value


def _check_secret(what: str, value: object, min_chars: int = 1) -> list[str]:
    if not isinstance(value, SecretRef):
        return [f"{what} {_REF_HINT}"]
    if value.is_value and (len(value.target) < min_chars or _has_newline(value.target)):
        return [f"{what} must be one line of at least {min_chars} characters"]
    return []


# --------------------------------------------------------------------------- webhook


@dataclass(frozen=True, slots=True, repr=False)
class WebhookConfig:
    """An HTTP webhook: JSON POST to ``url``, signed with ``secret`` (streams/signature.py).

    ``secret`` and the values of credential-like headers are :class:`SecretRef`; other
    headers are plain strings. Invalid values raise ``ValueError`` with every reason:

    >>> WebhookConfig("a b", "ftp://x", secret="hunter2", timeout_s=0)  # type: ignore[arg-type]
    Traceback (most recent call last):
    ...
    ValueError: invalid hook config: name must be 1-64 letters, digits, '.', '_' or '-' \
(starting with a letter or digit), got 'a b'; url must be http:// or https:// with a host, \
got 'ftp://x'; secret must be a reference, env:NAME or file:/absolute/path, not the secret \
itself; timeout must be a number of seconds in (0, 300], got 0
    """

    name: str
    url: str
    secret: SecretRef
    headers: Mapping[str, str | SecretRef] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    kind: Literal["webhook"] = "webhook"

    def __post_init__(self) -> None:
        problems = _check_name(self.name)
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"url must be http:// or https:// with a host, got {public_url(str(self.url))!r}")
        elif _has_newline(self.url) or " " in self.url:
            problems.append("url must not contain spaces or line breaks")
        problems += _check_secret("secret", self.secret, MIN_SECRET_CHARS)
        if not isinstance(self.headers, Mapping):
            problems.append("headers must be an object of header names to values")
        else:
            for k, v in self.headers.items():
                if not isinstance(k, str) or not _HEADER_NAME.fullmatch(k):
                    problems.append(f"header name {k!r} is not a valid HTTP header name")
                elif k.lower() in RESERVED_HEADERS:
                    problems.append(f"header {k} is set by assetwatch and cannot be overridden")
                if isinstance(v, SecretRef) or (isinstance(k, str) and is_secret_name(k)):
                    problems += _check_secret(f"header {k!s} (a credential)", v)
                elif not isinstance(v, str) or _has_newline(v):
                    problems.append(f"header {k!s} must have a one-line string value")
        problems += _check_timeout(self.timeout_s)
        if self.kind != "webhook":
            problems.append(f"kind must be 'webhook', got {self.kind!r}")
        if problems:
            raise ValueError("invalid hook config: " + "; ".join(problems))
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "timeout_s", float(self.timeout_s))

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret field, by name (``secret``, ``headers.<name>``)."""
        refs = {"secret": self.secret}
        refs.update({f"headers.{k}": v for k, v in self.headers.items() if isinstance(v, SecretRef)})
        return refs

    def with_secrets(self, refs: Mapping[str, SecretRef]) -> WebhookConfig:
        """This config with the secret fields named in ``refs`` replaced (re-validated)."""
        headers = {k: refs.get(f"headers.{k}", v) for k, v in self.headers.items()}
        return replace(self, secret=refs.get("secret", self.secret), headers=headers)

    def secrets(self) -> list[str]:
        """Every secret value this config holds (for :meth:`scrub`)."""
        found = [*_secret_values_of_url(self.url)]
        for ref in self.secret_refs().values():
            if ref.is_value:
                found += [ref.target, ref.target.rpartition(" ")[2]]  # "Bearer <token>": the token too
        return found

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this config replaced by ``***`` (for errors and logs)."""
        return _scrub(text, self.secrets())

    def header_values(self) -> dict[str, str]:
        """The extra headers as sent: ``ValueError`` if a secret is not resolved."""
        return {k: v.reveal() if isinstance(v, SecretRef) else v for k, v in self.headers.items()}

    def to_stored_dict(self) -> dict[str, Any]:
        """The value on the hooks topic: references, never values (``ValueError`` for one)."""
        if _secret_values_of_url(self.url):
            raise ValueError("invalid hook config: url carries a credential (a password or a "
                             "token-like query parameter): send it in a header given as "
                             "env:NAME or file:/path")
        return {"kind": self.kind, "name": self.name, "url": self.url,
                "secret": self.secret.stored(),
                "headers": {k: v.stored() if isinstance(v, SecretRef) else v
                            for k, v in self.headers.items()},
                "timeout_s": self.timeout_s}

    def to_public_dict(self) -> dict[str, Any]:
        """What may be shown or logged: references as written, values masked."""
        return {"kind": self.kind, "name": self.name, "url": public_url(self.url),
                "secret": str(self.secret),
                "headers": {k: str(v) if isinstance(v, SecretRef) else
                            (MASK if is_secret_name(k) else v) for k, v in self.headers.items()},
                "timeout_s": self.timeout_s}

    def describe(self) -> str:
        """One line for a listing (masked).

        >>> WebhookConfig("ops", "https://ops.example/in", SecretRef.parse("env:OPS")).describe()
        'webhook POST https://ops.example/in (timeout 10 s)'
        """
        extra = f", headers {', '.join(self.headers)}" if self.headers else ""
        return f"webhook POST {public_url(self.url)} (timeout {self.timeout_s:g} s{extra})"

    def __repr__(self) -> str:
        return f"WebhookConfig({self.to_public_dict()!r})"


# --------------------------------------------------------------------------- e-mail


@dataclass(frozen=True, slots=True, repr=False)
class EmailConfig:
    """E-mail through an SMTP server: ``tls`` is ``none``, ``starttls`` or ``ssl`` (implicit TLS).

    ``port`` defaults by ``tls`` (25, 587, 465); ``username`` and ``password`` (a
    :class:`SecretRef`) go together.

    >>> EmailConfig("oncall", "smtp.example", sender="aw@example.com", to=("a@example.com",)).port
    587
    >>> EmailConfig("m", "smtp.example", sender="x", to=(), username="u")
    Traceback (most recent call last):
    ...
    ValueError: invalid hook config: sender must be one e-mail address, got 'x'; to must list \
at least one recipient; username and password go together (give both or neither)
    """

    name: str
    host: str
    sender: str
    to: tuple[str, ...]
    port: int | None = None
    tls: TlsMode = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    kind: Literal["email"] = "email"

    def __post_init__(self) -> None:
        problems = _check_name(self.name)
        if not isinstance(self.host, str) or not self.host or any(c.isspace() for c in self.host):
            problems.append(f"host must be a host name or address, got {self.host!r}")
        if self.tls not in TLS_MODES:
            problems.append(f"tls must be one of {', '.join(TLS_MODES)}, got {self.tls!r}")
        port = self.port
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 1 <= port <= 65535):
            problems.append(f"port must be an integer from 1 to 65535, got {port!r}")
        if not isinstance(self.sender, str) or not _ADDRESS.fullmatch(self.sender):
            problems.append(f"sender must be one e-mail address, got {self.sender!r}")
        to = self.to
        if isinstance(to, str) or not isinstance(to, Sequence) or not to:
            problems.append("to must list at least one recipient")
        else:
            bad = [a for a in to if not isinstance(a, str) or not _ADDRESS.fullmatch(a)]
            if bad:
                problems.append(f"to has invalid addresses: {', '.join(map(repr, bad))}")
        if (self.username is None) != (self.password is None):
            problems.append("username and password go together (give both or neither)")
        elif self.username is not None:
            if not isinstance(self.username, str) or not self.username or _has_newline(self.username):
                problems.append("username must be a non-empty one-line string")
            problems += _check_secret("password", self.password)
        problems += _check_timeout(self.timeout_s)
        if self.kind != "email":
            problems.append(f"kind must be 'email', got {self.kind!r}")
        if problems:
            raise ValueError("invalid hook config: " + "; ".join(problems))
        object.__setattr__(self, "to", tuple(to))
        object.__setattr__(self, "timeout_s", float(self.timeout_s))
        if port is None:
            object.__setattr__(self, "port", DEFAULT_SMTP_PORTS[self.tls])

    def secrets(self) -> list[str]:
        """Every secret value this config holds (for :meth:`scrub`)."""
        return [self.password.target] if self.password is not None and self.password.is_value else []

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret field, by name (``password``)."""
        return {} if self.password is None else {"password": self.password}

    def with_secrets(self, refs: Mapping[str, SecretRef]) -> EmailConfig:
        """This config with the password replaced when ``refs`` names it (re-validated)."""
        return replace(self, password=refs.get("password", self.password))

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced by ``***`` (for errors and logs)."""
        return _scrub(text, self.secrets())

    def to_stored_dict(self) -> dict[str, Any]:
        """The value on the hooks topic: the password as a reference (``ValueError`` for a value)."""
        return {"kind": self.kind, "name": self.name, "host": self.host, "port": self.port,
                "tls": self.tls, "username": self.username,
                "password": None if self.password is None else self.password.stored(),
                "sender": self.sender, "to": list(self.to), "timeout_s": self.timeout_s}

    def to_public_dict(self) -> dict[str, Any]:
        """What may be shown or logged: the password's reference, or ``***`` for a value."""
        return {"kind": self.kind, "name": self.name, "host": self.host, "port": self.port,
                "tls": self.tls, "username": self.username,
                "password": None if self.password is None else str(self.password),
                "sender": self.sender, "to": list(self.to), "timeout_s": self.timeout_s}

    def describe(self) -> str:
        """One line for a listing (masked).

        >>> EmailConfig("m", "smtp.example", sender="a@x.example", to=("b@x.example",)).describe()
        'email via smtp.example:587 (starttls) from a@x.example to b@x.example'
        """
        auth = f" as {self.username}" if self.username else ""
        return (f"email via {self.host}:{self.port} ({self.tls}{auth}) from {self.sender} "
                f"to {', '.join(self.to)}")

    def __repr__(self) -> str:
        return f"EmailConfig({self.to_public_dict()!r})"


HookConfig = WebhookConfig | EmailConfig

_FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {  # kind → (required, optional)
    "webhook": (("name", "url", "secret"), ("headers", "timeout_s")),
    "email": (("name", "host", "sender", "to"), ("port", "tls", "username", "password", "timeout_s")),
}


def hook_from_dict(data: Mapping[str, Any], *, legacy: bool = False) -> HookConfig:
    """A hook config from plain data (``kind`` says which); ``ValueError`` lists every problem.

    Secret fields are references (``env:NAME``, ``file:/path``); ``legacy`` reads a record of
    the first format, whose secrets were values.

    >>> hook_from_dict({"kind": "email", "name": "m", "host": "h", "sender": "a@b.example",
    ...                 "to": ["c@d.example"], "tls": "ssl"}).port
    465
    >>> hook_from_dict({"kind": "webhook", "name": "w", "uri": "https://x"})
    Traceback (most recent call last):
    ...
    ValueError: invalid hook config: unknown field 'uri'; url is required; secret is required
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"invalid hook config: expected an object, got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _FIELDS:  # found by fuzz/targets.py: a dict kind
        raise ValueError(f"invalid hook config: kind must be one of {', '.join(HOOK_KINDS)}, got {kind!r}")
    required, optional = _FIELDS[kind]
    values = {k: v for k, v in data.items() if k not in ("kind", "format")}
    problems = [f"unknown field {k!r}" for k in values if k not in (*required, *optional)]
    problems += [f"{k} is required" for k in required if k not in values]
    if problems:
        raise ValueError("invalid hook config: " + "; ".join(problems))
    for key in ("secret", "password"):
        if values.get(key) is not None:
            values[key] = _as_secret(values[key], legacy)
    if isinstance(values.get("headers"), Mapping):
        values["headers"] = {k: _as_header_value(str(k), v, legacy) for k, v in values["headers"].items()}
    try:
        if kind == "webhook":
            return WebhookConfig(**values)
        to = values.get("to")
        if isinstance(to, list):
            values["to"] = tuple(to)
        return EmailConfig(**values)
    except TypeError as exc:  # a wrongly typed value the checks did not name
        raise ValueError(f"invalid hook config: {exc}") from None


def encode_hook(config: HookConfig) -> bytes:
    """The hooks-topic value of a config: secrets as references only.

    A config holding a secret value (resolved, or read from a legacy record) is refused:

    >>> encode_hook(WebhookConfig("w", "https://x.example", SecretRef.parse("env:W")))[:40]
    b'{"format":"assetwatch.hook/v2","kind":"w'
    >>> encode_hook(WebhookConfig("w", "https://x.example", SecretRef.of_value("k" * 16)))
    Traceback (most recent call last):
    ...
    ValueError: a secret value cannot be written to the hooks topic: give it as env:NAME or file:/path
    """
    return dumps({"format": RECORD_FORMAT, **config.to_stored_dict()})


def decode_hook(raw: bytes) -> HookConfig:
    """The config of a hooks-topic value; ``ValueError`` (with a masked reason) if it is not one.

    A record of the first format (``assetwatch.hook/v1``, secrets in clear) is still read.

    >>> decode_hook(b'{"format": "x"}')
    Traceback (most recent call last):
    ...
    ValueError: not an assetwatch hook record (format 'x')
    """
    data = loads(raw)
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt not in (RECORD_FORMAT, LEGACY_FORMAT):
        raise ValueError(f"not an assetwatch hook record (format {fmt!r})")
    return hook_from_dict(data, legacy=fmt == LEGACY_FORMAT)


def cleartext_fields(config: HookConfig) -> list[str]:
    """The secret fields a config holds as values (a legacy record: migrate them).

    >>> cleartext_fields(decode_hook(b'{"format": "assetwatch.hook/v1", "kind": "webhook", '
    ...     b'"name": "w", "url": "https://x.example", "secret": "0123456789abcdef"}'))
    ['secret']
    """
    return [name for name, ref in config.secret_refs().items() if ref.is_value]


def resolve_secrets(config: HookConfig, lookup: Callable[[SecretRef], str]) -> HookConfig:
    """``config`` with every reference replaced by its value from ``lookup`` (re-validated).

    ``lookup`` raises ``ValueError`` (with a reason that holds no secret) when a reference
    cannot be resolved; so does a resolved value the config refuses (a short webhook secret).

    >>> h = WebhookConfig("w", "https://x.example", SecretRef.parse("env:W"))
    >>> resolve_secrets(h, lambda ref: "short").secret
    Traceback (most recent call last):
    ...
    ValueError: invalid hook config: secret must be one line of at least 16 characters
    """
    refs = {name: ref if ref.is_value else SecretRef.of_value(lookup(ref))
            for name, ref in config.secret_refs().items()}
    return config.with_secrets(refs)
