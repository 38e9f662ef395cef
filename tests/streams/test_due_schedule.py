"""The due schedule: each key at most once, due keys popped in time order per clock domain."""

from __future__ import annotations

from streams.due_schedule import NOW, DueSchedule


def test_only_keys_due_on_their_own_domains_clock_are_popped_earliest_first() -> None:
    due = DueSchedule()
    due.set("a", "wall", 30)
    due.set("b", "wall", 10)
    due.set("c", ("tele", 0), 5)
    assert due.pop_due("wall", 29) == ["b"]
    assert due.pop_due("wall", 100) == ["a"]
    assert due.pop_due(("tele", 0), 4) == []
    assert due.pop_due(("tele", 0), 5) == ["c"]
    assert len(due) == 0


def test_rescheduling_replaces_the_earlier_time_and_none_unschedules() -> None:
    due = DueSchedule()
    due.set("a", "wall", 10)
    due.set("a", "wall", 50)
    assert due.pop_due("wall", 20) == [] and due.when("a") == 50
    due.set("a", "wall", None)
    assert due.pop_due("wall", 100) == [] and due.when("a") is None


def test_moving_a_key_to_another_domain_leaves_no_entry_behind() -> None:
    due = DueSchedule()
    due.set("a", "wall", 10)
    due.set("a", ("tele", 1), 10)
    assert due.pop_due("wall", 10) == []
    assert due.pop_due(("tele", 1), 10) == ["a"]


def test_now_is_due_at_any_clock_reading_and_discard_forgets() -> None:
    due = DueSchedule()
    due.set("a", "wall", NOW)
    due.set("b", "wall", NOW)
    due.discard("b")
    assert due.pop_due("wall", -(2**62)) == ["a"]


def test_many_reschedules_keep_the_heap_bounded_and_the_answers_right() -> None:
    due = DueSchedule()
    for t in range(20_000):
        due.set(f"k{t % 10}", "wall", t)
    assert due._size <= 3 * len(due) + 1024  # stale entries are compacted away
    assert sorted(due.pop_due("wall", 10**9)) == [f"k{i}" for i in range(10)]
