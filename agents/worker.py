"""Build and run a worker: inferences + models → engine → Faust app → Faust worker."""

from __future__ import annotations

from pathlib import Path

import faust
import orjson
from faust.worker import Worker

from agents.app import create_app
from agents.broker import ensure_topics
from agents.model_store import ModelStore
from agents.scoring_agent import PipelineStats, register_scoring_agent
from agents.settings import Settings
from agents.topics import topic_specs
from streams.engine import Engine
from streams.inference import InferenceConfig
from streams.scoring import AssetScorer


class ConfigError(ValueError):
    """The worker's configuration is unusable; the message says why."""


def load_inferences(path: Path) -> list[InferenceConfig]:
    """Read a JSON file holding one inference object or a list of them."""
    try:
        raw = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"inference file not found: {path}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"inference file {path} is not JSON: {exc}") from exc
    items = raw if isinstance(raw, list) else [raw]
    try:
        configs = [InferenceConfig.from_dict(d) for d in items]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"inference file {path}: {exc}") from exc
    ids = [c.inference_id for c in configs]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"inference file {path}: duplicate inference ids")
    return configs


def build_engine(settings: Settings, inferences: list[InferenceConfig]) -> Engine:
    store = ModelStore(settings.models_dir)
    scorers = [AssetScorer(cfg, store.load(cfg.model_id)) for cfg in inferences]
    return Engine(scorers, load=lambda key: None, partitions=settings.partitions)


def build_worker_app(settings: Settings, bootstrap: str) -> tuple[faust.App, PipelineStats]:
    if settings.inferences_file is None:
        raise ConfigError("no inferences configured: pass --inferences FILE")
    inferences = load_inferences(settings.inferences_file)
    engine = build_engine(settings, inferences)
    ensure_topics(bootstrap, topic_specs(settings, engine.topics))
    app = create_app(settings, bootstrap)
    stats = PipelineStats()
    register_scoring_agent(app, settings, engine, stats)
    return app, stats


def run_worker(settings: Settings, bootstrap: str) -> None:
    """Run a worker in this process until SIGINT/SIGTERM (graceful: state flushed, offsets committed)."""
    app, _ = build_worker_app(settings, bootstrap)
    worker = Worker(app, loglevel=settings.loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
