"""Baselines measured beside assetwatch in the same benchmark run, each as its own Faust worker.

* ``empty``: a Faust agent that does nothing with each message — Faust's per-message floor;
* ``naive``: the pipeline a user would write first — ``json.loads`` per message, a window list
  in a changelog-backed table written per message, a River HalfSpaceTrees per asset (10
  trees, height 6, window 50; score, then learn), an output record per anomaly.

Run: ``python -m benchmarks.baselines MODE BOOTSTRAP TOPIC PARTITIONS WEB_PORT APP_ID``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from typing import Any, cast

import faust
from river import anomaly, preprocessing

from agents.app import create_app
from agents.broker import connect
from agents.connection import KafkaConnection
from agents.settings import Settings
from agents.worker import faust_worker


def build(
    mode: str, kafka: KafkaConnection, topic: str, partitions: int, port: int, app_id: str
) -> faust.App:
    """The same app factory and settings as an assetwatch worker; only the agent differs."""
    settings = replace(Settings(), app_id=app_id, partitions=partitions, web_port=port)
    app = create_app(settings, kafka)
    source = app.topic(topic, key_serializer="raw", value_serializer="raw", partitions=partitions)
    counts = {"received": 0}

    @app.page("/assetwatch/status/")
    async def status(web: Any, request: Any) -> Any:
        # TableManagerT does not declare the recovery the TableManager has
        return web.json({"ready": cast(Any, app.tables).recovery.completed.is_set(),
                         "counts": counts})

    if mode == "empty":
        @app.agent(source)
        async def empty(stream: faust.StreamT) -> None:
            async for _ in stream:
                counts["received"] += 1
        return app

    windows = app.Table("naive-windows", default=list, partitions=partitions, key_type=str)
    out = app.topic(f"{topic}.naive-out", key_serializer="raw", value_serializer="raw",
                    partitions=partitions)
    models: dict[str, Any] = {}

    @app.agent(source)
    async def naive(stream: faust.StreamT) -> None:
        async for value in stream:
            msg = json.loads(value)
            readings = msg.get("readings", [msg])
            for r in readings:
                asset = r["asset_id"]
                window = windows[asset]
                window = ([*window, r["signals"]])[-16:]
                windows[asset] = window
                model = models.get(asset)
                if model is None:
                    model = models[asset] = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
                        n_trees=10, height=6, window_size=50, seed=1)
                score = model.score_one(r["signals"])
                model.learn_one(r["signals"])
                counts["received"] += 1
                if score > 0.95:
                    await out.send(key=asset.encode(), value=json.dumps({"score": score}).encode())
    return app


def main() -> None:
    mode, bootstrap, topic, partitions, port, app_id = sys.argv[1:7]
    kafka = connect(Settings.from_env(os.environ, broker=bootstrap))
    app = build(mode, kafka, topic, int(partitions), int(port), app_id)
    loglevel = os.environ.get("BENCH_LOGLEVEL", "warning")
    # the same worker as assetwatch's (no spinner: it puts the root logger at DEBUG)
    faust_worker(app, loglevel).execute_from_commandline()


if __name__ == "__main__":
    main()
