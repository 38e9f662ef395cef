"""How long the controller remembers a command id (issue 16 item 5: bounded growth).

A command id seen before gets its first result again, so a client that re-sends a command
after a timeout does not apply it twice (docs/control.md). The controller keeps each id's
result in its table; without a bound that table grows by one entry per command for ever.
An id is remembered for :data:`COMMAND_ID_RETENTION_MS` (a week: the event log's retention on
a stock Apache Kafka topic, so a result that can still be read can still be recognised) and,
whatever its age, only among the newest :data:`MAX_COMMAND_IDS`. A command re-sent after that
is decided again, as a new one.

>>> results = {"command/a": {"at": 1_000}, "command/b": {"at": 5_000}, "inference/x": {}}
>>> forgotten_commands(results, now_ms=9_000, retention_ms=5_000)
['command/a']
>>> forgotten_commands(results, now_ms=9_000, retention_ms=10_000, max_kept=1)
['command/a']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: How long a command's id (and result) is remembered.
COMMAND_ID_RETENTION_MS: Final = 7 * 86_400_000
#: The most command ids remembered, newest first.
MAX_COMMAND_IDS: Final = 100_000
#: The table keys of command results.
PREFIX: Final = "command/"


def forgotten_commands(table: Mapping[str, Any], now_ms: int,
                       retention_ms: int = COMMAND_ID_RETENTION_MS,
                       max_kept: int = MAX_COMMAND_IDS) -> list[str]:
    """The command keys of ``table`` to forget: older than ``retention_ms`` (by the result's
    ``at``), or beyond the ``max_kept`` newest. Other keys are never named; a result with no
    readable time counts as oldest."""
    stamped: list[tuple[int, str]] = []
    for key, value in table.items():
        if not key.startswith(PREFIX):
            continue
        at = value.get("at") if isinstance(value, Mapping) else None
        stamped.append((at if isinstance(at, int) and not isinstance(at, bool) else -1, key))
    stamped.sort(reverse=True)
    horizon = now_ms - retention_ms
    return sorted(key for rank, (at, key) in enumerate(stamped) if rank >= max_kept or at < horizon)


__all__ = ["COMMAND_ID_RETENTION_MS", "MAX_COMMAND_IDS", "forgotten_commands"]
