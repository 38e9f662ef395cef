"""The ``assetwatch`` command line.

Errors a user can cause (no broker, bad file, bad flag) end in one readable line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from agents.broker import BrokerError, resolved_broker
from agents.connection import ENV_CONFIG_FILE, env_of, parse_property, read_properties_file
from agents.detect_cli import detect_cmd
from agents.hook_cli import hook
from agents.inference_cli import inference_group
from agents.job_cli import job_group
from agents.model_cli import model_group
from agents.model_store import ModelStoreError
from agents.settings import Settings
from agents.tail_cli import tail
from agents.worker import ConfigError

USER_ERRORS = (BrokerError, ConfigError, ModelStoreError, FileNotFoundError, ValueError)

broker_option = click.option(
    "--broker", metavar="HOST:PORT", default=None,
    help="Kafka bootstrap address (env ASSETWATCH_BROKER). Default: start the embedded broker.",
)


@click.group()
@click.version_option(package_name="assetwatch")
@click.option("-X", "--kafka-property", "kafka_properties", multiple=True, metavar="NAME=VALUE",
              help="A Kafka client property for every client of a --broker cluster (repeatable; "
                   "e.g. -X security.protocol=SASL_SSL). Same as ASSETWATCH_KAFKA_NAME=VALUE.")
@click.option("--kafka-config", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A file of Kafka client properties (NAME=VALUE lines). Same as "
                   "ASSETWATCH_KAFKA_CONFIG.")
def cli(kafka_properties: tuple[str, ...], kafka_config: Path | None) -> None:
    """assetwatch: streaming anomaly detection for equipment telemetry, native to Kafka.

    Kafka client properties (docs/configuration.md) come from the file, then
    ASSETWATCH_KAFKA_* variables, then -X: the later wins.
    """
    # the options become the environment the settings (and any child worker) read
    if kafka_config is not None:
        read_properties_file(kafka_config)  # a bad file is one error line here, not later
        os.environ[ENV_CONFIG_FILE] = str(kafka_config)
    for text in kafka_properties:
        os.environ.update(env_of(dict([parse_property(text)])))


@cli.command()
@broker_option
@click.option("--inferences", "inferences_file", type=click.Path(path_type=Path), default=None,
              help="JSON file declaring inferences (one object or a list), created at start "
                   "if absent (docs/control.md). Others are scheduled with `inference create`.")
@click.option("--topic", "extra_topics", multiple=True,
              help="A telemetry topic to serve besides the default (repeatable).")
@click.option("--models", "models_dir", type=click.Path(path_type=Path), default=None,
              help="Model store directory (env ASSETWATCH_MODELS_DIR, default var/models).")
@click.option("--app-id", default=None, help="Faust app id = consumer group (default assetwatch).")
@click.option("--topic-prefix", default=None, help="Prefix of the output topics (default assetwatch).")
@click.option("--partitions", type=int, default=None, help="Partitions of every topic (default 8).")
@click.option("--web-port", type=int, default=None, help="Port of the worker's web server (default 6066).")
@click.option("--web-host", default=None,
              help="Address the web server binds (env ASSETWATCH_WEB_HOST, default 127.0.0.1; "
                   "0.0.0.0 to be reached from other hosts, e.g. by Prometheus).")
@click.option("--api-token-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="File holding the bearer token mutating REST requests need (env "
                   "ASSETWATCH_API_TOKEN_FILE or ASSETWATCH_API_TOKEN); without one they are "
                   "refused (docs/control.md).")
@click.option("--api-reads", type=click.Choice(["open", "token"]), default=None,
              help="Whether read-only requests need the token too (env ASSETWATCH_API_READS, "
                   "default open; /healthz and /readyz stay open).")
@click.option("--loglevel", default=None, help="Faust log level (default warning).")
@click.option("--one-record-per-batch/--normal-batches", default=None,
              help="Produce one record per batch (required on the embedded broker; default on).")
def worker(broker: str | None, **options: object) -> None:
    """Run a scoring worker until Ctrl-C / SIGTERM."""
    from agents.worker import run_worker

    settings = Settings.from_env(os.environ, broker=broker, **options)
    with resolved_broker(settings) as kafka:
        run_worker(settings, kafka)


@cli.command()
@click.option("--port", type=int, default=None, help="Port to listen on (default: a free one).")
@click.option("--apache-kafka", is_flag=True,
              help="Run Apache Kafka (KRaft, from Maven Central's jars; needs Java and Maven) "
                   "instead of the embedded broker (docs/apache-kafka.md).")
def broker(port: int | None, apache_kafka: bool) -> None:
    """Run a broker alone (for producers and workers started by hand)."""
    from agents.apache_kafka import ApacheKafka, kafka_jars, kafka_version
    from agents.broker import EmbeddedBroker

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server: EmbeddedBroker | ApacheKafka
    if apache_kafka:
        if port is not None:
            raise click.UsageError("--port is for the embedded broker; Apache Kafka takes free ports")
        jars = kafka_jars()
        if jars is None:
            raise BrokerError("Apache Kafka's jars are not cached and Maven (mvn) is not on PATH")
        server = ApacheKafka(jars).start()
        what = (f"Apache Kafka {kafka_version()} (KRaft, one node, temporary storage) listening "
                f"at {server.listeners['plaintext']}")
    else:
        server = EmbeddedBroker(port=port).start()
        what = f"embedded broker (memory storage) listening at {server.bootstrap}"
    try:
        click.echo(f"{what}; Ctrl-C stops it")
        while server.running and not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@cli.command()
@broker_option
@click.option("--assets", type=int, default=4, show_default=True, help="Pumps to simulate.")
@click.option("--points", type=int, default=900, show_default=True, help="Readings per pump.")
@click.option("--rate", type=float, default=400.0, show_default=True,
              help="Readings sent per second (wall clock).")
@click.option("--seed", type=int, default=7, show_default=True)
def demo(broker: str | None, assets: int, points: int, rate: float, seed: int) -> None:
    """Train on generated pumps, stream readings with injected faults, print anomalies."""
    from agents.demo import DemoOptions, run_demo

    settings = Settings.from_env(os.environ, broker=broker)
    ok = run_demo(settings, DemoOptions(assets=assets, points=points, rate=rate, seed=seed))
    sys.exit(0 if ok else 1)


cli.add_command(model_group)
cli.add_command(inference_group)
cli.add_command(hook)
cli.add_command(tail)
cli.add_command(detect_cmd)  # batch detection (issue 15)
cli.add_command(job_group)


def main() -> None:
    """Entry point of the console script."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("assetwatch: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("assetwatch: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except USER_ERRORS as exc:
        click.echo(f"assetwatch: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
