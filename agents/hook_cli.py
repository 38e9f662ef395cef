"""``assetwatch hook``: create, list, show, delete and test the hooks alerts notify through.

Hooks live on the broker, on the compacted topic ``<prefix>.hooks`` (``agents/hook_store.py``),
so every command needs ``--broker`` (env ``ASSETWATCH_BROKER``): an embedded broker started
for one command would be empty and gone when it ends. Secrets are given as references —
``env:NAME`` (a variable of every worker) or ``file:/path`` (a file on every worker) — that
the workers resolve at delivery time, so no secret value is ever written to the topic
(docs/hooks.md). A hook of the first record format holds values in clear: listings show them
as ``***`` and say to migrate.

Errors a user can cause end in one line ``assetwatch: error: ...`` on stderr, exit status 2.
``hook test`` exits 1 when the test notification was not delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
import click
import orjson

from agents.broker import BrokerError
from agents.cli_support import CliUserError, on_broker, user_errors
from agents.hook_store import HookStore
from agents.hooks import send_notification
from agents.settings import Settings
from streams.alerts import Alert
from streams.delivery import Attempt
from streams.hooks import HookConfig, cleartext_fields, hook_from_dict
from streams.notification import Notification, decode_notification, encode_notification
from streams.records import Anomaly

F = TypeVar("F", bound=Callable[..., Any])
#: the errors a user can cause end in one line, exit 2
_user_errors = user_errors(BrokerError, ValueError, OSError)


def _common(fn: F) -> F:
    fn = click.option("--topic-prefix", default=None,
                      help="Prefix of the topics; hooks are on <prefix>.hooks (default assetwatch).")(fn)
    fn = click.option("--broker", metavar="HOST:PORT", default=None,
                      help="Kafka bootstrap address (env ASSETWATCH_BROKER); required.")(fn)
    return fn


def _store(broker: str | None, topic_prefix: str | None) -> contextlib.AbstractContextManager[HookStore]:
    settings = Settings.from_env(os.environ, broker=broker, topic_prefix=topic_prefix)
    if not settings.broker:
        raise CliUserError("hooks are kept on the broker: pass --broker HOST:PORT "
                           "(or set ASSETWATCH_BROKER)")
    return on_broker(settings, lambda kafka: HookStore(kafka, settings))


def _json(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


@click.group("hook")
def hook() -> None:
    """Configure the hooks (webhooks, e-mail) that alerts notify through."""


@hook.group("create")
def create() -> None:
    """Create (or with --replace, replace) a hook."""


def _publish(store: HookStore, config: HookConfig, replace_existing: bool) -> None:
    if not replace_existing and config.name in store.read():
        raise CliUserError(f"hook {config.name!r} exists: pass --replace to replace it")
    store.publish(config)
    click.echo(f"hook {config.name}: saved to {store.topic}: {config.describe()}")


#: what a secret option takes
REF_HELP = "a reference, env:NAME or file:/path, resolved by each worker at delivery"


def _headers(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep:
            raise CliUserError(f"--header takes 'Name: value', got {pair!r}")
        out[name.strip()] = value.strip()
    return out


@create.command("webhook")
@click.argument("name")
@click.option("--url", required=True, help="Where to POST (http:// or https://).")
@click.option("--secret", required=True, metavar="REF",
              help=f"Where the signing secret (≥ 16 characters) is: {REF_HELP}.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="An extra header (repeatable); a credential-like one (Authorization, "
                   f"*token*, *api-key* …) takes {REF_HELP}.")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait for a response.")
@click.option("--replace", "replace_existing", is_flag=True, help="Replace an existing hook of that name.")
@_common
@_user_errors
def create_webhook(name: str, url: str, secret: str, headers: tuple[str, ...], timeout_s: float,
                   replace_existing: bool, broker: str | None, topic_prefix: str | None) -> None:
    """Create webhook NAME: a signed JSON POST per notification."""
    config = hook_from_dict({"kind": "webhook", "name": name, "url": url, "secret": secret,
                             "headers": _headers(headers), "timeout_s": timeout_s})
    with _store(broker, topic_prefix) as store:
        _publish(store, config, replace_existing)


@create.command("email")
@click.argument("name")
@click.option("--smtp-host", required=True, help="SMTP server.")
@click.option("--smtp-port", type=int, default=None, help="Port (default by --tls: 25, 587, 465).")
@click.option("--tls", type=click.Choice(["none", "starttls", "ssl"]), default="starttls",
              show_default=True)
@click.option("--username", default=None, help="SMTP login (with --password).")
@click.option("--password", default=None, metavar="REF",
              help=f"Where the SMTP password is: {REF_HELP}.")
@click.option("--from", "sender", required=True, help="Sender address.")
@click.option("--to", "to", multiple=True, required=True, help="Recipient (repeatable).")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True)
@click.option("--replace", "replace_existing", is_flag=True, help="Replace an existing hook of that name.")
@_common
@_user_errors
def create_email(name: str, smtp_host: str, smtp_port: int | None, tls: str, username: str | None,
                 password: str | None, sender: str, to: tuple[str, ...], timeout_s: float,
                 replace_existing: bool, broker: str | None, topic_prefix: str | None) -> None:
    """Create e-mail hook NAME: one message per notification, through SMTP."""
    config = hook_from_dict({"kind": "email", "name": name, "host": smtp_host, "sender": sender,
                             "to": list(to), "port": smtp_port, "tls": tls, "username": username,
                             "password": password, "timeout_s": timeout_s})
    with _store(broker, topic_prefix) as store:
        _publish(store, config, replace_existing)


@hook.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the (masked) configs as JSON.")
@_common
@_user_errors
def list_cmd(as_json: bool, broker: str | None, topic_prefix: str | None) -> None:
    """List every hook (secrets masked)."""
    with _store(broker, topic_prefix) as store:
        hooks = sorted(store.read().values(), key=lambda h: h.name)
    if as_json:
        click.echo(_json([h.to_public_dict() for h in hooks]))
        return
    if not hooks:
        click.echo("no hooks")
        return
    width = max(len(h.name) for h in hooks)
    for h in hooks:
        migrate = " [secrets in clear: migrate]" if cleartext_fields(h) else ""
        click.echo(f"{h.name.ljust(width)}  {h.describe()}{migrate}")


def _get(store: HookStore, name: str) -> HookConfig:
    found = store.read().get(name)
    if found is None:
        raise CliUserError(f"no hook named {name!r} on {store.topic}")
    return found


@hook.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the (masked) config as JSON.")
@_common
@_user_errors
def show_cmd(name: str, as_json: bool, broker: str | None, topic_prefix: str | None) -> None:
    """Show hook NAME (secrets masked)."""
    with _store(broker, topic_prefix) as store:
        config = _get(store, name)
    public = config.to_public_dict()
    if as_json:
        click.echo(_json(public))
        return
    for key, value in public.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        click.echo(f"{key}: {'-' if value is None else value}")
    if cleartext_fields(config):
        click.echo(f"warning: {', '.join(cleartext_fields(config))} kept in clear on {store.topic} "
                   "(a record of the first format): re-create the hook with references "
                   "(docs/hooks.md, \"Migrating\")", err=True)


@hook.command("delete")
@click.argument("name")
@_common
@_user_errors
def delete_cmd(name: str, broker: str | None, topic_prefix: str | None) -> None:
    """Delete hook NAME (notifications still naming it are dead-lettered after their retries)."""
    with _store(broker, topic_prefix) as store:
        _get(store, name)
        store.delete(name)
    click.echo(f"hook {name}: deleted")


def sample_notification(hook_name: str, now_ms: int) -> Notification:
    """A test notification: one anomaly of a made-up asset, marked as a test."""
    an = Anomaly("assetwatch-test", "test-asset", now_ms, "test-model", 1, 1.0, 1.0, 100, 0.0,
                 {"test": 1.0})
    alert = Alert(f"test-{now_ms}", "hook-test", "assetwatch-test", ("test-asset",), now_ms, now_ms,
                  1, 1.0, ("test",), "single", True, (an,))
    return decode_notification(encode_notification(alert, [hook_name]))


async def _send_once(config: HookConfig, n: Notification, now_ms: int) -> Attempt:
    async with aiohttp.ClientSession() as session:
        return await send_notification(config, n, session=session, now_ms=now_ms)


@hook.command("test")
@click.argument("name")
@_common
@_user_errors
def test_cmd(name: str, broker: str | None, topic_prefix: str | None) -> None:
    """Send a sample notification through hook NAME now, once; print the outcome in one line."""
    with _store(broker, topic_prefix) as store:
        config = _get(store, name)
    now_ms = time.time_ns() // 1_000_000
    started = time.perf_counter()
    attempt = asyncio.run(_send_once(config, sample_notification(name, now_ms), now_ms))
    took_ms = (time.perf_counter() - started) * 1000
    if attempt.kind == "delivered":
        click.echo(f"hook {name}: delivered in {took_ms:.0f} ms ({attempt.detail})")
        return
    what = "failed for good" if attempt.kind == "permanent" else "failed (would be retried)"
    click.echo(f"hook {name}: {what} after {took_ms:.0f} ms: {config.scrub(attempt.detail)}")
    sys.exit(1)
