"""A model's lifecycle: Created → Running → Completed | Failed (with a reason), SPEC §4.

Pure and table-driven: :data:`TRANSITIONS` lists the moves allowed from each status, and
:func:`advance` returns the next :class:`Lifecycle` or a :class:`Rejected` saying why the move
is not allowed. The clock is the caller's: every move carries its time, ``at_ms`` (epoch ms).
Only a Completed model can be scheduled (:attr:`Lifecycle.schedulable`).

>>> lc = Lifecycle.created(at_ms=1_000)
>>> lc = advance(lc, ModelStatus.RUNNING, at_ms=1_005)
>>> done = advance(lc, ModelStatus.COMPLETED, at_ms=2_000)
>>> done.status.value, done.schedulable, done.completed_at_ms
('completed', True, 2000)
>>> advance(done, ModelStatus.RUNNING, at_ms=2_001)
Rejected(reason='a completed model cannot become running (completed is final)')
>>> failed = advance(lc, ModelStatus.FAILED, at_ms=1_500, reason="empty file")
>>> failed.status.value, failed.reason, failed.schedulable
('failed', 'empty file', False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class ModelStatus(StrEnum):
    """Where a model is in its lifecycle."""

    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


#: The moves allowed from each status; Completed and Failed are final.
TRANSITIONS: Mapping[ModelStatus, frozenset[ModelStatus]] = {
    ModelStatus.CREATED: frozenset({ModelStatus.RUNNING}),
    ModelStatus.RUNNING: frozenset({ModelStatus.COMPLETED, ModelStatus.FAILED}),
    ModelStatus.COMPLETED: frozenset(),
    ModelStatus.FAILED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Rejected:
    """A move that is not allowed, and why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A model's status, the reason it failed (if it did) and when each status began."""

    status: ModelStatus
    reason: str | None
    history: tuple[tuple[ModelStatus, int], ...]  # (status, at_ms), oldest first

    @classmethod
    def created(cls, at_ms: int) -> Lifecycle:
        """A new model, Created at ``at_ms``.

        >>> Lifecycle.created(5).history
        ((<ModelStatus.CREATED: 'created'>, 5),)
        """
        return cls(ModelStatus.CREATED, None, ((ModelStatus.CREATED, at_ms),))

    @property
    def created_at_ms(self) -> int:
        return self.history[0][1]

    @property
    def completed_at_ms(self) -> int | None:
        """When the model reached a final status (Completed or Failed); ``None`` before."""
        return self.history[-1][1] if self.final else None

    @property
    def final(self) -> bool:
        return not TRANSITIONS[self.status]

    @property
    def schedulable(self) -> bool:
        """Only a Completed model can be scheduled (SPEC §4)."""
        return self.status is ModelStatus.COMPLETED

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "reason": self.reason,
            "history": [[s.value, at] for s, at in self.history],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lifecycle:
        """Rebuild from :meth:`to_dict`'s form.

        >>> lc = Lifecycle.created(1)
        >>> Lifecycle.from_dict(lc.to_dict()) == lc
        True
        """
        history = tuple((ModelStatus(s), int(at)) for s, at in d["history"])
        if not history:
            raise ValueError("a lifecycle needs at least its Created entry")
        return cls(ModelStatus(d["status"]), d.get("reason"), history)


def advance(
    lc: Lifecycle, to: ModelStatus, at_ms: int, reason: str | None = None
) -> Lifecycle | Rejected:
    """Move ``lc`` to ``to`` at ``at_ms``, or say why that move is not allowed.

    Failed needs a reason, and only Failed takes one; time may not go backwards.

    >>> running = advance(Lifecycle.created(0), ModelStatus.RUNNING, at_ms=1)
    >>> advance(running, ModelStatus.FAILED, at_ms=2)
    Rejected(reason='a model fails with a reason; none was given')
    """
    frm = lc.status
    if to not in TRANSITIONS[frm]:
        if lc.final:
            return Rejected(f"a {frm.value} model cannot become {to.value} ({frm.value} is final)")
        allowed = " or ".join(sorted(s.value for s in TRANSITIONS[frm]))
        return Rejected(f"a {frm.value} model cannot become {to.value} (only {allowed})")
    if to is ModelStatus.FAILED and not (reason and reason.strip()):
        return Rejected("a model fails with a reason; none was given")
    if to is not ModelStatus.FAILED and reason is not None:
        return Rejected(f"only a failure carries a reason, not {to.value}")
    last_at = lc.history[-1][1]
    if at_ms < last_at:
        return Rejected(f"time goes backwards: {at_ms} ms is before the last change at {last_at} ms")
    return replace(lc, status=to, reason=reason, history=(*lc.history, (to, at_ms)))
