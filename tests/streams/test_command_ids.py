"""The controller remembers command ids for a week, and at most the newest 100,000."""

from __future__ import annotations

from streams.command_ids import COMMAND_ID_RETENTION_MS, MAX_COMMAND_IDS, forgotten_commands

NOW = 1_767_225_600_000


def results(*ages_ms: int) -> dict[str, object]:
    return {f"command/c{i}": {"kind": "command_result", "at": NOW - age}
            for i, age in enumerate(ages_ms)}


def test_ids_older_than_the_retention_are_forgotten_and_newer_ones_kept() -> None:
    table = results(COMMAND_ID_RETENTION_MS + 1, COMMAND_ID_RETENTION_MS, 0)
    assert forgotten_commands(table, NOW) == ["command/c0"]


def test_beyond_the_most_kept_the_oldest_go_first() -> None:
    table = results(*range(10))
    assert forgotten_commands(table, NOW, max_kept=7) == ["command/c7", "command/c8", "command/c9"]
    assert MAX_COMMAND_IDS == 100_000


def test_other_state_of_the_table_is_never_forgotten() -> None:
    table = {"inference/i": {"at": 0}, "replay/i": {"at": 0}, "late/i": {"pending": []},
             **results(COMMAND_ID_RETENTION_MS * 2)}
    assert forgotten_commands(table, NOW) == ["command/c0"]


def test_a_result_with_no_readable_time_counts_as_oldest() -> None:
    table = {"command/odd": {"at": "yesterday"}, "command/none": None, **results(0)}
    assert forgotten_commands(table, NOW) == ["command/none", "command/odd"]
    assert forgotten_commands(table, NOW, max_kept=2) == ["command/none", "command/odd"]
