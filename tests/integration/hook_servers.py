"""Real servers on 127.0.0.1 for hook tests: a webhook receiver (aiohttp) and an SMTP server
(aiosmtpd), each in its own thread with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from agents.broker import free_port
from streams.hooks import SecretRef
from streams.signature import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


@dataclass(frozen=True)
class Request:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    status: int

    @property
    def idempotency_key(self) -> str:
        return self.headers.get(IDEMPOTENCY_HEADER, "")


class Receiver:
    """A webhook endpoint that verifies every signature and honours the idempotency key.

    It answers ``fail_status`` to its first ``fail_first`` requests (``fail_first=-1``: to
    all), 401 to a bad signature, else 200 — and acts (``effective``) once per key. With
    ``delay_s`` it answers that many seconds after a request arrived (settable while it
    serves; a held answer is released when the receiver stops); ``arrived`` lists the
    idempotency key of every request as it arrives, answered yet or not.
    """

    def __init__(self, secret: str, *, fail_first: int = 0, fail_status: int = 503,
                 port: int | None = None, delay_s: float = 0.0) -> None:
        self.secret = secret.encode()
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.port = port or free_port()
        self.delay_s = delay_s
        self.arrived: list[str] = []
        self.requests: list[Request] = []
        self.effective: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hold(self, seconds: float) -> None:
        """Wait ``seconds`` before answering, or less if the receiver stops meanwhile."""
        if seconds > 0 and self._release is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), seconds)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.arrived.append(request.headers.get(IDEMPOTENCY_HEADER, ""))
            delay = self.delay_s
        await self._hold(delay)
        ok = verify_signature(self.secret, request.headers.get(TIMESTAMP_HEADER, ""), body,
                              request.headers.get(SIGNATURE_HEADER, ""),
                              now_ms=time.time_ns() // 1_000_000)
        with self._lock:
            n = len(self.requests)
            failing = self.fail_first < 0 or n < self.fail_first
            status = 401 if not ok else self.fail_status if failing else 200
            self.requests.append(Request(dict(request.headers), body, ok, status))
            if status == 200:
                self.effective.setdefault(request.headers.get(IDEMPOTENCY_HEADER, ""), body)
        return web.Response(status=status, text="ok" if status == 200 else "try later")

    def start(self) -> Receiver:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._release = asyncio.Event()
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "receiver did not start"
        return self

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or self._thread is None:
            return
        if self._release is not None:
            loop.call_soon_threadsafe(self._release.set)
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()
        self._loop = self._thread = self._runner = None

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def arrivals(self) -> list[str]:
        """The idempotency keys of the requests that arrived so far (answered or not)."""
        with self._lock:
            return list(self.arrived)

    def answer_after(self, seconds: float) -> None:
        """Answer the requests that arrive from now on after ``seconds`` (0: at once)."""
        with self._lock:
            self.delay_s = seconds

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1, plain SMTP, collecting what it accepts; with ``login``, it
    requires that user name and password (AUTH over plain SMTP, allowed for the test)."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self._handler = _Collect()
        self.logins: list[str] = []
        extra: dict[str, Any] = {}
        if login is not None:
            extra = {"authenticator": self._authenticate, "auth_require_tls": False,
                     "auth_required": True}
        self._login = login
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port, **extra)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self._login is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self._login)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    @property
    def messages(self) -> list[tuple[list[str], Message]]:
        return list(self._handler.messages)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._controller.stop()


def secret_file(directory: Path, value: str, name: str = "hook-secret") -> SecretRef:
    """A reference to ``value`` kept in a file under ``directory`` (as a mounted secret would be)."""
    path = directory / "secrets" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    return SecretRef.parse(f"file:{path}")
