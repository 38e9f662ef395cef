"""Stored state across versions: every snapshot names its format; older formats are migrated
and read, newer ones refused with the reason (docs/schemas.md, "Evolution")."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.alert_publishing import AlertPublisher
from streams.codec import encode_telemetry
from streams.decision import FlagRun
from streams.delivery import Delivery
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.scoring import AssetScorer
from streams.state_format import ASSET_STATE, StateFormat, StateFormatError
from streams.state_store import StateStore
from tests.fixtures.state.make_fixture import T0, feed, run

FIXTURE = Path(__file__).parents[1] / "fixtures" / "state" / "asset-state.format1.json"


@pytest.fixture(scope="module")
def written_before() -> dict[str, Any]:
    """State as the code of 2026-12-03 wrote it (no format named), and what it published next."""
    fixture: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    assert all("format" not in snap for snap in fixture["table"].values())
    return fixture


def close(got: Any, expected: Any) -> bool:
    """Equal, floats to 1e-9 relative: the last bits of a score move with the CPU's numpy
    kernels (the fixture was written on another machine)."""
    if isinstance(got, float) and isinstance(expected, float):
        return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(got, list | tuple) and isinstance(expected, list | tuple):
        return len(got) == len(expected) and all(close(g, e) for g, e in zip(got, expected, strict=True))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(close(got[k], expected[k]) for k in got)
    return bool(got == expected)


def _engine(fixture: dict[str, Any], table: dict[str, Any]) -> Engine:
    cfg = InferenceConfig.from_dict(fixture["inference"])
    scorer = AssetScorer(cfg, Model.from_dict(fixture["model"]), fixture["epoch"])
    return Engine([scorer], load=table.get, partitions=1)


def test_state_written_before_formats_were_named_is_read_and_scores_on_as_it_did(
    written_before: dict[str, Any],
) -> None:
    table = copy.deepcopy(written_before["table"])
    rest = [r for r in feed() if r.ts_ms >= T0 + written_before["cut_points"] * 1_000]
    new_table, published = run(_engine(written_before, table), rest, wall_ms=T0 + 1_000)
    assert close(published, written_before["published_after"])
    assert any(p[0] == "anomaly" for p in published) and any(p[0] == "alert" for p in published)
    assert {snap["format"] for snap in new_table.values()} == {ASSET_STATE.current}
    assert table == written_before["table"], "the stored snapshot is read, not changed"


def test_the_oldest_snapshots_without_run_adoption_start_or_proofs_still_restore(
    written_before: dict[str, Any],
) -> None:
    snap = copy.deepcopy(written_before["table"]["inf/pump-a"])
    for part in ("run", "adoption", "start_ms"):
        del snap[part]
    snap["recent_anomalies"] = [r[:2] for r in snap.get("recent_anomalies", [])]
    cfg = InferenceConfig.from_dict(written_before["inference"])
    scorer = AssetScorer(cfg, Model.from_dict(written_before["model"]), written_before["epoch"])
    state = StateStore({"inf/pump-a": snap}.get, AlertPublisher()).get("inf/pump-a", 0, scorer)
    assert state.run == FlagRun() and state.start_ms == cfg.start_ms
    assert state.last_ts_ms == snap["last_ts_ms"] and state.scored == snap["scored"]


def test_state_of_a_newer_format_is_refused_naming_both_formats(
    written_before: dict[str, Any],
) -> None:
    snap = {**written_before["table"]["inf/pump-a"], "format": ASSET_STATE.current + 1}
    cfg = InferenceConfig.from_dict(written_before["inference"])
    scorer = AssetScorer(cfg, Model.from_dict(written_before["model"]), written_before["epoch"])
    with pytest.raises(StateFormatError, match=f"format {ASSET_STATE.current + 1} is newer than "
                       f"this worker reads \\({ASSET_STATE.current}\\)"):
        StateStore({"inf/pump-a": snap}.get, AlertPublisher()).get("inf/pump-a", 0, scorer)
    # a restart begins a new epoch: the newer state is not read, only where it stopped
    later = AssetScorer(cfg, scorer.model, written_before["epoch"] + 1)
    fresh = StateStore({"inf/pump-a": snap}.get, AlertPublisher()).get("inf/pump-a", 0, later)
    assert fresh.scored == 0 and fresh.start_ms == snap["last_ts_ms"] + 1


def test_a_newer_format_fails_its_inference_in_the_engine_not_the_worker(
    written_before: dict[str, Any],
) -> None:
    table = {k: {**v, "format": 99} for k, v in written_before["table"].items()}
    rest = [r for r in feed() if r.ts_ms >= T0 + written_before["cut_points"] * 1_000]
    engine = _engine(written_before, table)
    out = engine.process_batch([Message("tele", 0, 0, b"pump-a", encode_telemetry(rest[:1]))],
                               now_ms=T0)
    assert "asset state format 99 is newer" in out.failures["inf"]


@pytest.mark.parametrize("bad", [0, -1, "2", True, 1.5])
def test_a_format_that_is_not_a_positive_integer_is_refused(bad: object) -> None:
    with pytest.raises(StateFormatError, match="must be a positive integer"):
        ASSET_STATE.migrated({"format": bad})


def test_every_older_format_has_a_migration() -> None:
    with pytest.raises(ValueError, match="no migration from format"):
        StateFormat("x", 3, {1: lambda s: s})


@pytest.mark.parametrize("stored", [[1, 2], "x", None])
def test_a_stored_state_that_is_no_object_is_refused_with_the_reason(stored: object) -> None:
    with pytest.raises(StateFormatError, match="must be an object"):
        ASSET_STATE.migrated(stored)  # type: ignore[arg-type]


def test_a_hook_delivery_that_is_no_object_is_not_one_to_the_outbox() -> None:
    with pytest.raises(ValueError, match="hook delivery must be an object"):
        Delivery.restore([1, 2])  # type: ignore[arg-type]
