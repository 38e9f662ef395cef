"""A worker in a child process: start it, wait until it is ready, stop or kill it.

The demo, the benchmark and the integration tests all run workers this way, because a
worker owns its event loop and its signal handlers, and because a crash test needs a
process it can ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from agents.broker import die_with_parent, free_port
from agents.connection import KafkaConnection


def fetch_status(port: int) -> dict[str, Any] | None:
    """The status page of the worker whose web server listens on ``port``; None if silent."""
    url = f"http://127.0.0.1:{port}/assetwatch/status/"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:  # loopback only
            result: dict[str, Any] = orjson.loads(resp.read())
            return result
    except (OSError, ValueError):
        return None


class WorkerProcess:
    """``assetwatch worker`` as a child process with a known web port."""

    def __init__(
        self,
        kafka: KafkaConnection,
        inferences: Path,
        models: Path,
        app_id: str,
        topic_prefix: str,
        partitions: int,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
    ) -> None:
        self.web_port = free_port()
        self.args = [
            sys.executable, "-m", "agents.cli", "worker", "--broker", kafka.bootstrap,
            "--inferences", str(inferences), "--models", str(models), "--app-id", app_id,
            "--topic-prefix", topic_prefix, "--partitions", str(partitions),
            "--web-port", str(self.web_port), *extra_args,
        ]
        self.log_path = log_path
        self.kafka_env = kafka.env()  # client properties reach the child as ASSETWATCH_KAFKA_*
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> WorkerProcess:
        if self.proc is not None and self.proc.poll() is None:  # a second start leaked the first
            raise RuntimeError("this worker process is already running")
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
            env={**os.environ, **self.kafka_env, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def status(self) -> dict[str, Any] | None:
        """The worker's status page, or None while it does not answer."""
        return fetch_status(self.web_port)

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Block until the worker reports ready (tables recovered), or raise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"worker exited (code {code}) before it was ready{self._tail()}")
            st = self.status()
            if st and st.get("ready"):
                return st
            time.sleep(0.1)  # polling interval of a deadline-bounded wait
        raise TimeoutError(f"worker not ready within {timeout_s:.0f} s{self._tail()}")

    def _tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return ":\n" + self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """Graceful stop (SIGTERM): the worker commits its offsets and flushes its producer."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_log()
        return proc.returncode

    def kill(self) -> None:
        """Crash the worker (SIGKILL): nothing flushed, nothing committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
