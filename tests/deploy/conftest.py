"""Deploy fixtures: a real Prometheus server (the ``prometheus`` binary), and pipeline cleanup."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from agents.broker import die_with_parent, free_port
from tests.integration import harness

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


@pytest.fixture(autouse=True)
def _close_pipelines() -> Iterator[None]:
    yield
    while harness.OPEN:
        harness.OPEN.pop().close()


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The ``prometheus`` server binary; the test is skipped, saying how to get it, without it."""
    found = shutil.which("prometheus")
    if found is None:
        pytest.skip("no prometheus binary on PATH (apt-get install -y prometheus; .ci/run does "
                    "it when run as root)")
    return found


@dataclass
class Prometheus:
    """A Prometheus server on 127.0.0.1 and its HTTP API."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: str) -> Any:
        """``data`` of an API answer (``/api/v1/...``); raises on an error status."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=5) as resp:
            body = orjson.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query evaluated now."""
        data = self.api("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, what: str, check: Callable[[], Any], timeout_s: float = 30) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                last = check()
            except (OSError, ValueError, AssertionError) as exc:
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(0.2)  # polling interval of a deadline-bounded wait
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def scrape_config_for(targets: list[str], interval: str = "1s") -> dict[str, Any]:
    """``deploy/prometheus/prometheus.yml`` with its worker job pointed at ``targets``
    (instead of the compose service's DNS name) and a short scrape interval."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": interval, "evaluation_interval": interval,
                        "scrape_timeout": interval}
    workers = next(j for j in config["scrape_configs"] if "dns_sd_configs" in j)
    del workers["dns_sd_configs"]
    workers["static_configs"] = [{"targets": targets}]
    config["scrape_configs"] = [workers]
    return config


@pytest.fixture
def start_prometheus(
    prometheus_binary: str, tmp_path: Path
) -> Iterator[Callable[[dict[str, Any]], Prometheus]]:
    """Start Prometheus with a given configuration; stopped after the test."""
    started: list[Prometheus] = []

    def start(config: dict[str, Any]) -> Prometheus:
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(config))
        log = tmp_path / "prometheus.log"
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [prometheus_binary, f"--config.file={cfg}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        prom = Prometheus(f"http://127.0.0.1:{port}", proc, log)
        started.append(prom)

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=1) as resp:
                    return resp.status == 200
            except (urllib.error.URLError, OSError):
                return False

        prom.wait_for("prometheus to be ready", ready, 30)
        return prom

    yield start
    for prom in started:
        prom.proc.terminate()
        try:
            prom.proc.wait(10)
        except subprocess.TimeoutExpired:
            prom.proc.kill()
            prom.proc.wait()
