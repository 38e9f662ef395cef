"""Hook delivery state: retry policy with back-off, one delivery's state machine, outcomes.

Pure: the clock (``now_ms``) and the randomness (a ``random.Random``) are passed in. The
delivery agent keeps one :class:`Delivery` per (notification, hook) in its outbox table as a
:meth:`Delivery.snapshot`, attempts it when :meth:`Delivery.due`, and moves it with
:meth:`Delivery.succeeded` or :meth:`Delivery.failed`:

>>> import random
>>> policy = RetryPolicy(max_attempts=3, base_delay_ms=1_000, max_delay_ms=10_000, jitter="none")
>>> d = Delivery.pending("n1", "ops", created_at_ms=0)
>>> d = d.failed(0, "HTTP 503", permanent=False, policy=policy, rng=random.Random(1))
>>> d.outcome, d.attempts, d.next_attempt_ms
('pending', 1, 1000)
>>> d = d.failed(1_000, "HTTP 503", permanent=False, policy=policy, rng=random.Random(1))
>>> d.next_attempt_ms
3000
>>> d = d.failed(3_000, "HTTP 503", permanent=False, policy=policy, rng=random.Random(1))
>>> d.outcome, d.attempts, d.last_error
('dead', 3, 'HTTP 503 (after 3 attempts)')
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, get_args

from streams.codec import dumps
from streams.state_format import DELIVERY_STATE

__all__ = [
    "Attempt",
    "Delivery",
    "Outcome",
    "RetryPolicy",
    "classify_http_status",
    "encode_hook_dead_letter",
]

Jitter = Literal["full", "equal", "none"]
JITTERS: Final[tuple[str, ...]] = get_args(Jitter)
Outcome = Literal["pending", "delivered", "dead"]
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)
#: what one attempt came to: delivered, worth retrying, or never going to work
AttemptKind = Literal["delivered", "retry", "permanent"]
MAX_ERROR_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one delivery attempt, as a sender reports it (``detail`` is masked text)."""

    kind: AttemptKind
    detail: str


def classify_http_status(status: int) -> AttemptKind:
    """What an HTTP response status means for a webhook delivery.

    2xx: delivered. 408 (timeout) and 429 (rate limited): retry. Other 4xx: permanent (the
    request itself is wrong: bad URL, bad secret, refused). Everything else (5xx, 3xx — not
    followed —, 1xx): retry.

    >>> [classify_http_status(s) for s in (200, 204, 401, 404, 408, 429, 503, 302)]
    ['delivered', 'delivered', 'permanent', 'permanent', 'retry', 'retry', 'retry', 'retry']
    """
    if 200 <= status < 300:
        return "delivered"
    if 400 <= status < 500 and status not in (408, 429):
        return "permanent"
    return "retry"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with jitter, and a budget of attempts.

    After the ``n``-th failed attempt (n ≥ 1) the cap is ``min(max_delay_ms, base_delay_ms ·
    2^(n−1))``; the delay is, by ``jitter``: ``full`` — uniform in [0, cap]; ``equal`` — cap/2
    plus uniform in [0, cap/2]; ``none`` — the cap. After ``max_attempts`` attempts the
    delivery is dead.

    >>> p = RetryPolicy(max_attempts=5, base_delay_ms=500, max_delay_ms=4_000, jitter="none")
    >>> [p.delay_ms(n, random.Random(0)) for n in range(1, 6)]
    [500, 1000, 2000, 4000, 4000]
    >>> RetryPolicy(max_attempts=0)
    Traceback (most recent call last):
    ...
    ValueError: invalid retry policy: max_attempts must be ≥ 1, got 0
    """

    max_attempts: int = 24
    base_delay_ms: int = 500
    max_delay_ms: int = 600_000
    jitter: Jitter = "full"

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) \
                or self.max_attempts < 1:
            problems.append(f"max_attempts must be ≥ 1, got {self.max_attempts!r}")
        if isinstance(self.base_delay_ms, bool) or not isinstance(self.base_delay_ms, int) \
                or self.base_delay_ms < 0:
            problems.append(f"base_delay_ms must be an integer ≥ 0, got {self.base_delay_ms!r}")
        if isinstance(self.max_delay_ms, bool) or not isinstance(self.max_delay_ms, int) \
                or self.max_delay_ms < 0:
            problems.append(f"max_delay_ms must be an integer ≥ 0, got {self.max_delay_ms!r}")
        if self.jitter not in JITTERS:
            problems.append(f"jitter must be one of {', '.join(JITTERS)}, got {self.jitter!r}")
        if problems:
            raise ValueError("invalid retry policy: " + "; ".join(problems))

    def cap_ms(self, failures: int) -> int:
        """The back-off cap after ``failures`` failed attempts (no jitter)."""
        if failures < 1:
            return 0
        # 2^(n-1) grows past any max quickly: stop doubling once above it (no huge ints)
        cap = self.base_delay_ms
        for _ in range(failures - 1):
            if cap >= self.max_delay_ms:
                break
            cap *= 2
        return min(cap, self.max_delay_ms)

    def delay_ms(self, failures: int, rng: random.Random) -> int:
        """The wait before the next attempt after ``failures`` failed ones, jitter applied."""
        cap = self.cap_ms(failures)
        if self.jitter == "full":
            return rng.randint(0, cap)
        if self.jitter == "equal":
            half = cap // 2
            return cap - half + rng.randint(0, half)
        return cap

    def to_dict(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts, "base_delay_ms": self.base_delay_ms,
                "max_delay_ms": self.max_delay_ms, "jitter": self.jitter}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification to one hook: attempts so far, when to try next, how it ended.

    ``created_at_ms`` is when the notification was published (for the latency metric),
    ``finished_at_ms`` when the delivery became ``delivered`` or ``dead``.
    """

    notification_id: str
    hook: str
    created_at_ms: int
    attempts: int = 0
    next_attempt_ms: int = 0
    last_error: str | None = None
    outcome: Outcome = "pending"
    finished_at_ms: int | None = None

    @classmethod
    def pending(cls, notification_id: str, hook: str, created_at_ms: int) -> Delivery:
        """A new delivery, due at once.

        >>> Delivery.pending("n", "h", 5).due(5)
        True
        """
        return cls(notification_id, hook, created_at_ms, next_attempt_ms=created_at_ms)

    @property
    def key(self) -> str:
        """The outbox key: ``notification-id/hook``."""
        return f"{self.notification_id}/{self.hook}"

    @property
    def done(self) -> bool:
        return self.outcome != "pending"

    def due(self, now_ms: int) -> bool:
        """Whether an attempt is due at ``now_ms`` (never once delivered or dead)."""
        return self.outcome == "pending" and self.next_attempt_ms <= now_ms

    def succeeded(self, now_ms: int) -> Delivery:
        """After an attempt the endpoint accepted.

        >>> Delivery.pending("n", "h", 0).succeeded(250).outcome
        'delivered'
        """
        self._check_pending()
        return replace(self, attempts=self.attempts + 1, outcome="delivered", finished_at_ms=now_ms)

    def failed(self, now_ms: int, error: str, *, permanent: bool, policy: RetryPolicy,
               rng: random.Random) -> Delivery:
        """After an attempt that failed: retry later, or dead if ``permanent`` or out of budget.

        >>> import random
        >>> d = Delivery.pending("n", "h", 0).failed(10, "HTTP 404", permanent=True,
        ...                                           policy=RetryPolicy(), rng=random.Random(0))
        >>> d.outcome, d.last_error
        ('dead', 'HTTP 404 (permanent)')
        """
        self._check_pending()
        attempts = self.attempts + 1
        error = error[:MAX_ERROR_CHARS]
        if permanent:
            return replace(self, attempts=attempts, outcome="dead", finished_at_ms=now_ms,
                           last_error=f"{error} (permanent)")
        if attempts >= policy.max_attempts:
            return replace(self, attempts=attempts, outcome="dead", finished_at_ms=now_ms,
                           last_error=f"{error} (after {attempts} attempts)")
        return replace(self, attempts=attempts, last_error=error,
                       next_attempt_ms=now_ms + policy.delay_ms(attempts, rng))

    def record(self, attempt: Attempt, now_ms: int, policy: RetryPolicy, rng: random.Random) -> Delivery:
        """Apply a sender's :class:`Attempt`.

        >>> import random
        >>> Delivery.pending("n", "h", 0).record(Attempt("retry", "timeout"), 0, RetryPolicy(),
        ...                                      random.Random(0)).attempts
        1
        """
        if attempt.kind == "delivered":
            return self.succeeded(now_ms)
        return self.failed(now_ms, attempt.detail, permanent=attempt.kind == "permanent",
                           policy=policy, rng=rng)

    def _check_pending(self) -> None:
        if self.outcome != "pending":
            raise ValueError(f"delivery {self.key} is already {self.outcome}")

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`restore` reads it back.

        >>> d = Delivery("n", "h", 1, 2, 3, "boom", "pending", None)
        >>> Delivery.restore(d.snapshot()) == d
        True
        """
        return DELIVERY_STATE.stamped({
            "notification_id": self.notification_id, "hook": self.hook,
            "created_at_ms": self.created_at_ms, "attempts": self.attempts,
            "next_attempt_ms": self.next_attempt_ms, "last_error": self.last_error,
            "outcome": self.outcome, "finished_at_ms": self.finished_at_ms})

    @classmethod
    def restore(cls, snap: Mapping[str, Any]) -> Delivery:
        """A delivery from :meth:`snapshot` data; ``ValueError`` when it is not one (a
        :class:`streams.state_format.StateFormatError` when its format is newer)."""
        snap = DELIVERY_STATE.migrated(snap)
        try:
            outcome = snap["outcome"]
            if outcome not in OUTCOMES:
                raise ValueError(f"unknown outcome {outcome!r}")
            finished = snap["finished_at_ms"]
            return cls(str(snap["notification_id"]), str(snap["hook"]), int(snap["created_at_ms"]),
                       int(snap["attempts"]), int(snap["next_attempt_ms"]),
                       None if snap["last_error"] is None else str(snap["last_error"]),
                       outcome, None if finished is None else int(finished))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a delivery snapshot: {exc!r}") from None


def encode_hook_dead_letter(
    *,
    reason: str,
    dead_at_ms: int,
    delivery: Delivery | None = None,
    hook_config: Mapping[str, Any] | None = None,
    notification: Mapping[str, Any] | None = None,
    raw: bytes | None = None,
) -> bytes:
    """A record of ``<prefix>.hooks.dead-letter`` (``schemas/hook-dead-letter.v1.json``).

    Either a delivery that ended ``dead`` (its hook's *public* config, the notification record
    to re-drive it), or a notification record that could not be read (``raw`` bytes, no
    delivery). The caller passes masked text only: ``reason`` through the hook's ``scrub``,
    ``hook_config`` from ``to_public_dict``.

    >>> from streams.codec import loads
    >>> d = Delivery("n1", "ops", 100, 3, 0, "HTTP 503 (after 3 attempts)", "dead", 900)
    >>> rec = loads(encode_hook_dead_letter(reason=d.last_error, dead_at_ms=900, delivery=d))
    >>> rec["hook"], rec["attempts"], rec["reason"]
    ('ops', 3, 'HTTP 503 (after 3 attempts)')
    >>> loads(encode_hook_dead_letter(reason="not JSON", dead_at_ms=1, raw=b"{"))["raw_b64"]
    'ew=='
    """
    record: dict[str, Any] = {
        "notification_id": None if delivery is None else delivery.notification_id,
        "hook": None if delivery is None else delivery.hook,
        "reason": reason[:MAX_ERROR_CHARS] or "unknown",
        "attempts": 0 if delivery is None else delivery.attempts,
        "created_at": None if delivery is None else delivery.created_at_ms,
        "dead_at": dead_at_ms,
        "hook_config": None if hook_config is None else dict(hook_config),
        "notification": None if notification is None else dict(notification),
    }
    if raw is not None:
        record["raw_b64"] = base64.b64encode(raw).decode("ascii")
    return dumps(record)
