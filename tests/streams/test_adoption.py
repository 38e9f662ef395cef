"""A lasting steady change becomes the new normal, visibly and boundedly; a fault never does.

Specifications of streams/adoption.py through the scorer (``AssetScorer.process``), on one
signal of unit noise and a model trained on it (window 8)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from streams.adoption import AdoptionWatch
from streams.decision import FlagPolicy
from streams.inference import InferenceConfig
from streams.model import Model, ModelParams, fit_model, parse_model
from streams.records import Reading
from streams.scoring import AssetScorer, Outcome
from streams.state_format import ASSET_STATE

S = 1_000
ADOPT = 40


def model(adopt_points: int = ADOPT, algorithm: str = "mahalanobis") -> Model:
    rows = np.random.default_rng(0).normal(size=(800, 1))
    return fit_model(rows, ModelParams(model_id="m", signals=("v",), window_size=8,
                                       algorithm=algorithm,
                                       flags=FlagPolicy(adopt_points=adopt_points)))


def noise(n: int, seed: int = 1) -> list[float]:
    return np.random.default_rng(seed).normal(size=n).tolist()


def score(values: list[float], m: Model | None = None, sensitivity: int = 70) -> list[Outcome]:
    scorer = AssetScorer(InferenceConfig("i", "m", "t", sensitivity=sensitivity), m or model())
    state = scorer.new_state()
    return [scorer.process(state, Reading("a", t * S, {"v": v})) for t, v in enumerate(values)]


def flagged(outcomes: list[Outcome]) -> list[int]:
    return [t for t, o in enumerate(outcomes) if o.anomaly is not None]


def adoptions(outcomes: list[Outcome]) -> list[tuple[int, str]]:
    return [(t, o.adoption.to_dict(("v",))["kind"]) for t, o in enumerate(outcomes)
            if o.adoption is not None]


SHIFTED = [*noise(50), *(v + 10.0 for v in noise(300, seed=2))]


def test_without_adoption_a_level_shift_is_flagged_to_the_end() -> None:
    out = score(SHIFTED, model(adopt_points=0))
    assert len([t for t in flagged(out) if t >= 50]) > 290
    assert adoptions(out) == []


def test_a_lasting_level_shift_is_adopted_once_and_flagged_no_more() -> None:
    out = score(SHIFTED)
    [(at, kind)] = adoptions(out)
    assert kind == "regime_adopted"
    assert 50 + ADOPT - 1 <= at < 50 + 3 * ADOPT  # bounded: within a few checks of its start
    assert all(t <= at for t in flagged(out))  # before it: a fault like any other
    event = out[at].adoption.to_dict(("v",))  # type: ignore[union-attr]
    assert event["expected_before"]["v"] == pytest.approx(0.0, abs=0.2)
    assert event["expected_after"]["v"] == pytest.approx(10.0, abs=0.5)


def test_a_fault_shorter_than_adopt_points_is_never_learnt() -> None:
    values = [*noise(50), *(v + 10.0 for v in noise(ADOPT - 2, seed=2)), *noise(60, seed=3)]
    out = score(values)
    assert adoptions(out) == []
    assert set(range(50, 50 + ADOPT - 2)) <= set(flagged(out))


@pytest.mark.parametrize("fault", ["drift", "stuck", "noise_burst"])
def test_a_lasting_fault_that_is_no_steady_level_is_not_adopted(fault: str) -> None:
    n = 4 * ADOPT
    body = {
        "drift": [v + 0.15 * i for i, v in enumerate(noise(n, seed=2))],
        "stuck": [1.234] * n,
        "noise_burst": [12.0 * v for v in noise(n, seed=2)],
    }[fault]
    out = score([*noise(50), *body])
    assert adoptions(out) == []
    assert len([t for t in flagged(out) if t >= 50]) > n // 3  # it goes on being flagged


def test_after_an_adopted_fault_ends_the_asset_returns_to_its_trained_level() -> None:
    values = [*SHIFTED[:50 + 2 * ADOPT], *noise(200, seed=4)]
    out = score(values)
    kinds = adoptions(out)
    assert [k for _, k in kinds] == ["regime_adopted", "regime_restored"]
    back = 50 + 2 * ADOPT
    assert kinds[1][0] < back + 3 * 8  # within a few windows of its return
    assert all(t < kinds[1][0] + 1 for t in flagged(out) if t >= back)


def test_a_higher_sensitivity_still_flags_a_superset() -> None:
    values = [*SHIFTED, *noise(100, seed=5), *(v + 3.0 for v in noise(200, seed=6))]
    by_sensitivity = [set(flagged(score(values, sensitivity=s))) for s in (50, 70, 90)]
    assert by_sensitivity[0] <= by_sensitivity[1] <= by_sensitivity[2]
    # the same scores for every sensitivity: adoption does not depend on it
    assert adoptions(score(values, sensitivity=50)) == adoptions(score(values, sensitivity=90))


def test_the_episode_and_the_adopted_level_survive_a_restore() -> None:
    scorer = AssetScorer(InferenceConfig("i", "m", "t"), model())
    state = scorer.new_state()
    outs = [scorer.process(state, Reading("a", t * S, {"v": v})) for t, v in enumerate(SHIFTED)]
    at = adoptions(outs)[0][0]
    restored = scorer.restore(orjson.loads(orjson.dumps(state.snapshot())))
    assert restored.watch.adopted
    assert restored.detector.expected() == state.detector.expected()  # type: ignore[attr-defined]
    assert at < len(SHIFTED)
    # mid-episode: the watch's count goes on after a restore
    state = scorer.new_state()
    for t, v in enumerate(SHIFTED[:70]):
        scorer.process(state, Reading("a", t * S, {"v": v}))
    assert scorer.restore(state.snapshot()).watch == state.watch
    assert state.watch.points > 0


def test_state_written_before_adoption_reads_as_no_episode() -> None:
    scorer = AssetScorer(InferenceConfig("i", "m", "t"), model())
    state = scorer.new_state()
    snap = state.snapshot()
    del snap["adoption"]
    assert scorer.restore(ASSET_STATE.migrated(snap)).watch == AdoptionWatch()


def test_adopt_points_is_part_of_the_model_artifact_and_older_artifacts_never_adopt() -> None:
    m = model(adopt_points=64)
    assert parse_model(orjson.dumps(m.to_dict())).flags.adopt_points == 64
    d = m.to_dict()
    d["flags"].pop("adopt_points")
    assert parse_model(orjson.dumps(d)).flags.adopt_points == 0
    assert "adopt_points" not in model(adopt_points=0).to_dict()["flags"]


def test_a_river_model_has_no_level_to_move_and_is_never_adopted() -> None:
    out = score(SHIFTED, model(algorithm="river"))
    assert adoptions(out) == []


def test_the_event_is_a_valid_status_record() -> None:
    from schemas import validator

    out = score([*SHIFTED[:50 + 2 * ADOPT], *noise(200, seed=4)])
    records = [o.adoption.record("i", "pump-1", ("v",), 123) for o in out if o.adoption]
    assert [r["kind"] for r in records] == ["regime_adopted", "regime_restored"]
    for r in records:
        assert validator("status-event.v1")(r) == r


def test_a_batch_job_reports_each_anomalys_expected_values_from_the_detector_that_scored_it(
) -> None:
    """A level adopted mid-chunk must not rewrite the expected values of the chunk's earlier
    anomalies: one chunk (numpy path) reports what point-by-point scoring reports."""
    from streams.batch import BatchScorer

    readings = [Reading("a", t * S, {"v": v}) for t, v in enumerate(SHIFTED)]
    m = model()
    assert adoptions(score(SHIFTED, m)), "the shift is adopted within the series"
    one_chunk = BatchScorer(m, 70)
    whole = one_chunk.feed(readings) + one_chunk.finish()
    by_point = BatchScorer(m, 70)
    single = [d for r in readings for d in by_point.feed([r])] + by_point.finish()
    assert [d.ts_ms for d in whole] == [d.ts_ms for d in single] and whole
    before = [d.expected for d in whole if d.ts_ms < 60 * S]
    assert before and all(e is not None and abs(e["v"]) < 1.0 for e in before), before
    assert [d.expected and d.expected["v"] for d in whole] == \
        pytest.approx([d.expected and d.expected["v"] for d in single])
    after = [d.expected for d in whole if d.ts_ms > 200 * S]
    assert not after or all(e is not None and e["v"] > 5 for e in after), "the adopted level"
