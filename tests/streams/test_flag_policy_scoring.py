"""A model's flag policy in the scorer: one fault, one run; a blip below the minimum duration
is no anomaly; the run survives a restart; older models and states read as before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from streams.decision import FlagPolicy
from streams.inference import InferenceConfig
from streams.model import Model, ModelParams, fit_model, parse_model
from streams.records import Reading
from streams.scoring import AssetScorer

S = 1_000


def model(policy: FlagPolicy) -> Model:
    rows = np.random.default_rng(0).normal(size=(600, 1))
    return fit_model(rows, ModelParams(model_id="m", signals=("v",), window_size=8, flags=policy,
                                       algorithm="mahalanobis"))


def flagged(policy: FlagPolicy, values: list[float]) -> list[int]:
    scorer = AssetScorer(InferenceConfig("i", "m", "t"), model(policy))
    state = scorer.new_state()
    out = [scorer.process(state, Reading("a", t * S, {"v": v})) for t, v in enumerate(values)]
    return [t for t, o in enumerate(out) if o.anomaly is not None]


NOISE = np.random.default_rng(1).normal(scale=0.5, size=60).tolist()


def test_a_one_point_blip_is_not_flagged_under_a_minimum_duration_of_two() -> None:
    values = [*NOISE[:20], 25.0, *NOISE[21:40]]
    assert flagged(FlagPolicy(), values) == [20]
    assert flagged(FlagPolicy(enter_points=2), values) == []


def test_a_lasting_fault_is_flagged_from_its_second_point() -> None:
    values = [*NOISE[:20], 25.0, 25.0, 25.0, *NOISE[23:40]]
    assert flagged(FlagPolicy(), values) == [20, 21, 22]
    assert flagged(FlagPolicy(enter_points=2), values) == [21, 22]


def test_the_run_is_part_of_the_state_and_survives_a_restore() -> None:
    policy = FlagPolicy(enter_points=2)
    scorer = AssetScorer(InferenceConfig("i", "m", "t"), model(policy))
    state = scorer.new_state()
    for t, v in enumerate([*NOISE[:20], 25.0]):
        scorer.process(state, Reading("a", t * S, {"v": v}))
    restored = scorer.restore(state.snapshot())  # the streak of one is in the snapshot
    assert scorer.process(restored, Reading("a", 21 * S, {"v": 25.0})).anomaly is not None


def test_the_policy_is_part_of_the_model_artifact_and_older_artifacts_read_as_plain() -> None:
    m = model(FlagPolicy(enter_points=3, exit_margin=0.05))
    import orjson
    assert parse_model(orjson.dumps(m.to_dict())).flags == FlagPolicy(3, 0.05)
    old = {k: v for k, v in m.to_dict().items() if k != "flags"}
    assert parse_model(orjson.dumps(old)).flags == FlagPolicy()
    assert replace(m, flags=FlagPolicy()).flags.is_plain
