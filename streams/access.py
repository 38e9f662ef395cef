"""Who may use a worker's web port (issue 16 item 4; docs/control.md, "Access").

One pure decision per request, from the operator's :class:`AccessPolicy`, the request's
method and path and its ``Authorization`` header:

* a **mutating** request (any method but GET, HEAD, OPTIONS) needs the bearer token. With no
  token configured, mutating requests are refused (403): the REST control surface is off until
  the operator sets one;
* a **read** (GET, HEAD, OPTIONS) is open, unless the policy says ``reads="token"``;
* the liveness and readiness probes (``/healthz``, ``/readyz``) are always open: they say
  nothing but "up" and are what an orchestrator polls.

A missing or malformed ``Authorization`` header is 401 (with ``WWW-Authenticate: Bearer``);
a wrong token is 403. Tokens are compared in constant time.

>>> policy = AccessPolicy(token="t" * 32)
>>> decide_access(policy, "POST", "/assetwatch/inferences/", "Bearer " + "t" * 32) is None
True
>>> decide_access(policy, "POST", "/assetwatch/inferences/", None).status
401
>>> decide_access(policy, "GET", "/metrics", None) is None
True
>>> decide_access(AccessPolicy(), "POST", "/assetwatch/inferences/x/pause/", None).status
403
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "MIN_TOKEN_CHARS",
    "OPEN_PATHS",
    "READ_METHODS",
    "AccessPolicy",
    "Refusal",
    "check_token",
    "decide_access",
]

ReadAccess = Literal["open", "token"]
READ_ACCESS: Final[tuple[str, ...]] = ("open", "token")
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: probes an orchestrator polls; open whatever the policy
OPEN_PATHS: Final = frozenset({"/healthz", "/readyz"})
#: a shorter token is refused at start (32 random bytes, hex, recommended)
MIN_TOKEN_CHARS: Final = 16
TOKEN_ENV: Final = "ASSETWATCH_API_TOKEN"
TOKEN_FILE_ENV: Final = "ASSETWATCH_API_TOKEN_FILE"
HOW_TO_CONFIGURE: Final = (f"set {TOKEN_ENV} or {TOKEN_FILE_ENV} (or --api-token-file) on the "
                           f"worker and send 'Authorization: Bearer <token>'")


def check_token(token: str) -> str:
    """``token`` if it is usable as the API token; ``ValueError`` (without the token) if not.

    >>> check_token("short")
    Traceback (most recent call last):
    ...
    ValueError: the API token must be at least 16 characters without spaces (got 5)
    """
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ValueError(f"the API token must be at least {MIN_TOKEN_CHARS} characters without "
                         f"spaces (got {len(token)})")
    return token


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """The operator's choice: the API token (``None``: none configured) and who may read."""

    token: str | None = field(default=None, repr=False)  # a secret: never in a repr
    reads: ReadAccess = "open"

    def __post_init__(self) -> None:
        if self.token is not None:
            check_token(self.token)
        if self.reads not in READ_ACCESS:
            raise ValueError(f"read access must be one of {', '.join(READ_ACCESS)}, got {self.reads!r}")
        if self.reads == "token" and self.token is None:
            raise ValueError(f"reads need the token but no token is configured: {HOW_TO_CONFIGURE}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: the HTTP status (401 or 403) and a one-line reason."""

    status: Literal[401, 403]
    reason: str

    @property
    def challenge(self) -> bool:
        """Whether the answer carries ``WWW-Authenticate: Bearer`` (a 401)."""
        return self.status == 401


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def decide_access(policy: AccessPolicy, method: str, path: str,
                  authorization: str | None) -> Refusal | None:
    """``None`` when the request may proceed, else the :class:`Refusal` to answer with.

    >>> p = AccessPolicy(token="s" * 20, reads="token")
    >>> decide_access(p, "GET", "/healthz", None) is None
    True
    >>> decide_access(p, "GET", "/assetwatch/inferences/", "Bearer wrong").reason
    'wrong API token'
    """
    mutating = method.upper() not in READ_METHODS
    if path in OPEN_PATHS and not mutating:
        return None
    if not mutating and policy.reads == "open":
        return None
    if policy.token is None:
        return Refusal(403, f"the REST control API is disabled: no API token is configured; "
                            f"{HOW_TO_CONFIGURE}")
    offered = _bearer(authorization)
    if offered is None:
        return Refusal(401, "this request needs the API token: send 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(offered.encode(), policy.token.encode()):
        return Refusal(403, "wrong API token")
    return None
