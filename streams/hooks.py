"""Hook configurations (SPEC §7): named webhooks and e-mail recipients, validated and masked.

Hooks are kept on the compacted topic ``<prefix>.hooks`` (key = hook name, value =
:func:`encode_hook`, a tombstone deletes; ``agents/hook_store.py``). This module is the pure
part: the frozen configs, their validation with every reason, and masking.

Secrets — a webhook's signing secret, an SMTP password, any extra header named like a
credential (``Authorization``, ``X-Api-Token``, …) and a password or secret-looking query
parameter in a URL — appear only in :meth:`~WebhookConfig.to_stored_dict` (the topic record
the worker reads). ``repr``, :meth:`~WebhookConfig.to_public_dict` and :meth:`~WebhookConfig.scrub`
show ``***`` instead.

>>> h = WebhookConfig("ops", "https://ops.example/hook", secret="s3cret-value-0123",
...                   headers={"Authorization": "Bearer abc", "X-Team": "line-3"})
>>> h.to_public_dict()["secret"], h.to_public_dict()["headers"]
('***', {'Authorization': '***', 'X-Team': 'line-3'})
>>> "s3cret" in repr(h), h.scrub("refused: s3cret-value-0123")
(False, 'refused: ***')
>>> hook_from_dict(decode_hook(encode_hook(h)).to_stored_dict()) == h
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from streams.codec import dumps, loads

__all__ = [
    "MASK",
    "EmailConfig",
    "HookConfig",
    "WebhookConfig",
    "decode_hook",
    "encode_hook",
    "hook_from_dict",
    "is_secret_name",
    "public_url",
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
RECORD_FORMAT: Final = "assetwatch.hook/v1"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SECRET_NAME = re.compile(r"auth|token|secret|passw|api[-_]?key|cookie|signature|credential", re.I)
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


# --------------------------------------------------------------------------- webhook


@dataclass(frozen=True, slots=True, repr=False)
class WebhookConfig:
    """An HTTP webhook: JSON POST to ``url``, signed with ``secret`` (streams/signature.py).

    Invalid values raise ``ValueError`` with every reason:

    >>> WebhookConfig("a b", "ftp://x", secret="", timeout_s=0)
    Traceback (most recent call last):
    ...
    ValueError: invalid hook config: name must be 1-64 letters, digits, '.', '_' or '-' \
(starting with a letter or digit), got 'a b'; url must be http:// or https:// with a host, \
got 'ftp://x'; secret must be a string of at least 16 characters; timeout must be a number of seconds in \
(0, 300], got 0
    """

    name: str
    url: str
    secret: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    kind: Literal["webhook"] = "webhook"

    def __post_init__(self) -> None:
        problems = _check_name(self.name)
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"url must be http:// or https:// with a host, got {public_url(str(self.url))!r}")
        elif _has_newline(self.url) or " " in self.url:
            problems.append("url must not contain spaces or line breaks")
        if not isinstance(self.secret, str) or len(self.secret) < MIN_SECRET_CHARS:
            problems.append(f"secret must be a string of at least {MIN_SECRET_CHARS} characters")
        if not isinstance(self.headers, Mapping):
            problems.append("headers must be an object of header names to values")
        else:
            for k, v in self.headers.items():
                if not isinstance(k, str) or not _HEADER_NAME.fullmatch(k):
                    problems.append(f"header name {k!r} is not a valid HTTP header name")
                elif k.lower() in RESERVED_HEADERS:
                    problems.append(f"header {k} is set by assetwatch and cannot be overridden")
                if not isinstance(v, str) or _has_newline(v):
                    problems.append(f"header {k!s} must have a one-line string value")
        problems += _check_timeout(self.timeout_s)
        if self.kind != "webhook":
            problems.append(f"kind must be 'webhook', got {self.kind!r}")
        if problems:
            raise ValueError("invalid hook config: " + "; ".join(problems))
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "timeout_s", float(self.timeout_s))

    def secrets(self) -> list[str]:
        """Every secret value this config holds (for :meth:`scrub`)."""
        found = [self.secret, *_secret_values_of_url(self.url)]
        for k, v in self.headers.items():
            if is_secret_name(k):
                found += [v, v.rpartition(" ")[2]]  # "Bearer <token>": the token alone too
        return found

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this config replaced by ``***`` (for errors and logs)."""
        return _scrub(text, self.secrets())

    def to_stored_dict(self) -> dict[str, Any]:
        """Everything, secrets included: the value on the hooks topic, never for display."""
        return {"kind": self.kind, "name": self.name, "url": self.url, "secret": self.secret,
                "headers": dict(self.headers), "timeout_s": self.timeout_s}

    def to_public_dict(self) -> dict[str, Any]:
        """What may be shown or logged: secrets masked."""
        return {"kind": self.kind, "name": self.name, "url": public_url(self.url), "secret": MASK,
                "headers": {k: MASK if is_secret_name(k) else v for k, v in self.headers.items()},
                "timeout_s": self.timeout_s}

    def describe(self) -> str:
        """One line for a listing (masked).

        >>> WebhookConfig("ops", "https://ops.example/in", "k" * 16).describe()
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

    ``port`` defaults by ``tls`` (25, 587, 465); ``username`` and ``password`` go together.

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
    password: str | None = None
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
        elif self.username is not None and (
                not isinstance(self.username, str) or not self.username or _has_newline(self.username)
                or not isinstance(self.password, str) or not self.password):
            problems.append("username and password must be non-empty strings")
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
        return [self.password] if self.password else []

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced by ``***`` (for errors and logs)."""
        return _scrub(text, self.secrets())

    def to_stored_dict(self) -> dict[str, Any]:
        """Everything, the password included: the value on the hooks topic, never for display."""
        return {"kind": self.kind, "name": self.name, "host": self.host, "port": self.port,
                "tls": self.tls, "username": self.username, "password": self.password,
                "sender": self.sender, "to": list(self.to), "timeout_s": self.timeout_s}

    def to_public_dict(self) -> dict[str, Any]:
        """What may be shown or logged: the password masked."""
        d = self.to_stored_dict()
        if d["password"] is not None:
            d["password"] = MASK
        return d

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


def hook_from_dict(data: Mapping[str, Any]) -> HookConfig:
    """A hook config from plain data (``kind`` says which); ``ValueError`` lists every problem.

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
    if kind not in _FIELDS:
        raise ValueError(f"invalid hook config: kind must be one of {', '.join(HOOK_KINDS)}, got {kind!r}")
    required, optional = _FIELDS[kind]
    values = {k: v for k, v in data.items() if k not in ("kind", "format")}
    problems = [f"unknown field {k!r}" for k in values if k not in (*required, *optional)]
    problems += [f"{k} is required" for k in required if k not in values]
    if problems:
        raise ValueError("invalid hook config: " + "; ".join(problems))
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
    """The hooks-topic value of a config (secrets included: protect that topic).

    >>> encode_hook(WebhookConfig("w", "https://x.example", "k" * 16))[:40]
    b'{"format":"assetwatch.hook/v1","kind":"w'
    """
    return dumps({"format": RECORD_FORMAT, **config.to_stored_dict()})


def decode_hook(raw: bytes) -> HookConfig:
    """The config of a hooks-topic value; ``ValueError`` (with a masked reason) if it is not one.

    >>> decode_hook(b'{"format": "x"}')
    Traceback (most recent call last):
    ...
    ValueError: not an assetwatch hook record (format 'x')
    """
    data = loads(raw)
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        fmt = data.get("format") if isinstance(data, dict) else None
        raise ValueError(f"not an assetwatch hook record (format {fmt!r})")
    return hook_from_dict(data)
