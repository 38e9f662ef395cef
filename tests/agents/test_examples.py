"""The runnable examples in the docstrings of the observability and CLI glue (``agents/`` is not
under ``--doctest-modules``'s test paths, so they are run here)."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from agents import cli_support, health, metrics, tail_cli


@pytest.mark.parametrize("module", [metrics, health, tail_cli, cli_support], ids=lambda m: m.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
