"""Source checkpoints: where the stored state ends, and the hole before a live stream."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.checkpoint import (
    CHECKPOINT_PREFIX,
    Hole,
    checkpoint_key,
    find_holes,
    hole,
    next_offsets,
    splice,
)
from streams.engine import Message, state_key


def test_a_live_stream_beginning_past_the_checkpoint_leaves_the_offsets_between_as_a_hole() -> None:
    assert hole(first_offset=250, checkpoint=200) == range(200, 250)


def test_a_live_stream_beginning_at_or_before_the_checkpoint_leaves_no_hole() -> None:
    assert hole(first_offset=200, checkpoint=200) is None
    assert hole(first_offset=150, checkpoint=200) is None  # delivered again: duplicates


def test_without_a_checkpoint_nothing_is_known_to_be_missing() -> None:
    assert hole(first_offset=10, checkpoint=None) is None


@given(st.lists(st.tuples(st.sampled_from(["t", "t.by-asset"]), st.integers(0, 3),
                          st.integers(0, 10_000)), min_size=1))
def test_a_batchs_checkpoint_is_one_past_its_highest_offset_per_partition(
        positions: list[tuple[str, int, int]]) -> None:
    out = next_offsets(positions)
    assert set(out) == {(t, p) for t, p, _ in positions}
    for (topic, partition), offset in out.items():
        assert offset == 1 + max(o for t, p, o in positions if (t, p) == (topic, partition))


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_after_filling_the_hole_the_state_reaches_the_live_stream(first: int, checkpoint: int) -> None:
    missing = hole(first, checkpoint)
    reached = checkpoint if missing is None else missing.stop
    assert reached >= first  # nothing before the live stream is left out
    assert missing is None or missing.start == checkpoint  # nor read that the state holds


def test_checkpoint_keys_never_collide_with_asset_state_keys() -> None:
    assert checkpoint_key("tele", 0).startswith(CHECKPOINT_PREFIX)
    assert not state_key("inf", "pump-1").startswith("#")
    assert checkpoint_key("tele", 1) != checkpoint_key("tele.by-asset", 1)


def _m(offset: int, partition: int = 0) -> Message:
    return Message("t", partition, offset, None, b"")


def test_a_jump_forward_in_the_live_stream_is_a_hole_up_to_the_record_after_it() -> None:
    holes = find_holes([_m(10), _m(11), _m(40), _m(41)], {("t", 0): 10}.get)
    assert holes == [Hole("t", 0, range(12, 40), at=2)]


def test_a_partition_just_begun_is_compared_with_its_checkpoint() -> None:
    assert find_holes([_m(30)], {("t", 0): 25}.get) == [Hole("t", 0, range(25, 30), at=0)]
    assert find_holes([_m(30)], {}.get) == []  # no checkpoint: nothing known to be missing


def test_partitions_are_followed_apart() -> None:
    batch = [_m(5, partition=0), _m(0, partition=1), _m(6, partition=0), _m(2, partition=1)]
    assert find_holes(batch, {("t", 0): 5, ("t", 1): 0}.get) == [Hole("t", 1, range(1, 2), at=3)]


def test_spliced_records_go_just_before_the_record_that_revealed_their_hole() -> None:
    batch = [_m(1, partition=1), _m(12), _m(2, partition=1), _m(40)]
    spliced = splice(batch, {Hole("t", 0, range(13, 40), at=3): [_m(o) for o in range(13, 40)]})
    assert [(m.partition, m.offset) for m in spliced] == [
        (1, 1), (0, 12), (1, 2), *[(0, o) for o in range(13, 41)]]


@given(log_size=st.integers(1, 200), checkpoint=st.integers(0, 50), data=st.data())
def test_whatever_the_live_stream_skips_or_repeats_the_state_takes_every_offset_from_its_checkpoint(
        log_size: int, checkpoint: int, data: st.DataObject) -> None:
    checkpoint = min(checkpoint, log_size - 1)
    # the live stream: a start anywhere, then forward with skips and the odd step back
    offset = data.draw(st.integers(0, log_size - 1), label="live start")
    delivered = [offset]
    for step in data.draw(st.lists(st.integers(-3, 6), max_size=80), label="steps"):
        offset = min(log_size - 1, max(0, offset + step))
        delivered.append(offset)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(delivered) - 1)))))
    bounds = zip([0, *cuts], [*cuts, len(delivered)], strict=True)
    batches = [delivered[a:b] for a, b in bounds if delivered[a:b]]
    positions: dict[tuple[str, int], int] = {}
    taken: list[int] = []
    read_from_broker: list[int] = []
    for batch in batches:
        msgs = [_m(o) for o in batch]
        holes = find_holes(msgs, lambda tp: max(positions.get(tp, checkpoint), checkpoint))
        filled = {h: [_m(o) for o in h.offsets] for h in holes}
        read_from_broker += [o for h in holes for o in h.offsets]
        for msg in splice(msgs, filled):
            taken.append(msg.offset)
            positions[("t", 0)] = msg.offset + 1
    assert set(range(checkpoint, max(delivered) + 1)) <= set(taken), "no offset skipped"
    assert all(o >= checkpoint for o in read_from_broker), "nothing the state holds is read again"
