"""Every edge ends in a result or a refusal with a reason, whatever bytes come in.

The committed corpus (fuzz/corpus/, grown by atheris) and each target's seeds are replayed;
Hypothesis adds structure-aware inputs (JSON documents, seeds with a field changed), which
coverage-guided byte mutation rarely reaches; and each target runs briefly under atheris,
the short form of ``python -m fuzz.run`` (docs/reliability.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"
REPO = Path(__file__).resolve().parents[1]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


def corpus_inputs() -> list[Any]:
    cases = [pytest.param(name, seed, id=f"{name}-seed{i}")
             for name, t in TARGETS.items() for i, seed in enumerate(t.seeds)]
    for folder in sorted(CORPUS.iterdir()) if CORPUS.is_dir() else []:
        cases += [pytest.param(folder.name, f.read_bytes(), id=f"{folder.name}-{f.name[:10]}")
                  for f in sorted(folder.iterdir())]
    return cases


@pytest.mark.parametrize(("target", "data"), corpus_inputs())
def test_corpus_input_ends_in_a_result_or_a_reasoned_refusal(target: str, data: bytes) -> None:
    TARGETS[target].run(data)


def test_the_committed_corpus_covers_every_target() -> None:
    assert {p.name for p in CORPUS.iterdir()} == set(TARGETS)
    assert all(len(list((CORPUS / name).iterdir())) >= 3 for name in TARGETS)


@pytest.mark.parametrize("target", list(TARGETS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values)
def test_any_json_document(target: str, doc: Any) -> None:
    TARGETS[target].run(json.dumps(doc).encode())  # json: integers beyond 64 bits too


@pytest.mark.parametrize("target", list(TARGETS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_seed_with_one_field_changed(target: str, data: st.DataObject) -> None:
    seeds = [orjson.loads(s) for s in TARGETS[target].seeds if _is_json(s)]
    seed = data.draw(st.sampled_from(seeds))
    node = seed
    while isinstance(node, dict) and node:  # walk down to a random field, then replace it
        key = data.draw(st.sampled_from(sorted(node)))
        if not isinstance(node[key], dict | list) or data.draw(st.booleans()):
            node[key] = data.draw(json_values)
            break
        child = node[key]
        first = child[0] if isinstance(child, list) and child else {}
        node = child if isinstance(child, dict) else first if isinstance(first, dict) else {}
    TARGETS[target].run(json.dumps(seed).encode())


def _is_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


def test_a_short_coverage_guided_run_of_every_target_finds_nothing(tmp_path: Path) -> None:
    pytest.importorskip("atheris")  # the test extra installs it; docs/reliability.md
    proc = subprocess.run([sys.executable, "-m", "fuzz.run", "--seconds", "4",
                           "--artifacts", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "target" not in line]
    assert len(rows) == len(TARGETS) and all("no finding" in r for r in rows)
    assert all(int(r.split("|")[3]) > 1000 for r in rows)  # executions: it really ran
