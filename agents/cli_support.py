"""What the ``assetwatch`` command groups share: one-line user errors and a client on the broker.

>>> @user_errors(ValueError)
... def command() -> None:
...     raise ValueError("bad window")
>>> try:
...     command()
... except CliUserError as exc:
...     print(exc.exit_code, exc.format_message())
2 bad window
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol, TypeVar

import click

from agents.broker import resolved_broker
from agents.connection import KafkaConnection
from agents.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class CliUserError(click.ClickException):
    """A user error: one line ``assetwatch: error: ...`` on stderr, exit status 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"assetwatch: error: {self.format_message()}", err=True)


def user_errors(*kinds: type[Exception]) -> Callable[[F], F]:
    """A command decorator: the errors a user can cause (``kinds``) end as :class:`CliUserError`."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except kinds as exc:
                raise CliUserError(str(exc)) from exc

        return wrapper  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def on_broker(settings: Settings, open_client: Callable[[KafkaConnection], C]) -> Iterator[C]:
    """``open_client(kafka)`` once the settings' broker answers; closed when the block ends."""
    with resolved_broker(settings) as kafka:
        client = open_client(kafka)
        try:
            yield client
        finally:
            client.close()
