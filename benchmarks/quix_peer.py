"""The quix-streams peer of the benchmark: what a user would write with quix-streams and River.

Per reading: the asset's last 16 readings in quix-streams' RocksDB state (a state write per
reading, changelogged, as the naive Faust peer's table write), a River MinMaxScaler →
HalfSpaceTrees per asset (10 trees, height 6, window 50; score, then learn) held in memory,
and an output record per anomaly (score > 0.95). Messages carry one or many readings of one
asset, keyed by its id (``{"readings": [...]}`` or a single reading).

It runs in its own virtual environment (quix-streams pins an older confluent-kafka than
assetwatch's), so it imports nothing of the project. Progress goes to a small JSON file
(``{"counts": {"received": N}}``) written by a thread every 50 ms, which the benchmark polls.

Run: ``.venv-peers/bin/python benchmarks/quix_peer.py BOOTSTRAP TOPIC OUT_TOPIC GROUP STATE_DIR STATUS_FILE``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from quixstreams import Application
from river import anomaly, preprocessing


def main() -> None:
    bootstrap, topic, out_topic, group, state_dir, status_file = sys.argv[1:7]
    counts = {"received": 0}
    app = Application(broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest",
                      state_dir=state_dir, loglevel="WARNING")
    source = app.topic(topic, key_deserializer="str", value_deserializer="json")
    out = app.topic(out_topic, key_serializer="str", value_serializer="json")
    models: dict[str, Any] = {}

    def score(value: dict[str, Any], state: Any) -> list[dict[str, Any]]:
        anomalies = []
        for r in value.get("readings", [value]):
            asset = r["asset_id"]
            window = state.get("window", [])
            window = [*window, r["signals"]][-16:]
            state.set("window", window)
            model = models.get(asset)
            if model is None:
                model = models[asset] = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
                    n_trees=10, height=6, window_size=50, seed=1)
            s = model.score_one(r["signals"])
            model.learn_one(r["signals"])
            counts["received"] += 1
            if s > 0.95:
                anomalies.append({"asset_id": asset, "ts": r["ts"], "score": s})
        return anomalies

    sdf = app.dataframe(source)
    sdf = sdf.apply(score, stateful=True, expand=True)
    sdf.to_topic(out)

    def report() -> None:
        tmp = status_file + ".tmp"
        while True:
            with open(tmp, "w") as f:
                json.dump({"counts": dict(counts)}, f)
            os.replace(tmp, status_file)
            time.sleep(0.05)  # the reporting cadence of a progress file, not synchronisation

    threading.Thread(target=report, daemon=True).start()
    app.run()


if __name__ == "__main__":
    main()
