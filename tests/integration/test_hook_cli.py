"""``assetwatch hook``: create, list, show, test and delete on the session broker; secrets never shown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from agents.broker import TopicSpec, ensure_topics
from agents.connection import KafkaConnection
from agents.hook_cli import hook
from agents.kafka_io import make_producer
from streams.codec import dumps
from streams.hooks import LEGACY_FORMAT
from tests.integration.hook_servers import Receiver, SmtpServer, secret_file

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")]

SECRET = "cli-secret-0123456789abcdef"
PASSWORD = "smtp-pw-98765"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"ASSETWATCH_BROKER": None, "ASSETWATCH_TOPIC_PREFIX": None,
                          "AW_TEST_SMTP_PASSWORD": None})


def run(runner: CliRunner, bootstrap: str, prefix: str, args: Sequence[str],
        env: dict[str, str] | None = None) -> Result:
    return runner.invoke(hook, [*args, "--broker", bootstrap, "--topic-prefix", prefix], env=env)


def error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if not ln.startswith("assetwatch: using")]
    assert len(lines) == 1 and lines[0].startswith("assetwatch: error: "), result.stderr
    return lines[0]


def no_secrets(result: Result) -> None:
    assert SECRET not in result.output and PASSWORD not in result.output
    assert "tok-abc" not in result.output


def test_hooks_are_created_listed_shown_tested_and_deleted(
    runner: CliRunner, kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    secret, auth = secret_file(tmp_path, SECRET), secret_file(tmp_path, "Bearer tok-abc", "auth")
    with Receiver(SECRET) as receiver, SmtpServer(login=("aw", PASSWORD)) as smtp:
        made = run(runner, kafka_bootstrap, unique,
                   ["create", "webhook", "ops", "--url", receiver.url, "--secret", str(secret),
                    "--header", f"Authorization: {auth}"])
        assert made.exit_code == 0, made.output
        assert f"hook ops: saved to {unique}.hooks" in made.stdout
        mail = run(runner, kafka_bootstrap, unique,
                   ["create", "email", "oncall", "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port),
                    "--tls", "none", "--from", "aw@example.com", "--to", "a@example.com",
                    "--username", "aw", "--password", "env:AW_TEST_SMTP_PASSWORD"])
        assert mail.exit_code == 0, mail.output
        again = run(runner, kafka_bootstrap, unique,
                    ["create", "webhook", "ops", "--url", receiver.url, "--secret", str(secret)])
        assert "exists: pass --replace" in error_line(again)

        listed = run(runner, kafka_bootstrap, unique, ["list"])
        assert listed.exit_code == 0, listed.output
        assert [ln.split()[0] for ln in listed.stdout.splitlines()] == ["oncall", "ops"]  # by name
        assert "migrate" not in listed.stdout
        as_json = orjson.loads(run(runner, kafka_bootstrap, unique, ["list", "--json"]).stdout)
        assert [h["name"] for h in as_json] == ["oncall", "ops"]
        # where the secrets are, never what they are
        assert as_json[0]["password"] == "env:AW_TEST_SMTP_PASSWORD"
        assert as_json[1]["secret"] == str(secret)
        assert as_json[1]["headers"] == {"Authorization": str(auth)}
        shown = run(runner, kafka_bootstrap, unique, ["show", "ops"])
        assert shown.exit_code == 0 and f"url: {receiver.url}" in shown.stdout
        assert f"secret: {secret}" in shown.stdout
        for r in (made, mail, listed, shown):
            no_secrets(r)

        # `hook test` resolves the references where it runs, as a worker does
        tested = run(runner, kafka_bootstrap, unique, ["test", "ops"])
        assert tested.exit_code == 0, tested.output
        assert tested.stdout.startswith("hook ops: delivered in ") and "HTTP 200" in tested.stdout
        assert [r.signature_ok for r in receiver.snapshot()] == [True]
        assert receiver.snapshot()[0].headers["Authorization"] == "Bearer tok-abc"
        unset = run(runner, kafka_bootstrap, unique, ["test", "oncall"])
        assert unset.exit_code == 1
        assert "secret env:AW_TEST_SMTP_PASSWORD: the variable is not set" in unset.stdout
        mailed = run(runner, kafka_bootstrap, unique, ["test", "oncall"],
                     env={"AW_TEST_SMTP_PASSWORD": PASSWORD})
        assert mailed.exit_code == 0, mailed.output
        assert len(smtp.messages) == 1 and "hook-test" in str(smtp.messages[0][1]["Subject"])
        assert smtp.logins == ["aw"]
        no_secrets(mailed)

    down = run(runner, kafka_bootstrap, unique, ["test", "ops"])  # the receiver is stopped now
    assert down.exit_code == 1 and "failed (would be retried)" in down.stdout
    assert len(down.stdout.strip().splitlines()) == 1

    gone = run(runner, kafka_bootstrap, unique, ["delete", "ops"])
    assert gone.exit_code == 0 and "hook ops: deleted" in gone.stdout
    assert "no hook named 'ops'" in error_line(run(runner, kafka_bootstrap, unique, ["show", "ops"]))
    assert "no hook named 'ops'" in error_line(run(runner, kafka_bootstrap, unique, ["delete", "ops"]))


def test_invalid_hooks_are_refused_in_one_line(runner: CliRunner, kafka_bootstrap: str, unique: str) -> None:
    short = run(runner, kafka_bootstrap, unique,
                ["create", "webhook", "ops", "--url", "ftp://x", "--secret", "short"])
    line = error_line(short)
    assert "url must be http:// or https://" in line
    assert "secret must be a reference, env:NAME or file:/absolute/path, not the secret itself" in line
    assert "short" not in line.split("secret")[1]
    bad_header = run(runner, kafka_bootstrap, unique,
                     ["create", "webhook", "ops", "--url", "https://x.example", "--secret", "env:S",
                      "--header", "no-colon"])
    assert "--header takes 'Name: value'" in error_line(bad_header)
    mail = run(runner, kafka_bootstrap, unique,
               ["create", "email", "m", "--smtp-host", "h", "--from", "nobody", "--to", "a@b.example",
                "--username", "u"])
    assert "username and password go together" in error_line(mail)


def test_a_secret_value_is_refused_and_never_reaches_the_topic(
        runner: CliRunner, kafka: KafkaConnection, unique: str) -> None:
    attempts = [
        ["create", "webhook", "ops", "--url", "https://x.example", "--secret", SECRET],
        ["create", "webhook", "ops", "--url", "https://x.example", "--secret", "env:S",
         "--header", "Authorization: Bearer tok-abc"],
        ["create", "webhook", "ops", "--url", f"https://x.example/in?token={SECRET}",
         "--secret", "env:S"],
        ["create", "email", "m", "--smtp-host", "h", "--from", "a@b.example", "--to", "c@d.example",
         "--username", "u", "--password", PASSWORD],
    ]
    for args in attempts:
        refused = run(runner, kafka.bootstrap, unique, args)
        line = error_line(refused)
        assert "reference" in line or "credential" in line, line
        no_secrets(refused)
    assert run(runner, kafka.bootstrap, unique, ["list"]).stdout.strip() == "no hooks"


def test_a_hook_of_the_first_format_is_flagged_for_migration(
        runner: CliRunner, kafka: KafkaConnection, unique: str) -> None:
    ensure_topics(kafka, [TopicSpec(f"{unique}.hooks", 1, {"cleanup.policy": "compact"})])
    producer = make_producer(kafka)
    producer.produce(f"{unique}.hooks", key=b"old", value=dumps(
        {"format": LEGACY_FORMAT, "kind": "webhook", "name": "old", "url": "https://x.example",
         "secret": SECRET, "headers": {}, "timeout_s": 10.0}))
    assert producer.flush(10) == 0
    listed = run(runner, kafka.bootstrap, unique, ["list"])
    assert listed.exit_code == 0 and "[secrets in clear: migrate]" in listed.stdout
    shown = run(runner, kafka.bootstrap, unique, ["show", "old"])
    assert shown.exit_code == 0 and "secret: ***" in shown.stdout
    assert "secret kept in clear" in shown.stderr and "Migrating" in shown.stderr
    no_secrets(listed)
    no_secrets(shown)


def test_no_broker_is_a_one_line_error(runner: CliRunner) -> None:
    result = runner.invoke(hook, ["list"])
    assert "pass --broker HOST:PORT" in error_line(result)
