"""A local S3 server for the embedded broker's ``s3://`` storage: gofakes3, built once with Go.

The embedded broker (Tansu) keeps topics and offsets across a restart only on object storage.
The first local S3 server tried, moto (Python), answers a small GET in ~4 ms and a listing in
~30 ms: Tansu then reads about 100 record batches a second, fewer than a worker writes, and a
pipeline on it never catches up (docs/reliability.md). gofakes3 (Go, in-memory backend, MIT)
reads ~3,000 batches a second on this machine, so the broker, not the S3 server, sets the pace.

``python -m benchmarks.local_s3 resolve`` builds it into ``~/.cache/assetwatch/bin`` with the
machine's Go (``go install``, from the Go module proxy); ``.ci/run`` does that. Without Go,
:func:`gofakes3_binary` returns ``None`` and the chaos test on it skips (its Apache Kafka
sibling runs).

>>> from benchmarks.local_s3 import GOFAKES3
>>> GOFAKES3.split("@")[0]
'github.com/johannesboyne/gofakes3/cmd/gofakes3'
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from agents.broker import BrokerError, die_with_parent, free_port, kill_process

#: the module and version ``go install`` builds (the newest the Go module proxy serves here)
GOFAKES3 = "github.com/johannesboyne/gofakes3/cmd/gofakes3@v1.2.0"


def _bin_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "assetwatch" / "bin"


def gofakes3_binary(build: bool = True) -> Path | None:
    """The gofakes3 executable, built with ``go install`` first if it is missing and
    ``build``; ``None`` if it cannot be had (no Go, or ``build`` off)."""
    binary = _bin_dir() / "gofakes3"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if not build or go is None:
        return None
    _bin_dir().mkdir(parents=True, exist_ok=True)
    done = subprocess.run([go, "install", GOFAKES3], env={**os.environ, "GOBIN": str(_bin_dir())},
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not binary.exists():
        raise BrokerError(f"go install {GOFAKES3} failed: {done.stderr.strip()[-300:]}")
    return binary


class LocalS3:
    """A gofakes3 server on a free 127.0.0.1 port, its objects in memory for its lifetime,
    with one bucket; :meth:`broker_env` is what Tansu needs to use it."""

    def __init__(self, binary: Path, bucket: str = "tansu", ready_timeout_s: float = 15.0) -> None:
        self.binary = binary
        self.bucket = bucket
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalS3:
        self._proc = subprocess.Popen(
            [str(self.binary), "-backend", "memory", "-host", f"127.0.0.1:{self.port}",
             "-initialbucket", self.bucket],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"gofakes3 exited with code {self._proc.returncode}")
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
                return self
            except urllib.error.HTTPError:  # it answers (with an S3 error document): ready
                return self
            except OSError:
                time.sleep(0.05)  # polling interval of a deadline-bounded wait
        self.stop()
        raise BrokerError(f"gofakes3 did not answer at {self.endpoint} within "
                          f"{self.ready_timeout_s:.0f} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        kill_process(proc, timeout_s=5)

    def broker_env(self) -> dict[str, str]:
        """The environment of a Tansu broker with ``--storage-engine s3://<bucket>/`` here."""
        return {"AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_REGION": "us-east-1"}

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.local_s3 resolve``: build gofakes3 if it is missing (for CI)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.local_s3")
    ap.add_argument("action", choices=["resolve"])
    ap.parse_args(argv)
    try:
        binary = gofakes3_binary()
    except BrokerError as exc:
        print(f"error: {exc}")
        return 1
    if binary is None:
        print("error: gofakes3 is not built and Go (go) is not on PATH")
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
