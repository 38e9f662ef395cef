"""Source checkpoints and holes: how far into each input partition the stored state reaches,
and the records a live stream skipped.

After every batch whose records the broker has acknowledged (snapshots, anomalies, forwards,
outbox entries), an agent stores, per input partition the batch read, the next offset it would
read: the *checkpoint*. It sits in the agent's table beside the state it vouches for, on the
same partition, so whoever recovers the state recovers it too (``agents/holes.py``).

The consumer group's committed offset is where Kafka resumes; the checkpoint is what the
state holds. They should agree, but nothing in Kafka ties them together: a commit can be
made for records whose effects never reached the changelog, and a consumer can start
elsewhere than its commit. Nor does the live stream always go on where it
was: Faust drops the rest of a fetched batch when the group's generation changes under it, and
for a partition without a committed offset it then seeks nowhere, so the consumer's position
has moved past records no one took.

So every record the live stream delivers is compared with the offset expected next on its
partition: the later of the one after the last record taken here and the checkpoint
(:func:`find_holes`):

* past it: the records in between are a *hole*; they are read from the broker and taken just
  before the record that revealed it (:func:`splice`);
* at or before it: the live stream delivers again what the state holds; those points are
  dropped as duplicates (by timestamp), as after any restart.

Topics written by transactional producers have offsets that carry no record (commit markers):
each shows as a hole of one, read to find nothing. It costs a read, never a point.

>>> checkpoint_key("tele", 3)
'#offset/tele/3'
>>> next_offsets([("tele", 0, 7), ("tele", 0, 8), ("tele", 1, 2)])
{('tele', 0): 9, ('tele', 1): 3}
>>> hole(first_offset=120, checkpoint=100), hole(first_offset=90, checkpoint=100)
(range(100, 120), None)
>>> hole(first_offset=5, checkpoint=None)  # nothing stored: nothing known to be missing
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # streams.engine reads checkpoints: the import goes one way at run time
    from streams.engine import Message

#: Table keys of checkpoints start with this (never an asset state key: those have no '#').
CHECKPOINT_PREFIX = "#offset/"


def checkpoint_key(topic: str, partition: int) -> str:
    """The state-table key of one input partition's checkpoint."""
    return f"{CHECKPOINT_PREFIX}{topic}/{partition}"


def next_offsets(positions: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the offset after the highest of ``(topic, partition, offset)``:
    a batch's checkpoints once it is done."""
    out: dict[tuple[str, int], int] = {}
    for topic, partition, offset in positions:
        tp = (topic, partition)
        if offset + 1 > out.get(tp, -1):
            out[tp] = offset + 1
    return out


def hole(first_offset: int, checkpoint: int | None) -> range | None:
    """The offsets a partition's state never took when its live stream begins at
    ``first_offset`` and its stored state reaches ``checkpoint``; ``None`` if there are none."""
    if checkpoint is None or first_offset <= checkpoint:
        return None
    return range(checkpoint, first_offset)


class Hole(NamedTuple):
    """Offsets of one partition the stored state never took and the live stream skipped."""

    topic: str
    partition: int
    offsets: range
    #: the index in its batch of the record that revealed it (its records go just before)
    at: int


def find_holes(messages: Iterable[Message],
               expected: Callable[[tuple[str, int]], int | None]) -> list[Hole]:
    """The holes a batch reveals, given per partition the offset expected next when the
    batch begins (``None``: nothing known, as for a new partition without a checkpoint).
    Nothing before that offset is ever a hole: a live stream delivering again what the state
    holds and then skipping ahead has only the offsets past it to fill.

    >>> from streams.engine import Message
    >>> def m(p: int, o: int) -> Message: return Message("t", p, o, None, b"")
    >>> for h in find_holes([m(0, 5), m(0, 6), m(0, 9), m(1, 3)], {("t", 0): 5, ("t", 1): 0}.get):
    ...     print(h)
    Hole(topic='t', partition=0, offsets=range(7, 9), at=2)
    Hole(topic='t', partition=1, offsets=range(0, 3), at=3)
    >>> find_holes([m(0, 2), m(0, 3)], {("t", 0): 5}.get)  # delivered again: no hole
    []
    >>> find_holes([m(0, 2), m(0, 7)], {("t", 0): 5}.get)  # again, then past: only 5–6
    [Hole(topic='t', partition=0, offsets=range(5, 7), at=1)]
    """
    floor: dict[tuple[str, int], int | None] = {}
    nxt: dict[tuple[str, int], int] = {}
    out: list[Hole] = []
    for i, msg in enumerate(messages):
        tp = (msg.topic, msg.partition)
        if tp not in floor:
            floor[tp] = expected(tp)
        low, after = floor[tp], nxt.get(tp)
        want = after if low is None else low if after is None else max(low, after)
        missing = hole(msg.offset, want)
        if missing is not None:
            out.append(Hole(msg.topic, msg.partition, missing, i))
        nxt[tp] = msg.offset + 1
    return out


def splice(messages: Sequence[Message], filled: Mapping[Hole, Sequence[Message]]) -> list[Message]:
    """``messages`` with each hole's records put just before the record that revealed it.

    >>> from streams.engine import Message
    >>> def m(o: int) -> Message: return Message("t", 0, o, None, b"")
    >>> [x.offset for x in splice([m(5), m(8)], {Hole("t", 0, range(6, 8), 1): [m(6), m(7)]})]
    [5, 6, 7, 8]
    """
    if not filled:
        return list(messages)
    before: dict[int, list[Message]] = {}
    for found, records in filled.items():
        before.setdefault(found.at, []).extend(records)
    out: list[Message] = []
    for i, msg in enumerate(messages):
        out += before.get(i, ())
        out.append(msg)
    return out
