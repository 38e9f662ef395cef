"""Fixtures shared by the engine's tests."""

from __future__ import annotations

import pytest

from streams.model import Model, ModelParams, fit_model
from streams.simulate import SIGNALS, training_rows


@pytest.fixture(scope="module")
def model() -> Model:
    """A small pump model (window 8) fitted on generated healthy readings; a module may define
    its own ``model`` instead."""
    return fit_model(training_rows(2, 1500, seed=3),
                     ModelParams(model_id="m", signals=SIGNALS, window_size=8))
