"""Where jobs read and write: local paths and S3-compatible object storage (boto3).

A location is a local path or ``s3://bucket/key``. S3 goes through boto3's default
configuration chain: credentials, region and endpoint come from the usual environment
variables (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL_S3`` for a non-AWS
server…) and config files; nothing of them is logged.

* :meth:`Storage.open_input` gives the input's size and a way to open it as a byte stream,
  read as it is consumed (bounded memory, whatever the size);
* :meth:`Storage.results_writer` writes a results file so that no half-written file is ever
  visible: a temporary file renamed into place (local), or a temporary local file uploaded
  whole at the end (S3: an object appears only once its upload completes).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["InputSource", "Location", "ResultsWriter", "Storage", "StorageError", "parse_location"]


class StorageError(RuntimeError):
    """An input cannot be read or an output written; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Location:
    """A local path (``bucket`` None) or an S3 object or prefix."""

    path: str
    bucket: str | None = None

    def __str__(self) -> str:
        return self.path if self.bucket is None else f"s3://{self.bucket}/{self.path}"

    def child(self, *parts: str) -> Location:
        if self.bucket is None:
            return Location(str(Path(self.path, *parts)))
        prefix = self.path.strip("/")
        return Location("/".join(p for p in (prefix, *parts) if p), self.bucket)


def parse_location(text: str) -> Location:
    """``s3://bucket/key`` or a local path.

    >>> parse_location("s3://data/in/x.csv"), str(parse_location("/tmp/a.csv"))
    (Location(path='in/x.csv', bucket='data'), '/tmp/a.csv')
    >>> parse_location("s3:///x")
    Traceback (most recent call last):
    ...
    agents.job_io.StorageError: 's3:///x' names no bucket (s3://bucket/key)
    """
    if text.startswith("s3://"):
        bucket, _, key = text[len("s3://"):].partition("/")
        if not bucket:
            raise StorageError(f"{text!r} names no bucket (s3://bucket/key)")
        return Location(key, bucket)
    if "://" in text:
        raise StorageError(f"{text!r}: only local paths and s3://bucket/key are supported")
    return Location(text)


class _Counting(io.RawIOBase):
    """A raw byte stream over ``read(n)``, counting what was read (for progress)."""

    def __init__(self, source: Any, counter: list[int]) -> None:
        self._source = source
        self._counter = counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._counter[0] += n
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._source.close()
        super().close()


@dataclass
class InputSource:
    """An input to read: its size (bytes) and how to open it (again) as a buffered stream."""

    location: Location
    size: int
    _open: Callable[[], Any]
    read_bytes: list[int]

    def open(self) -> IO[bytes]:
        """A fresh buffered stream from the start; bytes read count towards :attr:`done`."""
        return io.BufferedReader(_Counting(self._open(), self.read_bytes), buffer_size=1 << 20)

    @property
    def done(self) -> int:
        return self.read_bytes[0]

    @contextlib.contextmanager
    def seekable(self) -> Iterator[IO[bytes]]:
        """The input as a seekable file: a local file as it is; an object copied to a temporary
        file first (disk, not memory). The reader sets :attr:`done` from its position."""
        if self.location.bucket is None:
            with Path(self.location.path).open("rb") as fh:
                yield fh
            return
        with tempfile.TemporaryFile() as tmp:
            with self.open() as fh:
                shutil.copyfileobj(fh, tmp, 1 << 20)
            tmp.seek(0)
            self.read_bytes[0] = 0
            yield tmp


class ResultsWriter:
    """A results file being written: :meth:`commit` makes it visible whole, :meth:`discard`
    leaves nothing."""

    def __init__(self, target: Location, tmp: Path, upload: Callable[[Path], None] | None) -> None:
        self.target = target
        self._tmp = tmp
        self._upload = upload
        self.file: IO[bytes] = tmp.open("wb")

    def commit(self) -> str:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        try:
            if self._upload is None:
                os.replace(self._tmp, self.target.path)
            else:
                self._upload(self._tmp)
        finally:
            self._tmp.unlink(missing_ok=True)
        return str(self.target)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        self._tmp.unlink(missing_ok=True)


def _s3_reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code, message = err.get("Code", "?"), err.get("Message", "")
        if code in ("404", "NoSuchKey"):
            return "no such object (NoSuchKey)"
        return f"{code}: {message}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


class Storage:
    """Local files and S3 (a boto3 client made on first use)."""

    def __init__(self, s3_client: Callable[[], Any] | None = None) -> None:
        self._make_client = s3_client or _default_client
        self._client: Any = None

    @property
    def s3(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def open_input(self, location: Location) -> InputSource:
        counter = [0]
        if location.bucket is None:
            path = Path(location.path)
            try:
                size = path.stat().st_size
                if not path.is_file():
                    raise StorageError(f"cannot read {location}: not a file")
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise StorageError(f"cannot read {location}: {exc.strerror or exc}") from None
            return InputSource(location, size, lambda: path.open("rb"), counter)
        bucket, key = location.bucket, location.path
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            reason = _s3_reason(exc)
            if "no such object" in reason:  # HEAD says 404 for a missing bucket too: ask which
                try:
                    self.s3.head_bucket(Bucket=bucket)
                except Exception:
                    reason = f"no such bucket {bucket!r} (NoSuchBucket)"
            raise StorageError(f"cannot read {location}: {reason}") from None

        def get() -> Any:
            try:
                return self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            except Exception as exc:
                raise StorageError(f"cannot read {location}: {_s3_reason(exc)}") from None

        return InputSource(location, int(head["ContentLength"]), get, counter)

    def results_writer(self, output: Location, model_id: str, results_name: str,
                       job_id: str) -> ResultsWriter:
        """A writer of ``<output>/<model id>/<results name>``."""
        target = output.child(model_id, results_name)
        if output.bucket is None:
            folder = Path(target.path).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{results_name}.{job_id}.tmp"
                return ResultsWriter(target, tmp, None)
            except OSError as exc:
                raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None
        bucket, key = output.bucket, target.path
        try:
            self.s3.head_bucket(Bucket=bucket)
        except Exception as exc:
            raise StorageError(f"cannot write {target}: {_s3_reason(exc)}") from None
        fd, name = tempfile.mkstemp(prefix=f"assetwatch-{job_id}-", suffix=".json")
        os.close(fd)

        def upload(path: Path) -> None:
            try:
                self.s3.upload_file(str(path), bucket, key)
            except Exception as exc:
                raise StorageError(f"cannot write {target}: {_s3_reason(exc)}") from None

        return ResultsWriter(target, Path(name), upload)

    def delete(self, location: Location) -> None:
        """Remove a file or object if it is there."""
        if location.bucket is None:
            Path(location.path).unlink(missing_ok=True)
        else:
            with contextlib.suppress(Exception):
                self.s3.delete_object(Bucket=location.bucket, Key=location.path)

    def exists(self, location: Location) -> bool:
        if location.bucket is None:
            return Path(location.path).exists()
        try:
            self.s3.head_object(Bucket=location.bucket, Key=location.path)
        except Exception:
            return False
        return True


def _default_client() -> Any:
    import boto3  # only jobs on S3 need it

    return boto3.client("s3")
