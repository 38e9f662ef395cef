"""``assetwatch hook``: create, list, show, test and delete on the session broker; secrets never shown."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest
from click.testing import CliRunner, Result

from agents.hook_cli import hook
from tests.integration.hook_servers import Receiver, SmtpServer

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")]

SECRET = "cli-secret-0123456789abcdef"
PASSWORD = "smtp-pw-98765"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"ASSETWATCH_BROKER": None, "ASSETWATCH_TOPIC_PREFIX": None,
                          "ASSETWATCH_HOOK_SECRET": None, "ASSETWATCH_SMTP_PASSWORD": None})


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
    runner: CliRunner, kafka_bootstrap: str, unique: str
) -> None:
    with Receiver(SECRET) as receiver, SmtpServer(login=("aw", PASSWORD)) as smtp:
        made = run(runner, kafka_bootstrap, unique,
                   ["create", "webhook", "ops", "--url", receiver.url,
                    "--header", "Authorization: Bearer tok-abc"],
                   env={"ASSETWATCH_HOOK_SECRET": SECRET})
        assert made.exit_code == 0, made.output
        assert f"hook ops: saved to {unique}.hooks" in made.stdout
        mail = run(runner, kafka_bootstrap, unique,
                   ["create", "email", "oncall", "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port),
                    "--tls", "none", "--from", "aw@example.com", "--to", "a@example.com",
                    "--username", "aw", "--password", PASSWORD])
        assert mail.exit_code == 0, mail.output
        again = run(runner, kafka_bootstrap, unique,
                    ["create", "webhook", "ops", "--url", receiver.url, "--secret", SECRET])
        assert "exists: pass --replace" in error_line(again)

        listed = run(runner, kafka_bootstrap, unique, ["list"])
        assert listed.exit_code == 0, listed.output
        assert [ln.split()[0] for ln in listed.stdout.splitlines()] == ["oncall", "ops"]  # by name
        as_json = orjson.loads(run(runner, kafka_bootstrap, unique, ["list", "--json"]).stdout)
        assert [h["name"] for h in as_json] == ["oncall", "ops"]
        assert as_json[0]["password"] == "***" and as_json[1]["secret"] == "***"
        assert as_json[1]["headers"] == {"Authorization": "***"}
        shown = run(runner, kafka_bootstrap, unique, ["show", "ops"])
        assert shown.exit_code == 0 and f"url: {receiver.url}" in shown.stdout
        for r in (made, mail, listed, shown):
            no_secrets(r)

        tested = run(runner, kafka_bootstrap, unique, ["test", "ops"])
        assert tested.exit_code == 0, tested.output
        assert tested.stdout.startswith("hook ops: delivered in ") and "HTTP 200" in tested.stdout
        assert [r.signature_ok for r in receiver.snapshot()] == [True]
        mailed = run(runner, kafka_bootstrap, unique, ["test", "oncall"])
        assert mailed.exit_code == 0, mailed.output
        assert len(smtp.messages) == 1 and "hook-test" in str(smtp.messages[0][1]["Subject"])
        assert smtp.logins == ["aw"]

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
    assert "url must be http:// or https://" in line and "secret must be a string of at least 16" in line
    assert "short" not in line.split("secret")[1]
    bad_header = run(runner, kafka_bootstrap, unique,
                     ["create", "webhook", "ops", "--url", "https://x.example", "--secret", SECRET,
                      "--header", "no-colon"])
    assert "--header takes 'Name: value'" in error_line(bad_header)
    mail = run(runner, kafka_bootstrap, unique,
               ["create", "email", "m", "--smtp-host", "h", "--from", "nobody", "--to", "a@b.example",
                "--username", "u"])
    assert "username and password go together" in error_line(mail)


def test_no_broker_is_a_one_line_error(runner: CliRunner) -> None:
    result = runner.invoke(hook, ["list"])
    assert "pass --broker HOST:PORT" in error_line(result)
