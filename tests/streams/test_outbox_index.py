"""The outbox index: a delivery tick visits only the entries that are due."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.outbox_index import OutboxIndex


def test_a_tick_over_ten_thousand_idle_entries_and_one_due_pops_only_the_due_one() -> None:
    index = OutboxIndex()
    for i in range(10_000):
        index.set(f"done-{i}", partition=i % 8, at_ms=86_400_000 + i, pending=False)
    index.set("due", partition=3, at_ms=500, pending=True)
    assert index.pop_due(1_000, owned=range(8)) == ["due"]
    assert len(index._heap) == 10_000  # the idle ones were not visited, only left in place


def test_rewriting_an_entry_supersedes_its_earlier_due_time() -> None:
    index = OutboxIndex()
    index.set("k", 0, at_ms=100, pending=True)
    index.set("k", 0, at_ms=5_000, pending=True)  # an attempt failed: next one later
    assert index.pop_due(1_000, {0}) == []
    assert index.pop_due(5_000, {0}) == ["k"]
    assert index.pending == 1


def test_a_key_removed_and_written_again_is_due_only_at_its_new_time() -> None:
    index = OutboxIndex()
    index.set("k", 0, at_ms=100, pending=True)
    index.remove("k")
    index.set("k", 0, at_ms=5_000, pending=True)
    assert index.pop_due(1_000, {0}) == []


def test_pending_counts_follow_outcomes_and_removals() -> None:
    index = OutboxIndex()
    index.set("a", 0, 10, pending=True)
    index.set("b", 0, 10, pending=True)
    index.set("a", 0, 99_999, pending=False)  # delivered: kept until it expires
    index.remove("b")
    assert (len(index), index.pending) == (1, 0)


def test_entries_of_partitions_not_owned_are_not_handed_out_and_can_be_forgotten() -> None:
    index = OutboxIndex()
    index.set("mine", 0, 1, pending=True)
    index.set("theirs", 1, 1, pending=True)
    assert index.pop_due(10, owned={0}) == ["mine"]
    index.forget_partitions({1})
    assert (len(index), index.pending) == (1, 1)


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 1_000), st.booleans()), max_size=80),
       st.integers(0, 1_000))
def test_pop_due_returns_exactly_the_latest_written_entries_that_are_due(
        writes: list[tuple[int, int, bool]], now: int) -> None:
    index = OutboxIndex()
    latest: dict[str, tuple[int, bool]] = {}
    for k, at, pending in writes:
        index.set(f"k{k}", 0, at, pending)
        latest[f"k{k}"] = (at, pending)
    due = index.pop_due(now, {0})
    assert sorted(due) == sorted(k for k, (at, _) in latest.items() if at <= now)
    assert [latest[k][0] for k in due] == sorted(latest[k][0] for k in due)  # earliest first
    assert index.pending == sum(p for _, p in latest.values())
