"""Secured Apache Kafka: SASL/SCRAM and TLS (client certificates) listeners.

The worker (Faust/aiokafka) and the CLI (confluent-kafka) get the same client properties;
a wrong password or an untrusted certificate is one clear error line and a non-zero exit,
never a hang; no secret shows in a log line, the status page or a status record.

These need the Apache Kafka tier from the jars (tests/conftest.py), whose broker has the
secured listeners; on this project's machines (Java and Maven) that is the default tier.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.connection import KafkaConnection
from tests.conftest import SCRAM_PASSWORD, SCRAM_USER, TEST_GROUP_PROPERTIES, BrokerTier
from tests.integration.harness import Pipeline
from tests.integration.test_pipeline import fleet
from tests.tls import CLIENT_KEY_PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture
def secured(broker_tier: BrokerTier) -> BrokerTier:
    if broker_tier.apache is None:
        pytest.skip("secured listeners exist on the Apache Kafka tier from the jars only "
                    f"(this session: {broker_tier.name})")
    return broker_tier


def sasl(tier: BrokerTier, password: str = SCRAM_PASSWORD) -> KafkaConnection:
    return tier.apache.connection("sasl", {  # type: ignore[attr-defined]
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": SCRAM_USER, "sasl.password": password, **TEST_GROUP_PROPERTIES})


def tls(tier: BrokerTier, ca: str = "ca", cert: str = "client_cert", key: str = "client_key",
        key_password: str | None = CLIENT_KEY_PASSWORD) -> KafkaConnection:
    props = {"security.protocol": "SSL", "ssl.ca.location": str(tier.tls[ca]),
             "ssl.certificate.location": str(tier.tls[cert]), "ssl.key.location": str(tier.tls[key]),
             **TEST_GROUP_PROPERTIES}
    if key_password is not None:
        props["ssl.key.password"] = key_password
    return tier.apache.connection("ssl", props)  # type: ignore[attr-defined]


def assetwatch(kafka: KafkaConnection, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, the client properties in its environment."""
    return subprocess.run([sys.executable, "-m", "agents.cli", *args, "--broker", kafka.bootstrap],
                          env={**os.environ, **kafka.env()}, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def secrets_of(kafka: KafkaConnection) -> list[str]:
    return [v for k, v in kafka.properties.items() if "password" in k]


def scores_end_to_end_without_leaking(kafka: KafkaConnection, unique: str, tmp_path: Path) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = fleet().readings
    expected = p.expected_keys(readings)
    with p.worker(extra_args=["--loglevel", "info"]) as w:  # the most it logs by default
        w.wait_ready(90)
        p.send(readings)
        keys = p.wait_for_anomalies(expected, 60)
        status_page = str(w.status())
    assert sorted(set(keys)) == sorted(expected)
    shown = assetwatch(kafka, "inference", "show", "inf", "--topic-prefix", unique, "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"inf"' in shown.stdout
    status_records = b"".join(v or b"" for _, v in p.read(p.settings.topics.inference_status, 2.0))
    assert status_records  # the inference's state was published, and read back over the listener
    worker_log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "INFO" in worker_log  # the log the secrets are looked for in is there
    for secret in secrets_of(kafka):
        for where, text in (("worker log", worker_log), ("status page", status_page),
                            ("CLI output", shown.stdout + shown.stderr),
                            ("status topic", status_records.decode(errors="replace"))):
            assert secret not in text, f"a secret shows in the {where}"


def test_worker_and_cli_score_over_sasl_scram(secured: BrokerTier, unique: str, tmp_path: Path) -> None:
    scores_end_to_end_without_leaking(sasl(secured), unique, tmp_path)


def test_worker_and_cli_score_over_tls_with_a_client_certificate(
    secured: BrokerTier, unique: str, tmp_path: Path
) -> None:
    scores_end_to_end_without_leaking(tls(secured), unique, tmp_path)


def one_error_line(done: subprocess.CompletedProcess[str], started: float, *secrets: str) -> str:
    assert done.returncode != 0, done.stdout
    assert time.monotonic() - started < 30, "the refusal took as long as a connection timeout"
    lines = [line for line in done.stderr.splitlines()
             if line.strip() and not line.startswith("assetwatch: using Kafka")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for secret in secrets:
        assert secret not in done.stderr + done.stdout
    return lines[0]


@pytest.mark.parametrize("command", [["model", "list"], ["worker", "--partitions", "2"]])
def test_a_wrong_password_is_one_clear_line_and_a_failed_exit(
    secured: BrokerTier, command: list[str]
) -> None:
    wrong = sasl(secured, password="not-" + SCRAM_PASSWORD)
    started = time.monotonic()
    done = assetwatch(wrong, *command)
    line = one_error_line(done, started, "not-" + SCRAM_PASSWORD, SCRAM_PASSWORD)
    assert "authentication failed" in line, line


def test_a_broker_certificate_from_an_untrusted_ca_is_one_clear_line(secured: BrokerTier) -> None:
    started = time.monotonic()
    done = assetwatch(tls(secured, ca="rogue_ca"), "model", "list")
    line = one_error_line(done, started, CLIENT_KEY_PASSWORD)
    assert "TLS failed" in line and "ssl.ca.location" in line, line


def test_a_client_certificate_the_broker_does_not_trust_is_refused(secured: BrokerTier) -> None:
    started = time.monotonic()
    done = assetwatch(tls(secured, cert="rogue_client_cert", key="rogue_client_key", key_password=None),
                      "model", "list")
    line = one_error_line(done, started)
    assert "cannot connect to Kafka" in line, line
