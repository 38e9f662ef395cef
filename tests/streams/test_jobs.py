"""Job states: the allowed moves, final states, results names, and the records' schemas."""

from __future__ import annotations

import pytest

import schemas
from streams.jobs import FINAL, JobSpec, JobState, Rejected, advance, input_name_of

SPEC = JobSpec("j1", "pumps", "s3://b/in/line-3.csv", "s3://b/out", sensitivity=80)


def moved(*steps: str) -> JobState | Rejected:
    st: JobState | Rejected = JobState.accepted(SPEC, 0)
    for i, to in enumerate(steps, start=1):
        assert isinstance(st, JobState)
        st = advance(st, to, i)
    return st


@pytest.mark.parametrize("final", sorted(FINAL))
def test_a_final_state_is_final(final: str) -> None:
    st = moved("InProgress", final)
    assert isinstance(st, JobState) and st.final
    for to in ("InProgress", "Canceled", "Succeeded"):
        assert advance(st, to, 99) == Rejected(f"job j1 is already {final}")


def test_a_queued_job_cannot_succeed_without_running() -> None:
    assert moved("Succeeded") == Rejected("job j1 cannot go from Accepted to Succeeded")
    assert isinstance(moved("Canceled"), JobState)  # a queued job can be canceled


def test_progress_and_a_new_attempt_stay_in_progress_without_repeating_history() -> None:
    st = moved("InProgress", "InProgress", "InProgress")
    assert isinstance(st, JobState)
    assert [s for s, _ in st.history] == ["Accepted", "InProgress"]


@pytest.mark.parametrize(("location", "name"), [
    ("s3://b/in/line-3.csv", "line-3"), ("/data/pump 7.json", "pump_7"), ("x", "x"), ("/d/.csv", "csv"),
])
def test_the_results_file_is_named_after_the_input(location: str, name: str) -> None:
    assert input_name_of(location) == name


def test_the_records_validate_against_their_schemas() -> None:
    final = moved("InProgress", "PartiallySucceeded")
    assert isinstance(final, JobState)
    schemas.validator("job-request.v1")(SPEC.to_dict())
    schemas.validator("job-status.v1")(final.to_record())
    assert JobState.from_record(final.to_record()) == final


@pytest.mark.parametrize(("change", "message"), [
    ({"job_id": "../x"}, "job id '../x'"), ({"sensitivity": 0}, "sensitivity must be between 1 and 100"),
    ({"output": ""}, "a job needs an output"), ({"name": "a/b"}, "name 'a/b'"),
])
def test_a_bad_spec_is_refused_with_its_reason(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        JobSpec.from_dict({**SPEC.to_dict(), **change})
